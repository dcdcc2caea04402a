"""Benchmarks that print tables; never run as tests (tests import only the torch reference)."""
