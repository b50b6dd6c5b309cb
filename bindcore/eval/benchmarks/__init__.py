"""Benchmarks on published datasets: the spec, the built-in generic ones, the runner (``bindcore benchmark``)."""
