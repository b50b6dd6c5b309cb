"""Readers of published depth datasets, shared by the benchmarks and the training data kinds."""
