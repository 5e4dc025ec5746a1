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

Semantics: a confusion matrix over pixels whose ground truth is not void (255); mIoU is the mean
IoU over the classes that occur in prediction or ground truth; pixel accuracy is correct / counted.
Over a data set the confusion matrices are summed first (:class:`SemanticAccumulator`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

VOID_LABEL = 255
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
