"""The one metrics implementation: depth errors and accuracies, semantic mIoU and pixel accuracy.

Training validation, ``gam-depth-eval``, ``gam-depth-bag-eval`` and the benchmarks all call these functions.

Depth protocol (per image, :func:`depth_metrics`)
-------------------------------------------------
1. valid pixels: ground truth finite and inside (``min_depth``, ``max_depth``), and the optional
   ``mask``; an image without a valid pixel is skipped (a single image raises ``ValueError``);
2. optional median scaling: the prediction is multiplied by median(gt) / median(pred) over the
   valid pixels (self-supervised depth has no metric scale); the factor is returned as ``scale``
   (1.0 without scaling);
3. the prediction is clamped to [``min_depth``, ``max_depth``];
4. over the valid pixels: ``abs_rel`` mean(|p - g| / g), ``sq_rel`` mean((p - g)^2 / g),
   ``rmse`` sqrt(mean((p - g)^2)), ``rmse_log`` sqrt(mean((ln p - ln g)^2)), ``log10``
   mean(|log10 p - log10 g|), ``delta1..3`` fraction with max(p/g, g/p) < 1.25, 1.25^2, 1.25^3.

A batch ``[B,1,H,W]`` gives the mean of its per-image metrics (the standard protocol averages per
image, not per pixel); :class:`DepthMetricsAccumulator` does the same over a whole data set.

Obstacles (:func:`obstacle_metrics`, what a robot needs beside the overall scores, which floor and
walls dominate)
----------------------------------------------------------------------------------------------
- *object pixels*: valid pixels whose ground-truth label is not structural (``STRUCTURAL_CLASSES``:
  wall, floor, ceiling by default; configurable) and not void. On them, with the whole image's
  median-scaling factor (not one fitted to the objects): ``object_abs_rel``, ``object_rmse``,
  ``object_delta1``, and ``obstacle_recall``, the fraction of object pixels within 1.25x of the true
  depth pooled over all object pixels of a data set (a frame with a large sofa counts more than one
  with a chair leg; ``object_delta1`` is the per-image mean of the same test);
- *depth boundaries* (:func:`depth_edges`, :func:`boundary_scores`): a pixel is a discontinuity when
  its depth and a neighbour's 2 px away (left-right or up-down) differ by more than
  ``edge_ratio`` (1.15 = 15 %), both valid; predicted edges within ``tolerance_px`` (2) of a
  ground-truth edge are correct: ``boundary_precision`` = correct / predicted edges,
  ``boundary_recall`` = ground-truth edges with a predicted edge within the tolerance / ground-truth
  edges, ``boundary_f1``. Scale-free (ratios), so no median scaling is needed.
Without labels, the object scores are not computed (:func:`obstacle_metrics` returns
``objects_scored: False``); the boundary scores need depth only.

Semantics: a confusion matrix over pixels whose ground truth is not void (255); mIoU is the mean
IoU over the classes that occur in prediction or ground truth; pixel accuracy is correct / counted.
Over a data set the confusion matrices are summed first (:class:`SemanticAccumulator`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

VOID_LABEL = 255
STRUCTURAL_CLASSES = ("wall", "floor", "ceiling")
OBJECT_KEYS = ("object_abs_rel", "object_rmse", "object_delta1", "obstacle_recall")
BOUNDARY_KEYS = ("boundary_precision", "boundary_recall", "boundary_f1")
DEPTH_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")


def _numpy(array: Any, dtype=np.float64) -> np.ndarray:
    if hasattr(array, "detach"):  # torch tensor
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=dtype)


def _as_images(array: np.ndarray, name: str) -> np.ndarray:
    """[H,W], [1,H,W], [B,H,W] or [B,1,H,W] -> [B,H,W]."""
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3:
        return array
    if array.ndim == 4 and array.shape[1] == 1:
        return array[:, 0]
    raise ValueError(f"{name}: expected [H,W] or [B,1,H,W], got shape {array.shape}")


def single_image_depth_metrics(
    pred: np.ndarray, gt: np.ndarray, median_scaling: bool, min_depth: float, max_depth: float,
    mask: np.ndarray | None = None,
) -> dict[str, float] | None:
    """Metrics of one ``[H,W]`` image (float64 numpy); None when no pixel is valid. See the module docstring."""
    valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth) & np.isfinite(pred)
    if mask is not None:
        valid &= mask.astype(bool)
    if not valid.any():
        return None
    g, p = gt[valid], pred[valid]
    scale = 1.0
    if median_scaling:
        median_pred = float(np.median(p))
        if median_pred <= 0:
            raise ValueError(f"median of the prediction is {median_pred}; depth must be positive")
        scale = float(np.median(g)) / median_pred
        p = p * scale
    p = np.clip(p, min_depth, max_depth)
    ratio = np.maximum(g / p, p / g)
    diff = p - g
    return {
        "abs_rel": float(np.mean(np.abs(diff) / g)),
        "sq_rel": float(np.mean(diff**2 / g)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2))),
        "log10": float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
        "scale": scale,
    }


def depth_metrics(
    pred: Any, gt: Any, median_scaling: bool = True, min_depth: float = 0.1, max_depth: float = 10.0,
    mask: Any = None,
) -> dict[str, float]:
    """Depth metrics of a prediction against ground truth (numpy or torch).

    Parameters
    ----------
    pred:
        Predicted depth ``[H,W]`` or ``[B,1,H,W]`` (metres, or any unit with median scaling).
    gt:
        Ground-truth depth in metres, same shape; 0, NaN or out-of-range pixels are invalid.
    median_scaling:
        Scale each image's prediction by median(gt) / median(pred) over its valid pixels.
    min_depth, max_depth:
        Valid ground-truth range and clamp range of the prediction, metres.
    mask:
        Optional boolean ``[H,W]`` / ``[B,1,H,W]`` of pixels to evaluate (e.g. an evaluation crop).

    Returns
    -------
    dict
        ``abs_rel, sq_rel, rmse, rmse_log, log10, delta1, delta2, delta3`` and ``scale`` (the
        median-scaling factor, 1.0 without scaling), each the mean over images with a valid pixel,
        plus ``images`` (their count).

    Raises
    ------
    ValueError
        Shapes differ or no image has a valid pixel.
    """
    p = _as_images(_numpy(pred), "pred")
    g = _as_images(_numpy(gt), "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} differ in shape")
    m = None if mask is None else _as_images(_numpy(mask, bool), "mask")
    accumulator = DepthMetricsAccumulator()
    for i in range(p.shape[0]):
        accumulator.add(single_image_depth_metrics(p[i], g[i], median_scaling, min_depth, max_depth,
                                                   None if m is None else m[i if m.shape[0] > 1 else 0]))
    if accumulator.count == 0:
        raise ValueError(f"no ground-truth pixel inside ({min_depth}, {max_depth}) m")
    return accumulator.mean()


class DepthMetricsAccumulator:
    """Mean of per-image depth metrics; images without valid pixels (``None``) are counted as skipped."""

    def __init__(self) -> None:
        self.sums = dict.fromkeys((*DEPTH_KEYS, "scale"), 0.0)
        self.scales: list[float] = []
        self.count = 0
        self.skipped = 0

    def add(self, metrics: dict[str, float] | None) -> None:
        if metrics is None:
            self.skipped += 1
            return
        for key in self.sums:
            self.sums[key] += metrics[key]
        self.scales.append(metrics["scale"])
        self.count += 1

    def mean(self) -> dict[str, float]:
        """Mean metrics and ``images``; NaN metrics when nothing was added."""
        n = self.count
        out = {key: (value / n if n else math.nan) for key, value in self.sums.items()}
        out["images"] = float(n)
        return out

    def scale_stats(self) -> dict[str, float]:
        """Median and standard deviation of the per-image scale factors (how stable the model's scale is)."""
        if not self.scales:
            return {"median": math.nan, "std": math.nan}
        values = np.asarray(self.scales)
        return {"median": float(np.median(values)), "std": float(np.std(values))}


def confusion_matrix(pred_labels: Any, gt_labels: Any, num_classes: int = 40) -> np.ndarray:
    """``[C,C]`` int64 counts (rows: ground truth, columns: prediction) over non-void ground-truth pixels.

    Predictions outside 0..C-1 (e.g. void) count as wrong for the ground-truth class (they fall in
    no column but still count in the ground-truth total; see :func:`semantic_metrics_from_confusion`).
    """
    pred = _numpy(pred_labels, np.int64).reshape(-1)
    gt = _numpy(gt_labels, np.int64).reshape(-1)
    if pred.shape != gt.shape:
        raise ValueError(f"pred_labels and gt_labels differ in size: {pred.size} vs {gt.size}")
    keep = (gt >= 0) & (gt < num_classes)
    pred, gt = pred[keep], gt[keep]
    wrong = (pred < 0) | (pred >= num_classes)
    counts = np.bincount(gt[~wrong] * num_classes + pred[~wrong], minlength=num_classes * num_classes)
    matrix = counts.reshape(num_classes, num_classes).astype(np.int64)
    # Invalid predictions: one extra column, folded in as "missed" for the ground-truth class.
    missed = np.bincount(gt[wrong], minlength=num_classes).astype(np.int64)
    return np.concatenate([matrix, missed[:, None]], axis=1)


def semantic_metrics_from_confusion(matrix: np.ndarray) -> dict[str, float]:
    """``miou``, ``pixel_acc`` and ``classes`` (classes counted in the mean) of a confusion matrix.

    Accepts the ``[C,C+1]`` matrices of :func:`confusion_matrix` (last column: invalid predictions).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    num_classes = matrix.shape[0]
    square = matrix[:, :num_classes]
    total_gt = matrix.sum(1)
    correct = np.diag(square)
    union = total_gt + square.sum(0) - correct
    present = union > 0
    counted = float(total_gt.sum())
    return {
        "miou": float(np.mean(correct[present] / union[present])) if present.any() else math.nan,
        "pixel_acc": float(correct.sum() / counted) if counted else math.nan,
        "classes": float(present.sum()),
    }


def semantic_metrics(pred_labels: Any, gt_labels: Any, num_classes: int = 40) -> dict[str, float]:
    """mIoU and pixel accuracy of predicted class ids against ground truth (255 = void, ignored).

    Any shapes (equal sizes); several images at once are pooled like one (as over a data set).
    Returns ``miou``, ``pixel_acc`` and ``classes`` (how many classes the mean runs over).
    """
    return semantic_metrics_from_confusion(confusion_matrix(pred_labels, gt_labels, num_classes))


class SemanticAccumulator:
    """Sum of confusion matrices over a data set."""

    def __init__(self, num_classes: int = 40) -> None:
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
        self.images = 0

    def add(self, pred_labels: Any, gt_labels: Any) -> None:
        self.matrix += confusion_matrix(pred_labels, gt_labels, self.num_classes)
        self.images += 1

    def result(self) -> dict[str, float]:
        return semantic_metrics_from_confusion(self.matrix) | {"images": float(self.images)}


def structural_ids(names: tuple[str, ...] | list[str] = STRUCTURAL_CLASSES) -> tuple[int, ...]:
    """0-based NYU-40 ids of structural class names; an unknown name is an error naming it."""
    from gam_depth_ros.classes import NYU40_CLASS_NAMES

    unknown = [n for n in names if n not in NYU40_CLASS_NAMES]
    if unknown:
        raise ValueError(f"unknown structural classes {unknown}; known: {', '.join(NYU40_CLASS_NAMES)}")
    return tuple(NYU40_CLASS_NAMES.index(n) for n in names)


def object_mask(labels: Any, structural: tuple[int, ...] | None = None) -> np.ndarray:
    """Boolean mask (same shape as ``labels``) of object pixels: neither structural nor void."""
    ids = structural_ids() if structural is None else structural
    labels = _numpy(labels, np.int64)
    return ~np.isin(labels, ids) & (labels != VOID_LABEL) & (labels >= 0)


def depth_edges(depth: np.ndarray, edge_ratio: float = 1.15, valid: np.ndarray | None = None) -> np.ndarray:
    """``[H,W]`` bool depth discontinuities (module docstring): a jump of more than ``edge_ratio``
    between the pixels 1 px either side (left-right or up-down), both valid and positive."""
    d = np.asarray(depth, dtype=np.float64)
    ok = np.isfinite(d) & (d > 0) if valid is None else (np.asarray(valid, bool) & np.isfinite(d) & (d > 0))
    log_d = np.log(np.where(ok, d, 1.0))
    threshold = math.log(edge_ratio)
    edges = np.zeros(d.shape, bool)
    jump_x = ok[:, 2:] & ok[:, :-2] & (np.abs(log_d[:, 2:] - log_d[:, :-2]) > threshold)
    jump_y = ok[2:, :] & ok[:-2, :] & (np.abs(log_d[2:, :] - log_d[:-2, :]) > threshold)
    edges[:, 1:-1] |= jump_x
    edges[1:-1, :] |= jump_y
    return edges


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square (Chebyshev) dilation of a bool ``[H,W]`` by ``radius`` pixels, numpy only."""
    out = mask.copy()
    h, w = mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx == 0:
                continue
            ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
            xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
            out[yd, xd] |= mask[ys, xs]
    return out


def boundary_scores(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, edge_ratio: float = 1.15,
                    tolerance_px: int = 2) -> dict[str, float] | None:
    """Precision, recall and F1 of predicted depth edges against ground-truth ones; None without a gt edge."""
    gt_edges = depth_edges(gt, edge_ratio, valid)
    if not gt_edges.any():
        return None
    pred_edges = depth_edges(pred, edge_ratio, valid)
    near_gt, near_pred = dilate(gt_edges, tolerance_px), dilate(pred_edges, tolerance_px)
    precision = float((pred_edges & near_gt).sum() / pred_edges.sum()) if pred_edges.any() else 0.0
    recall = float((gt_edges & near_pred).sum() / gt_edges.sum())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"boundary_precision": precision, "boundary_recall": recall, "boundary_f1": f1}


