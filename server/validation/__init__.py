"""`gro bench methods`: the empirical validation of GRO, run through the service's comparisons
(so every run shows on the dashboard), summarised in docs/validation.md with plots."""
