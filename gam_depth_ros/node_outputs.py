"""The depth node's per-frame image outputs as numpy arrays, and its diagnostic values. ROS-free.

The node asks for the topics that have subscribers; only those are computed.
"""

from __future__ import annotations

import numpy as np

from gam_depth_ros.colorize import colorize_depth
from gam_depth_ros.topics import DEPTH, DEPTH_COLORIZED, SEMANTIC, SEMANTIC_COLORIZED


def metric_depth(depth: np.ndarray, scale: float) -> np.ndarray:
    """[H, W] network depth x ``scale`` -> float32 metres, NaN where not finite and positive (REP 118)."""
    depth_m = np.multiply(depth, np.float32(scale), dtype=np.float32)
    depth_m[~(np.isfinite(depth_m) & (depth_m > 0))] = np.nan
    return depth_m


def image_outputs(
    topics,
    depth_m: np.ndarray,
    labels: np.ndarray,
    colour_range: tuple[float, float],
    colormap: str,
    palette: np.ndarray,
) -> dict[str, tuple[np.ndarray, str]]:
    """topic -> (pixels, encoding) of the image outputs among ``topics``.

    Parameters
    ----------
    topics:
        Output topics wanted (others are ignored, e.g. camera_info and points).
    depth_m:
        [H, W] float32 metres, NaN invalid.
    labels:
        [H, W] uint8 class ids.
    colour_range:
        (near, far) metres of the colormap.
    colormap:
        Name of the depth colormap.
    palette:
        [256, 3] uint8 colour per id.
    """
    images = {}
    if DEPTH in topics:
        images[DEPTH] = (depth_m, "32FC1")
    if DEPTH_COLORIZED in topics:
        images[DEPTH_COLORIZED] = (colorize_depth(depth_m, *colour_range, colormap), "rgb8")
    if SEMANTIC in topics:
        images[SEMANTIC] = (labels, "mono8")
    if SEMANTIC_COLORIZED in topics:  # np.take: 3x faster than fancy indexing
        images[SEMANTIC_COLORIZED] = (np.take(palette, labels, axis=0), "rgb8")
    return images


def diagnostic_values(backend, settings, scale_decision) -> dict[str, str]:
    """The model and scale key-values of the node's diagnostics (besides the statistics).

    ``backend``: the inference backend; ``settings``: the node's NodeSettings; ``scale_decision``:
    the last ScaleDecision.
    """
    return {
        "backend": backend.name,
        "device": backend.device,
        "model": settings.params.model_path,
        "depth_scale": f"{settings.depth_scale:g}",
        "scale_mode": settings.params.scale_mode,
        "scale": f"{scale_decision.scale:.6g}",
        "scale_confidence": f"{scale_decision.confidence:.3f}",
        "scale_status": "relative (no floor scale yet)" if scale_decision.relative else "metric",
    }
