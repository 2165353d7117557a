"""`gro bench methods`: the empirical validation of GRO. A client of the API: it submits its
runs as comparisons (so every run shows on the dashboard), evaluates them, and summarises them
in docs/validation.md with plots. It imports no server code."""
