"""Benchmarks of vnfeedback on real public corpora: ``python -m benchmarks --help``."""
