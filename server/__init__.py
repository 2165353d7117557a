"""server package (built in later issues)."""
