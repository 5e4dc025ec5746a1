"""PNG figures of a bag evaluation, drawn with OpenCV (no plotting library on the robot).

- :func:`sample_montage`: rows of image | prediction | ground truth | relative error;
- :func:`bar_chart`: a titled bar chart with labelled axes (error against distance, latency histogram).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gam_depth_ros.colorize import colorize_depth
from gam_depth_ros.evaluation.scoring import resize_depth
from gam_depth_ros.image_resize import resize_image

ERROR_RANGE = 0.5  # relative error shown from 0 (dark) to this value (bright)


BLACK = (0, 0, 0)
BAR = (70, 110, 180)  # RGB: the blue of the bars
FONT = cv2.FONT_HERSHEY_SIMPLEX  # built into OpenCV: no font files needed on the robot


def save_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an [H, W, 3] uint8 RGB image as PNG; OSError naming the path when it cannot be written."""
    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: cannot write the PNG figure")
    return path


def _text(canvas: np.ndarray, text: str, x: float, y: float) -> None:
    """``text`` with its top-left corner near (x, y)."""
    cv2.putText(canvas, text, (int(x), int(y) + 10), FONT, 0.35, BLACK, 1, cv2.LINE_AA)


def sample_montage(samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path) -> Path:
    """``samples`` of (rgb [H,W,3], predicted depth m [h,w], ground-truth depth m [h',w']) -> one PNG.

    Each row shares one colour range (the ground truth's 2nd..98th percentile); invalid ground
    truth is black in the last two panels.
    """
    rows = []
    for rgb, pred, gt in samples:
        shape = gt.shape
        pred = resize_depth(pred, shape)
        valid = gt > 0
        lo, hi = np.percentile(gt[valid], [2, 98]) if valid.any() else (0.1, 10.0)
        error = np.where(valid & (pred > 0), np.abs(pred - gt) / np.where(valid, gt, 1), 0.0)
        error_rgb = colorize_depth(np.clip(error, 0, ERROR_RANGE), 0.0, ERROR_RANGE, "magma")
        panels = [resize_image(rgb, *shape), colorize_depth(pred, lo, max(hi, lo + 1e-3)),
                  colorize_depth(np.where(valid, gt, np.nan), lo, max(hi, lo + 1e-3)), error_rgb]
        panels[2][~valid] = 0
        panels[3][~valid] = 0
        rows.append(np.concatenate(panels, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return save_png(path, np.concatenate(rows, axis=0))


def bar_chart(labels: list[str], values: list[float], title: str, x_label: str, y_label: str, path: Path,
              size: tuple[int, int] = (640, 360)) -> Path:
    """A bar per value with its label under it; the y axis starts at 0."""
    width, height = size
    canvas = np.full((height, width, 3), 255, np.uint8)  # RGB, white
    left, right, top, bottom = 60, 20, 30, 60
    _text(canvas, title, left, 8)
    cv2.polylines(canvas, [np.array([(left, top), (left, height - bottom), (width - right, height - bottom)])],
                  False, BLACK)
    finite = [v for v in values if np.isfinite(v)]
    peak = max(finite) if finite and max(finite) > 0 else 1.0
    for tick in range(5):
        value = peak * tick / 4
        y = int(round(height - bottom - (height - top - bottom) * tick / 4))
        cv2.line(canvas, (left - 4, y), (left, y), BLACK)
        _text(canvas, f"{value:.3g}", 4, y - 6)
    slot = (width - left - right) / max(1, len(values))
    for i, (label, value) in enumerate(zip(labels, values)):
        x0 = left + i * slot + slot * 0.15
        x1 = left + (i + 1) * slot - slot * 0.15
        if np.isfinite(value):
            y = height - bottom - (height - top - bottom) * value / peak
            cv2.rectangle(canvas, (int(round(x0)), int(round(y))), (int(round(x1)), height - bottom), BAR, -1)
        if len(labels) <= 12 or i % max(1, len(labels) // 12) == 0:
            _text(canvas, label, x0, height - bottom + 6)
    _text(canvas, x_label, left + (width - left - right) / 2 - 40, height - 22)
    _text(canvas, y_label, 4, top - 20)
    return save_png(path, canvas)


def error_by_distance(pairs: list[tuple[np.ndarray, np.ndarray]], bin_m: float = 0.5,
                      max_m: float = 10.0) -> tuple[list[str], list[float]]:
    """Mean absolute relative error per ground-truth distance bin over (pred, gt) depth pairs."""
    edges = np.arange(0.0, max_m + bin_m, bin_m)
    sums, counts = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for pred, gt in pairs:
        pred = resize_depth(pred, gt.shape)
        valid = (gt > 0) & (pred > 0)
        index = np.clip(np.digitize(gt[valid], edges) - 1, 0, len(sums) - 1)
        np.add.at(sums, index, np.abs(pred[valid] - gt[valid]) / gt[valid])
        np.add.at(counts, index, 1)
    used = np.flatnonzero(counts)
    if used.size == 0:
        return [], []
    span = range(used.min(), used.max() + 1)
    return [f"{edges[i]:.1f}" for i in span], [float(sums[i] / counts[i]) if counts[i] else float("nan") for i in span]
