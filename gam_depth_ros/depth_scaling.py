"""Which metres-per-unit factor a frame's depth gets: a fixed one, or the floor estimate.

:class:`DepthScaler` is the node's only view of scaling (plain Python, no ROS). ``fixed`` mode
always returns the configured factor. ``floor`` mode runs :class:`~gam_depth_ros.floor_scale.FloorScaleEstimator`
on each prediction (relative depth in network units, labels, intrinsics at that resolution) and
returns its smoothed scale; until the first valid scale exists, a frame has no metric scale:
:attr:`ScaleDecision.scale` is the model's own factor with ``relative = True`` (the node then
publishes no depth, or relative depth with a warning, by parameter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gam_depth_ros.floor_scale import FloorScaleConfig, FloorScaleEstimator, ScaleFilter


@dataclass(frozen=True)
class ScaleDecision:
    """The factor for one frame."""

    scale: float  # metres per network unit to apply
    relative: bool  # True: no metric scale yet (floor mode), ``scale`` is the model's default
    confidence: float  # 1 in fixed mode
    reason: str  # why the frame had no floor measurement ("" if it had one or in fixed mode)

    def describe(self) -> str:
        """The floor scale for the periodic log line, e.g. ``floor scale 1.02 m/unit (confidence 0.93)``."""
        state = "NONE YET" if self.relative else f"{self.scale:.4g} m/unit"
        return f"floor scale {state} (confidence {self.confidence:.2f}{', ' + self.reason if self.reason else ''})"


class DepthScaler:
    """``fixed`` or ``floor`` scaling (see the module docstring)."""

    def __init__(self, mode: str, fixed_scale: float, floor: FloorScaleConfig | None = None) -> None:
        if mode not in ("fixed", "floor"):
            raise ValueError(f"scale mode must be fixed or floor, got {mode!r}")
        if mode == "floor" and floor is None:
            raise ValueError("floor mode needs a FloorScaleConfig")
        self.mode, self.fixed_scale = mode, fixed_scale
        self.estimator = FloorScaleEstimator(floor) if mode == "floor" else None
        self.last = ScaleDecision(fixed_scale, mode == "floor", 1.0 if mode == "fixed" else 0.0, "")

    def reset(self) -> None:
        """Forget the floor estimate (time went back: the frames that made it may come again, or the
        scene changed); fixed mode has nothing to forget."""
        if self.estimator is not None:
            self.estimator.filter = ScaleFilter(self.estimator.config)
            self.last = ScaleDecision(self.fixed_scale, True, 0.0, "reset: input stamps went back")

    def decide(self, depth: np.ndarray, labels: np.ndarray, K: np.ndarray | None, time_s: float) -> ScaleDecision:
        """Scale of a frame: ``depth`` [H,W] network units, ``labels`` [H,W], ``K`` [3,3] at that size or None."""
        if self.estimator is None:
            return self.last
        if K is None:
            estimate_scale, confidence, reason = self.estimator.filter.scale, 0.0, "no camera_info yet"
        else:
            estimate = self.estimator.update(depth, labels, K, time_s)
            estimate_scale, confidence, reason = estimate.scale, estimate.confidence, estimate.reason
        if estimate_scale is None:
            self.last = ScaleDecision(self.fixed_scale, True, 0.0, reason)
        else:
            self.last = ScaleDecision(estimate_scale, False, confidence, reason)
        return self.last
