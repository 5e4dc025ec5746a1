"""Colour images for people: depth through a colormap, labels through the class palette.

Pure numpy. Used by the node's ``*/colorized`` outputs, the demo and evaluation figures.
"""

from __future__ import annotations

import numpy as np

from gam_depth_ros.classes import palette_lut

# Anchor colours of perceptually ordered colormaps (sampled from matplotlib's definitions at
# evenly spaced positions); the full 256-entry tables are interpolated from them.
_COLORMAP_ANCHORS = {
    "turbo": ((48, 18, 59), (70, 107, 227), (40, 188, 235), (50, 241, 151), (164, 252, 60),
              (237, 208, 58), (251, 128, 34), (210, 49, 5), (122, 4, 3)),
    "viridis": ((68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140),
                (40, 174, 128), (94, 201, 98), (173, 220, 48), (253, 231, 37)),
    "magma": ((0, 0, 4), (28, 16, 68), (79, 18, 123), (129, 37, 129), (181, 54, 122),
              (229, 80, 100), (251, 135, 97), (254, 194, 135), (252, 253, 191)),
    "gray": ((0, 0, 0), (255, 255, 255)),
}  # fmt: skip
COLORMAPS = tuple(_COLORMAP_ANCHORS)


def colormap_lut(name: str) -> np.ndarray:
    """[256, 3] uint8 table of the colormap ``name`` (one of :data:`COLORMAPS`)."""
    if name not in _COLORMAP_ANCHORS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {COLORMAPS}")
    anchors = np.asarray(_COLORMAP_ANCHORS[name], dtype=np.float64)
    positions = np.linspace(0.0, 1.0, len(anchors))
    samples = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(samples, positions, anchors[:, c]) for c in range(3)], axis=1)
    return np.round(lut).astype(np.uint8)


def colorize_depth(
    depth: np.ndarray,
    min_depth: float,
    max_depth: float,
    colormap: str = "turbo",
    invalid_color: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """Depth [H, W] -> rgb8 [H, W, 3]; near is the colormap's low end, NaN/inf get ``invalid_color``.

    Values outside [min_depth, max_depth] are clipped to the ends of the colormap.
    """
    if not max_depth > min_depth:
        raise ValueError(f"need max_depth > min_depth, got {min_depth}, {max_depth}")
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth)
    normalised = (np.where(valid, depth, min_depth) - min_depth) / (max_depth - min_depth)
    index = np.clip(normalised * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgb = np.take(colormap_lut(colormap), index, axis=0)  # np.take: ~3x faster than fancy indexing
    rgb[~valid] = invalid_color
    return rgb


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """Class ids [H, W] uint8 -> rgb8 [H, W, 3] with the NYU-40 palette (void and unknown: black)."""
    return np.take(palette_lut(), np.asarray(labels, dtype=np.uint8), axis=0)
