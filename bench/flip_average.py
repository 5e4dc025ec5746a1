"""Flip averaging at inference, for the benchmarks only: the network run on the frame and on its
mirror image, the two disparities averaged (the mirror's flipped back), labels from the frame alone.

Measured on the shipped model it gave nothing (docs/training.md, "480 rooms for longer, weight
averaging, flip averaging: level"), so the runtime backends do not carry it; a benchmark wraps a
backend's ``run_network`` instead (``bench/fit_gap.py --flip-average``)::

    backend.run_network = flip_averaged(backend.run_network)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RunNetwork = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def flip_averaged(run_network: RunNetwork) -> RunNetwork:
    """``run_network`` ([1, 3, H, W] input -> [H, W] disparity, [H, W] labels) made to average each
    frame's disparity with its mirror image's: twice the network time."""

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        disparity, labels = run_network(batch)
        mirrored, _ = run_network(np.ascontiguousarray(batch[..., ::-1]))
        return 0.5 * (disparity + mirrored[:, ::-1]), labels

    return run
