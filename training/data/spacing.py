"""Which frames form a training sample: spacing by frame count, by time, or by camera motion.

A sample is a target frame and its source frames (``frame_ids`` such as ``[0, -1, 1]``). The view
synthesis needs a baseline: neighbouring frames of a 30 Hz video move too little for depth to show
in the warp, and a fixed frame stride means a different baseline at every frame rate and speed.
So the sources can be chosen by what the camera did instead:

``frames``
    frame ``t + stride * id`` (the old rule; the only one without stamps or poses).
``motion``
    needs camera poses (``poses.txt``, e.g. from the robot's odometry). Walking away from the
    target, the source is the first frame whose motion relative to the target reaches the middle
    of the range - translation ``(min_translation + max_translation) / 2`` *or* rotation
    ``(min_rotation_deg + max_rotation_deg) / 2`` - provided it stays within both maxima; when
    the frames are sparse and that frame overshoots, the frame before it is taken if it reaches a
    minimum; otherwise the target gives no sample. Defaults 5-15 cm or 3-10 degrees: the middle
    (10 cm, 6.5 degrees) is the baseline the shipped model was trained with (stride 10 at 30 Hz).
``time``
    needs the frames' stamps (file names in nanoseconds, as rosbag extraction writes them): the same
    rule on the time difference, ``min_seconds``-``max_seconds`` (0.2-0.6 s). Frames the extraction
    dropped as near-stationary (``min_motion``) leave gaps, so a pause is skipped, not paired.
``auto``
    ``motion`` when poses exist, else ``time``.

``min_baseline`` (metres, 0 = off; any mode, needs poses) drops every sample in which a source lies
closer than this to the target. With the camera's poses in the warp, a source the camera only
turned to (a robot rotating on the spot) is matched exactly at *any* depth: the per-pixel minimum
over sources then picks it and the sample teaches no depth at all. Half the samples of the rich
training rooms were such turns (docs/training.md).

Frame id ``±k`` chains the rule ``k`` times (the second source is spaced from the first). No
source is searched further than ``max_gap_seconds`` (2 s) from the frame it is spaced from: after
that long the scene may have changed. All rules are frame-rate independent, so the defaults hold
for 10, 15 and 30 Hz cameras.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from training.data.errors import DataError

MODES = ("frames", "time", "motion", "auto")


@dataclass(frozen=True)
class Spacing:
    """The spacing rule and its ranges (module docstring); built from ``DataConfig.options``."""

    mode: str = "frames"
    stride: int = 1  # frames mode
    min_translation: float = 0.05  # metres
    max_translation: float = 0.15
    min_rotation_deg: float = 3.0
    max_rotation_deg: float = 10.0
    min_seconds: float = 0.2
    max_seconds: float = 0.6
    max_gap_seconds: float = 2.0
    min_baseline: float = 0.0  # metres between the target and every source; 0 = no requirement

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise DataError(f"spacing must be one of {MODES}, got {self.mode!r}")
        if self.stride < 1:
            raise DataError(f"stride must be >= 1, got {self.stride}")
        for low, high in (("min_translation", "max_translation"), ("min_rotation_deg", "max_rotation_deg"),
                          ("min_seconds", "max_seconds")):
            if not 0 <= getattr(self, low) < getattr(self, high):
                raise DataError(f"spacing needs 0 <= {low} < {high}, got {getattr(self, low)}, {getattr(self, high)}")
        if self.max_gap_seconds <= 0:
            raise DataError(f"max_gap_seconds must be positive, got {self.max_gap_seconds}")
        if self.min_baseline < 0:
            raise DataError(f"min_baseline must be >= 0 metres, got {self.min_baseline}")

    def describe(self) -> str:
        """The rule in words, for log lines and errors."""
        motion = (f"{self.min_translation:g}-{self.max_translation:g} m or "
                  f"{self.min_rotation_deg:g}-{self.max_rotation_deg:g} deg")
        time = f"{self.min_seconds:g}-{self.max_seconds:g} s"
        rule = {"frames": f"stride {self.stride}", "motion": motion, "time": time,
                "auto": f"{motion} (with poses), else {time}"}[self.mode]
        return rule + (f", sources >= {self.min_baseline:g} m from the target" if self.min_baseline > 0 else "")


#: ``DataConfig.options`` keys read by :func:`spacing_from_options` (``spacing`` is the mode).
OPTION_KEYS = ("spacing", *(f.name for f in fields(Spacing) if f.name != "mode"))


def spacing_from_options(options: dict[str, Any], default_mode: str = "frames") -> Spacing:
    """The :class:`Spacing` of ``options`` (``spacing`` names the mode; ``stride`` alone means frames)."""
    values = {k: options[k] for k in OPTION_KEYS if k in options and k != "spacing"}
    mode = options.get("spacing") or ("frames" if "stride" in options else default_mode)
    if "stride" in options and mode != "frames":  # e.g. --set stride=3 over a config with spacing: auto
        raise DataError(f"stride={options['stride']} counts frames, but spacing is {mode!r}; set spacing: frames "
                        "to space by frame count, or drop stride")
    try:
        return Spacing(mode=str(mode), **{k: type(getattr(Spacing, k))(v) for k, v in values.items()})
    except (TypeError, ValueError) as error:
        raise DataError(f"spacing options {values}: {error}") from error


def stamps_from_names(stems: list[str]) -> np.ndarray | None:
    """``[N]`` int64 stamps when every frame is named by its stamp in nanoseconds, else None.

    Rosbag extraction and the generator write ``<stamp:019d>``: 19 digits (frame numbers such as
    ``000012`` are not stamps).
    """
    if not stems or not all(len(s) == 19 and s.isdigit() for s in stems):
        return None
    return np.asarray([int(s) for s in stems], dtype=np.int64)


def _rotation_deg(R: np.ndarray) -> np.ndarray:
    """Rotation angles in degrees of ``[..., 3, 3]`` rotation matrices."""
    cos = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


class _Rule:
    """Distance measures from one frame to others and the three thresholds of the module docstring."""

    def __init__(self, spacing: Spacing, mode: str, stamps: np.ndarray | None, poses: np.ndarray | None) -> None:
        self.mode, self.stamps = mode, stamps
        self.inverse = np.linalg.inv(poses) if mode == "motion" else None
        self.poses = poses
        if mode == "motion":
            self.low = np.array([spacing.min_translation, spacing.min_rotation_deg])
            self.high = np.array([spacing.max_translation, spacing.max_rotation_deg])
        else:
            self.low, self.high = np.array([spacing.min_seconds]), np.array([spacing.max_seconds])
        self.aim = (self.low + self.high) / 2
        self.max_gap_ns = int(spacing.max_gap_seconds * 1e9)

    def measure(self, i: int, candidates: np.ndarray) -> np.ndarray:
        """``[C, M]`` motion (translation m, rotation deg) or ``[C, 1]`` seconds from frame ``i`` to ``candidates``."""
        if self.mode == "motion":
            relative = self.inverse[i] @ self.poses[candidates]
            return np.stack([np.linalg.norm(relative[:, :3, 3], axis=1), _rotation_deg(relative[:, :3, :3])], axis=1)
        return (np.abs(self.stamps[candidates] - self.stamps[i]) / 1e9)[:, None]

    def source(self, i: int, direction: int) -> int | None:
        """The frame spaced from ``i`` in ``direction`` (+1 later, -1 earlier), or None."""
        n = len(self.poses) if self.poses is not None else len(self.stamps)
        end = n if direction > 0 else -1
        if self.stamps is not None:  # never search past the time horizon
            horizon = self.stamps[i] + direction * self.max_gap_ns
            limit = int(np.searchsorted(self.stamps, horizon, side="right" if direction > 0 else "left"))
            end = limit if direction > 0 else limit - 1
        candidates = np.arange(i + direction, end, direction)
        if len(candidates) == 0:
            return None
        measures = self.measure(i, candidates)
        reached = np.flatnonzero((measures >= self.aim).any(axis=1))
        if len(reached) == 0:
            return None
        k = int(reached[0])
        if (measures[k] <= self.high).all():
            return int(candidates[k])
        if k > 0 and (measures[k - 1] >= self.low).any() and (measures[k - 1] <= self.high).all():
            return int(candidates[k - 1])
        return None


def resolved_mode(spacing: Spacing, has_poses: bool) -> str:
    """The rule ``auto`` stands for: ``motion`` with poses, else ``time``; other modes as they are."""
    if spacing.mode != "auto":
        return spacing.mode
    return "motion" if has_poses else "time"


def sample_frames(frame_ids: tuple[int, ...], count: int, spacing: Spacing, stamps: np.ndarray | None = None,
                  poses: np.ndarray | None = None) -> list[tuple[int, ...]]:
    """Frame indices of every sample, in ``frame_ids`` order (target first).

    Parameters
    ----------
    frame_ids:
        Target first (0), then the sources' signed positions.
    count:
        Frames of the sequence (N).
    spacing:
        The rule (module docstring).
    stamps:
        ``[N]`` int64 nanoseconds, sorted, or None.
    poses:
        ``[N,4,4]`` world-from-camera, or None.
    """
    if spacing.min_baseline > 0 and poses is None:
        raise DataError(f"min_baseline {spacing.min_baseline:g} m needs camera poses (poses.txt, e.g. "
                        "options.odometry_topic for a rosbag)")
    samples = _spaced_samples(frame_ids, count, spacing, stamps, poses)
    if spacing.min_baseline > 0:
        assert poses is not None
        samples = [s for s in samples if _baselines(poses, s).min(initial=np.inf) >= spacing.min_baseline]
    return samples


def _baselines(poses: np.ndarray, sample: tuple[int, ...]) -> np.ndarray:
    """``[S]`` metres between the target (``sample[0]``) and each source of ``sample``."""
    return np.linalg.norm(poses[list(sample[1:]), :3, 3] - poses[sample[0], :3, 3], axis=1)


def _spaced_samples(frame_ids: tuple[int, ...], count: int, spacing: Spacing, stamps: np.ndarray | None,
                    poses: np.ndarray | None) -> list[tuple[int, ...]]:
    """:func:`sample_frames` before the baseline requirement."""
    mode = resolved_mode(spacing, poses is not None)
    if mode == "frames":
        offsets = [spacing.stride * f for f in frame_ids]
        lo, hi = -min(offsets + [0]), max(offsets + [0])
        return [tuple(t + o for o in offsets) for t in range(lo, count - hi)]
    if mode == "motion" and poses is None:
        raise DataError("spacing 'motion' needs camera poses (poses.txt, e.g. options.odometry_topic for a rosbag)")
    if mode == "time" and stamps is None:
        raise DataError("spacing 'time' needs frames named by their stamps in nanoseconds (as rosbag extraction "
                        "writes them); use spacing 'frames' with a stride, or give poses for 'motion'")
    rule = _Rule(spacing, mode, stamps, poses)
    chained: dict[tuple[int, int], int | None] = {}

    def step(i: int, direction: int) -> int | None:
        if (i, direction) not in chained:
            chained[(i, direction)] = rule.source(i, direction)
        return chained[(i, direction)]

    samples = []
    for t in range(count):
        indices: list[int] = [t]
        for f in frame_ids[1:]:
            j: int | None = t
            for _ in range(abs(f)):
                j = step(j, 1 if f > 0 else -1) if j is not None else None
            if j is None:
                break
            indices.append(j)
        if len(indices) == len(frame_ids):
            samples.append(tuple(indices))
    return samples
