"""worker package (built in later issues)."""
