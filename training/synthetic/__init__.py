"""Procedural indoor scenes with exact depth and NYU-40 labels."""
