"""Reproducible performance comparisons: ``python -m benchmarks.run`` (see README.md)."""
