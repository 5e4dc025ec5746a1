"""Offline bag evaluation: the inference backend on every frame, in bag order, no ROS involved."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gam_depth_ros.evaluation.bag_reader import Frame


@dataclass
class Output:
    """What the system produced for one input frame."""

    stamp_ns: int
    depth_m: np.ndarray  # [h,w] float32 metres, NaN invalid
    labels: np.ndarray | None  # [h,w] uint8
    scale: float  # metres per network unit used
    latency_ms: float | None = None  # live mode: publish -> received


def progress(done: int, total: int, label: str) -> None:
    """One carriage-returned progress line on stderr (a newline at the end)."""
    width = 30
    filled = int(width * done / max(1, total))
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run_offline(frames: list[Frame], backend, depth_scale: float,
                scale_of: Callable[[Frame, np.ndarray, np.ndarray], float] | None = None) -> tuple[list[Output], float]:
    """Run ``backend`` on each frame at the frame's resolution.

    Parameters
    ----------
    depth_scale:
        Metres per network unit (the model's or the user's fixed scale).
    scale_of:
        Optional per-frame scale, ``(frame, depth in network units, labels) -> metres per unit``
        (e.g. an online estimator); NaN means no scale yet, the frame's depth is then all NaN.

    Returns
    -------
    outputs, and the mean inference time per frame in milliseconds.
    """
    outputs, seconds = [], 0.0
    for i, frame in enumerate(frames):
        started = time.perf_counter()
        prediction = backend.infer(frame.rgb, output_size=frame.rgb.shape[:2])
        seconds += time.perf_counter() - started
        scale = scale_of(frame, prediction.depth, prediction.labels) if scale_of else depth_scale
        depth = prediction.depth.astype(np.float32) * np.float32(scale)
        outputs.append(Output(frame.stamp_ns, depth, prediction.labels, float(scale)))
        if (i + 1) % 5 == 0 or i + 1 == len(frames):
            progress(i + 1, len(frames), "offline")
    return outputs, 1000.0 * seconds / max(1, len(frames))
