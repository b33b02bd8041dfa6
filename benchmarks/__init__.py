"""Benchmark suite of bregman_kernels (pytest-benchmark); see docs/benchmarks.md."""
