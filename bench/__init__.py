"""Benchmarks for the returns gateway; see ``bench/README.md``."""
