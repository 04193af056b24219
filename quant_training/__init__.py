"""Datasets, the QAT loop, checkpoints and evaluation."""
