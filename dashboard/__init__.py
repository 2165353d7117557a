"""dashboard package (built in later issues)."""