def obstacle_metrics(
    pred: np.ndarray, gt: np.ndarray, labels: np.ndarray | None, median_scaling: bool, min_depth: float = 0.1,
    max_depth: float = 10.0, mask: np.ndarray | None = None, structural: tuple[int, ...] | None = None,
    edge_ratio: float = 1.15, tolerance_px: int = 2,
) -> dict[str, float | bool]:
    """Object-pixel and depth-boundary scores of one ``[H,W]`` image (module docstring).

    ``labels`` are the ground truth's 0-based NYU-40 ids (None: no object scores, ``objects_scored``
    False). Object scores use the whole image's median-scaling factor, the one
    :func:`single_image_depth_metrics` applies. Also returns ``object_pixels`` and
    ``obstacle_hits`` (object pixels within 1.25x), which :class:`ObstacleAccumulator` pools.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth) & np.isfinite(pred) & (pred > 0)
    if mask is not None:
        valid &= np.asarray(mask, bool)
    out: dict[str, float | bool] = {"objects_scored": False}
    if not valid.any():
        return out
    scale = 1.0
    if median_scaling:
        scale = float(np.median(gt[valid])) / float(np.median(pred[valid]))
    scaled = np.clip(pred * scale, min_depth, max_depth)
    boundaries = boundary_scores(np.where(valid, scaled, np.nan), gt, valid, edge_ratio, tolerance_px)
    if boundaries is not None:
        out.update(boundaries)
    if labels is None:
        return out
    objects = valid & object_mask(labels, structural)
    out["objects_scored"] = True
    out["object_pixels"] = float(objects.sum())
    if not objects.any():
        return out
    p, g = scaled[objects], gt[objects]
    within = np.maximum(p / g, g / p) < 1.25
    out.update({
        "object_abs_rel": float(np.mean(np.abs(p - g) / g)),
        "object_rmse": float(np.sqrt(np.mean((p - g) ** 2))),
        "object_delta1": float(np.mean(within)),
        "obstacle_hits": float(within.sum()),
    })
    return out


class ObstacleAccumulator:
    """Means of :func:`obstacle_metrics` over images (per-image means; ``obstacle_recall`` pooled)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, metrics: dict) -> None:
        self.rows.append(metrics)

    def result(self) -> dict[str, float | bool | str]:
        """Per-image means of the object and boundary scores; a note when nothing could be computed."""
        out: dict[str, float | bool | str] = {}
        for key in ("object_abs_rel", "object_rmse", "object_delta1", *BOUNDARY_KEYS):
            values = [r[key] for r in self.rows if key in r]
            if values:
                out[key] = float(np.mean(values))
        scored = [r for r in self.rows if r.get("objects_scored")]
        out["objects_scored"] = bool(scored)
        if not scored:
            out["note"] = "object scores not computed: no ground-truth labels"
        pixels = sum(r.get("object_pixels", 0.0) for r in scored)
        if pixels:
            out["obstacle_recall"] = float(sum(r.get("obstacle_hits", 0.0) for r in scored) / pixels)
        out["object_images"] = float(sum(1 for r in scored if r.get("object_pixels", 0) > 0))
        out["boundary_images"] = float(sum(1 for r in self.rows if "boundary_f1" in r))
        return out
