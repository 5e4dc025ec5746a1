"""Evaluation on recorded data: metrics (shared with training) and ``gam-depth-bag-eval``."""
