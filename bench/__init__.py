"""Benchmarks that print tables (see bench/README.md)."""
