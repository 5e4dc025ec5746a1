"""The data error type, in a module without torch: the synthetic generator (and through it the
runtime tests of the oldest-versions stage, which has no torch) raises it via :mod:`training.data.poses`."""

from __future__ import annotations


class DataError(ValueError):
    """A data file or layout cannot be used; the message names the file and the problem."""
