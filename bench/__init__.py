"""Benchmarks (scripts: `python bench/online.py ...`, each printing one table against the
baseline measured in the same run) and the validation study (`bench.validation`, installed
with gro for `gro bench methods`)."""
