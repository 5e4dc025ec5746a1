"""Network outputs -> depth and labels at the requested resolution. Pure numpy + OpenCV."""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from gam_depth_ros.image_resize import resize_image, resize_nearest

ArrayT = TypeVar("ArrayT")


def disparity_to_depth(disparity: ArrayT, min_depth: float, max_depth: float) -> ArrayT:
    """Turn the network's sigmoid disparity into depth in network units.

    depth = 1 / (1/max_depth + (1/min_depth - 1/max_depth) * disparity): disparity 0 maps to
    ``max_depth`` and 1 to ``min_depth``. Works on torch tensors and numpy arrays of any shape.
    """
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    return 1.0 / (min_disp + (max_disp - min_disp) * disparity)  # type: ignore[operator,return-value]


def depth_to_disparity(depth: ArrayT, min_depth: float, max_depth: float) -> ArrayT:
    """Inverse of :func:`disparity_to_depth`: the sigmoid disparity of ``depth`` (0 at ``max_depth``,
    1 at ``min_depth``; outside (0, 1) for depths outside the range). Tensors, arrays or floats."""
    return (1.0 / depth - 1.0 / max_depth) / (1.0 / min_depth - 1.0 / max_depth)  # type: ignore[operator,return-value]


def resize_disparity(disparity: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an [h, w] disparity map to [height, width] float32 (bilinear when enlarging, area when shrinking)."""
    return resize_image(np.asarray(disparity, dtype=np.float32), height, width)


def resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an [h, w] uint8 label map (never blends class ids)."""
    return resize_nearest(np.asarray(labels, dtype=np.uint8), height, width)
