"""Scoring predictions of bag frames against their ground truth, frame by frame and overall.

A prediction (depth in metres after the model's or node's scale, labels) is compared with the
frame's ground truth at the ground truth's resolution: depth is resized bilinearly and labels by
nearest neighbour when the sizes differ. Two depth protocols per frame, both through
:func:`gam_depth_ros.evaluation.metrics.single_image_depth_metrics`: ``median`` (per-image median
scaling, the self-supervised protocol) and ``metric`` (the depth as published, no scaling). The
per-frame factor of each (``median``: median(gt)/median(pred); ``metric``: the scale the
prediction used) is kept, so that the report can show how steady a scale is over time. Beside the
overall scores, :func:`~gam_depth_ros.evaluation.metrics.obstacle_metrics` gives, per protocol,
object-pixel scores (when the bag has ground-truth labels) and depth-boundary scores. Semantics are
also scored with the ground-truth ids shifted by -1 and +1 (``label_offset_check``), so that a
ground truth read in the wrong id convention shows (see :func:`gam_depth_ros.labels.offset_warning`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gam_depth_ros.evaluation.metrics import (
    DEPTH_KEYS,
    ObstacleAccumulator,
    SemanticAccumulator,
    obstacle_metrics,
    single_image_depth_metrics,
)
from gam_depth_ros.image_resize import resize_image, resize_nearest
from gam_depth_ros.labels import shift_labels


def resize_depth(depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``[h,w]`` float depth -> ``shape`` (bilinear or area; NaN/inf become 0 = invalid first)."""
    return resize_image(np.where(np.isfinite(depth), depth, 0.0).astype(np.float32), *shape)


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``[h,w]`` uint8 labels -> ``shape`` (nearest)."""
    return resize_nearest(labels, *shape)


@dataclass
class FrameScore:
    """Scores of one frame (None where it had no valid ground truth)."""

    stamp_ns: int
    median: dict[str, float] | None
    metric: dict[str, float] | None
    scale: float  # metres per network unit used for the prediction (NaN: none yet, depth not published)


@dataclass
class Scorer:
    """Accumulates :class:`FrameScore` and semantic confusion over a bag."""

    min_depth: float = 0.1
    max_depth: float = 10.0
    num_classes: int = 40
    frames: list[FrameScore] = field(default_factory=list)
    semantic: SemanticAccumulator | None = None
    shifted: dict[int, SemanticAccumulator] = field(default_factory=dict)  # ground truth ids + shift
    obstacles: dict[str, ObstacleAccumulator] = field(
        default_factory=lambda: {"median": ObstacleAccumulator(), "metric": ObstacleAccumulator()})

    def add(self, stamp_ns: int, depth_m: np.ndarray, scale: float, gt_depth: np.ndarray | None,
            labels: np.ndarray | None = None, gt_labels: np.ndarray | None = None) -> FrameScore:
        """Score one prediction (``depth_m`` [h,w] metres, NaN = invalid) against its ground truth."""
        median = metric = None
        if gt_depth is not None:
            pred = resize_depth(depth_m, gt_depth.shape).astype(np.float64)
            gt = gt_depth.astype(np.float64)
            usable = gt > 0
            pred_ok = pred > 0
            mask = usable & pred_ok
            if mask.any():
                median = single_image_depth_metrics(pred, gt, True, self.min_depth, self.max_depth, mask=mask)
                metric = single_image_depth_metrics(pred, gt, False, self.min_depth, self.max_depth, mask=mask)
                object_labels = None if gt_labels is None else resize_labels(gt_labels, gt.shape)
                for protocol, scaling in (("median", True), ("metric", False)):
                    self.obstacles[protocol].add(obstacle_metrics(pred, gt, object_labels, scaling, self.min_depth,
                                                                  self.max_depth, mask=mask))
        if labels is not None and gt_labels is not None:
            if self.semantic is None:
                self.semantic = SemanticAccumulator(self.num_classes)
                self.shifted = {shift: SemanticAccumulator(self.num_classes) for shift in (-1, 1)}
            labels = resize_labels(labels, gt_labels.shape)
            self.semantic.add(labels, gt_labels)
            for shift, accumulator in self.shifted.items():
                accumulator.add(labels, shift_labels(gt_labels, shift, self.num_classes))
        score = FrameScore(stamp_ns, median, metric, scale)
        self.frames.append(score)
        return score

    def summary(self) -> dict:
        """Means over frames with ground truth, the scale statistics, and semantics if scored."""
        out: dict = {"frames": len(self.frames)}
        for protocol in ("median", "metric"):
            rows = [getattr(f, protocol) for f in self.frames if getattr(f, protocol) is not None]
            out["scored_frames"] = len(rows)
            if rows:
                out[protocol] = {key: float(np.mean([r[key] for r in rows])) for key in DEPTH_KEYS}
        factors = np.array([f.median["scale"] * f.scale for f in self.frames if f.median is not None])
        used = np.array([f.scale for f in self.frames if np.isfinite(f.scale)])
        out["frames_without_scale"] = len(self.frames) - len(used)  # floor mode before its first valid scale
        out["scale"] = {
            "median_scaling_factor": _spread(factors),  # metres per network unit the median scaling implies
            "used": _spread(used),  # metres per network unit the prediction used
        }
        if self.semantic is not None and self.semantic.images:
            out["semantic"] = self.semantic.result()
            out["label_offset_check"] = {"0": out["semantic"]["miou"]} | {
                f"{shift:+d}": accumulator.result()["miou"] for shift, accumulator in self.shifted.items()}
        if any(a.rows for a in self.obstacles.values()):
            out["obstacles"] = {protocol: a.result() for protocol, a in self.obstacles.items()}
        return out


def _spread(values: np.ndarray) -> dict[str, float]:
    """Median, mean, std and frame-to-frame std (flicker) of a per-frame scale, also in log."""
    if values.size == 0:
        return {}
    steps = np.diff(values)
    log_steps = np.diff(np.log(values)) if (values > 0).all() else np.array([np.nan])
    return {
        "median": float(np.median(values)), "mean": float(np.mean(values)), "std": float(np.std(values)),
        "frame_to_frame_std": float(np.std(steps)) if steps.size else 0.0,
        "frame_to_frame_log_std": float(np.std(log_steps)) if steps.size else 0.0,
    }
