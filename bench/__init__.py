"""Benchmarks: run on purpose with `make bench`, never by `make test`."""
