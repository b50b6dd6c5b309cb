"""Readers of published thermal datasets, shared by the benchmarks and the training data kinds."""
