"""Evaluation: pass@k on code-generation benchmarks (and, later, reasoning benchmarks)."""
