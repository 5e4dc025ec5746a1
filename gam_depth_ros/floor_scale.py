"""Metric scale from the floor: relative depth + floor labels + intrinsics + the camera's height.

A robot knows how high its camera sits above the floor (``camera_height``, metres). The network's
depth is relative (right up to one unknown factor per frame); its semantic head finds the floor.
Back-projecting the floor pixels with the relative depth gives points on a plane whose distance
from the camera centre is ``d_rel``; the metric scale is ``camera_height / d_rel``.

Per frame (:func:`fit_floor_plane`): floor pixels (``floor_classes``, NYU-40 ``floor``) are
back-projected (ROS optical frame: x right, y down, z forward), a plane is fitted by RANSAC on a
random subset then refitted by least squares on the inliers. A frame is rejected (no measurement)
when it has fewer than ``min_floor_pixels`` floor pixels, when too few points agree with the
plane (``min_inlier_fraction``), when their RMS residual is large relative to the plane distance
(``max_relative_rms``), or when the plane is tilted by more than ``max_tilt_deg`` from the
camera's "up" (-y in the optical frame, pitched by ``camera_pitch_deg``): furniture tops and walls
labelled as floor by a noisy segmenter are caught by RANSAC (outliers) or by the tilt test.

Over time (:class:`ScaleFilter`): a measurement is accepted when it lies within ``gate`` (in log
scale) of the current estimate (any measurement is accepted while there is none, or after
``reset_after`` rejections in a row: the scene really changed); the estimate is the median of the
last ``window`` accepted values in log scale (robust to single-frame spikes); without new
measurements the last estimate is held, and its confidence decays with ``hold_time`` seconds.
No scale is given until ``min_agreeing`` measurements agree (each within ``gate`` of the median
of those before it): a single plane fitted to a few mislabelled pixels can pass every per-frame
test (measured: a room with no floor in view, 1-3 % of its pixels labelled floor by the demo
model, gave one such fit in 60 frames, 15 times too far, which alone was held and published for the
50 frames after it), and it is not confirmed by the next frames. While unconfirmed, a
measurement that disagrees replaces the candidates; after a reset the new scale is confirmed the
same way.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass

import numpy as np

FLOOR_CLASS = 1  # NYU-40 id of "floor" (rugs, "floor mat", sit a little above it and are left out)


@dataclass(frozen=True)
class FloorScaleConfig:
    """Settings of the estimator (the node's ``floor_*`` parameters)."""

    camera_height: float = 0.8  # metres from the optical centre down to the floor
    floor_classes: tuple[int, ...] = (FLOOR_CLASS,)  # label ids that count as floor
    camera_pitch_deg: float = 0.0  # expected downward pitch (positive looks down); tilt is measured against it
    min_floor_pixels: int = 300  # fewer floor pixels: no measurement
    max_points: int = 2000  # floor pixels used (random subset) for speed
    ransac_iterations: int = 64
    inlier_distance: float = 0.02  # a point is an inlier within this fraction of the plane distance
    min_inlier_fraction: float = 0.6
    max_relative_rms: float = 0.02  # inlier RMS residual / plane distance
    max_tilt_deg: float = 25.0  # plane normal vs. the expected up direction
    window: int = 15  # accepted measurements in the running median
    gate: float = 0.15  # |ln(measurement / estimate)| above this is an outlier
    reset_after: int = 10  # consecutive outliers that restart the filter
    min_agreeing: int = 3  # agreeing measurements before a scale is given (one lucky fit is not enough)
    hold_time: float = 5.0  # seconds over which the confidence of a held estimate decays (1/e)

    def __post_init__(self) -> None:
        if self.camera_height <= 0:
            raise ValueError(f"camera_height must be positive, got {self.camera_height}")
        if self.min_floor_pixels < 3 or self.window < 1 or self.gate <= 0 or self.hold_time <= 0:
            raise ValueError("min_floor_pixels >= 3, window >= 1, gate > 0 and hold_time > 0 are required")
        if not 1 <= self.min_agreeing <= self.window:
            raise ValueError(f"min_agreeing must be between 1 and window ({self.window}), got {self.min_agreeing}")


@dataclass(frozen=True)
class PlaneFit:
    """A floor plane n . X = d (n unit, from the camera towards the floor; d > 0) in relative units."""

    normal: np.ndarray  # [3]
    distance: float  # camera centre to the plane, relative units
    inlier_fraction: float
    relative_rms: float
    tilt_deg: float
    points: int


def backproject(depth: np.ndarray, K: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Points ``[N,3]`` (camera frame) of the ``mask`` pixels of ``depth`` ``[H,W]`` with intrinsics ``K`` ``[3,3]``."""
    v, u = np.nonzero(mask)
    z = depth[v, u].astype(np.float64)
    return np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=1)


def _plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane of ``points`` [N,3]: unit normal n and offset d with n . X = d."""
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    normal = vt[-1]
    return normal, float(normal @ centre)


def rejection_kind(reason: str) -> str:
    """``reason`` with its numbers replaced by ``N``, so that rejections of one kind can be counted together."""
    return re.sub(r"\d+(\.\d+)?", "N", reason)


def fit_floor_plane(depth: np.ndarray, labels: np.ndarray, K: np.ndarray, config: FloorScaleConfig,
                    rng: np.random.Generator) -> tuple[PlaneFit | None, str]:
    """Fit the floor of one frame; returns (fit, "") or (None, why the frame was rejected).

    ``depth`` [H,W] relative (positive, NaN/0 invalid), ``labels`` [H,W] class ids, ``K`` [3,3] at
    that resolution.
    """
    mask = np.isin(labels, config.floor_classes) & np.isfinite(depth) & (depth > 0)
    count = int(mask.sum())
    if count < config.min_floor_pixels:
        return None, f"{count} floor pixels (< {config.min_floor_pixels})"
    points = backproject(depth, K, mask)
    if len(points) > config.max_points:
        points = points[rng.choice(len(points), config.max_points, replace=False)]
    best, best_count = None, -1
    for _ in range(config.ransac_iterations):
        sample = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(sample[1] - sample[0], sample[2] - sample[0])
        norm = np.linalg.norm(normal)
        if norm < 1e-12:
            continue
        normal /= norm
        offset = float(normal @ sample[0])
        if abs(offset) < 1e-9:
            continue
        inliers = np.abs(points @ normal - offset) < config.inlier_distance * abs(offset)
        if inliers.sum() > best_count:
            best, best_count = inliers, int(inliers.sum())
    if best is None or best_count < 3:
        return None, "no plane found among the floor points"
    normal, offset = _plane(points[best])
    if offset < 0:  # orient n from the camera towards the floor, so that d > 0 is the camera's height
        normal, offset = -normal, -offset
    residual = points @ normal - offset
    inliers = np.abs(residual) < config.inlier_distance * offset
    fraction = float(inliers.mean())
    rms = float(np.sqrt(np.mean(residual[inliers] ** 2)) / offset) if inliers.any() else math.inf
    pitch = math.radians(config.camera_pitch_deg)
    down = np.array([0.0, math.cos(pitch), math.sin(pitch)])  # gravity in the optical frame of a pitched camera
    tilt = math.degrees(math.acos(float(np.clip(normal @ down, -1.0, 1.0))))
    fit = PlaneFit(normal, offset, fraction, rms, tilt, len(points))
    if fraction < config.min_inlier_fraction:
        return None, f"poor floor fit: {100 * fraction:.0f} % inliers (< {100 * config.min_inlier_fraction:.0f} %)"
    if rms > config.max_relative_rms:
        return None, f"poor floor fit: RMS residual {100 * rms:.1f} % of the distance"
    if tilt > config.max_tilt_deg:
        return None, f"floor plane tilted {tilt:.0f} deg from the expected up direction (> {config.max_tilt_deg:g})"
    return fit, ""


@dataclass
class ScaleEstimate:
    """The filter's state after a frame."""

    scale: float | None  # metres per relative unit; None until min_agreeing measurements agree
    confidence: float  # 0..1
    measured: float | None  # this frame's measurement (None if rejected)
    accepted: bool  # the measurement joined the estimate (or, before confirmation, the candidates)
    reason: str  # why the frame gave no scale-bearing measurement ("" if it did)


class ScaleFilter:
    """Robust temporal filter of per-frame scale measurements (see the module docstring)."""

    def __init__(self, config: FloorScaleConfig) -> None:
        self.config = config
        self.logs: deque[float] = deque(maxlen=config.window)
        self.outliers = 0
        self.last_time: float | None = None
        self.quality = 0.0

    @property
    def confirmed(self) -> bool:
        """Whether ``min_agreeing`` agreeing measurements stand behind the estimate."""
        return len(self.logs) >= self.config.min_agreeing

    @property
    def scale(self) -> float | None:
        return self._median() if self.confirmed else None

    def _median(self) -> float | None:
        """The median of the accepted measurements (or candidates), None when there are none."""
        return float(math.exp(np.median(self.logs))) if self.logs else None

    def update(self, measured: float | None, time_s: float, quality: float = 1.0, reason: str = "") -> ScaleEstimate:
        accepted = False
        if measured is not None and measured > 0 and math.isfinite(measured):
            current = self._median()
            if current is None or abs(math.log(measured / current)) <= self.config.gate:
                accepted = True
            elif not self.confirmed:  # a disagreeing candidate: start the count again from this one
                self.logs.clear()
                accepted = True
            else:
                self.outliers += 1
                reason = f"measurement {measured:.4g} is an outlier against {current:.4g}"
                if self.outliers >= self.config.reset_after:  # the scene changed: start over
                    self.logs.clear()
                    accepted = True
            if accepted:
                self.logs.append(math.log(measured))
                self.outliers, self.last_time, self.quality = 0, time_s, quality
                reason = "" if self.confirmed else (f"scale not confirmed yet: {len(self.logs)} of "
                                                    f"{self.config.min_agreeing} agreeing measurements")
        confidence = 0.0
        if self.confirmed and self.last_time is not None:
            age = max(0.0, time_s - self.last_time)
            confidence = self.quality * (len(self.logs) / self.config.window) * math.exp(-age / self.config.hold_time)
        return ScaleEstimate(self.scale, float(min(1.0, confidence)), measured, accepted, reason)


class FloorScaleEstimator:
    """Per-frame floor fit + temporal filter: ``update(depth, labels, K, time_s) -> ScaleEstimate``."""

    def __init__(self, config: FloorScaleConfig, seed: int = 0) -> None:
        self.config = config
        self.filter = ScaleFilter(config)
        self.rng = np.random.default_rng(seed)

    def update(self, depth: np.ndarray, labels: np.ndarray, K: np.ndarray, time_s: float) -> ScaleEstimate:
        """``depth`` [H,W] relative, ``labels`` [H,W], ``K`` [3,3] at that resolution, ``time_s`` seconds."""
        fit, reason = fit_floor_plane(depth, labels, K, self.config, self.rng)
        if fit is None:
            return self.filter.update(None, time_s, reason=reason)
        return self.filter.update(self.config.camera_height / fit.distance, time_s, quality=fit.inlier_fraction)
