"""gam_depth_ros.evaluation.metrics on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gam_depth_ros.evaluation.metrics import (
    DepthMetricsAccumulator,
    SemanticAccumulator,
    depth_metrics,
    semantic_metrics,
)

# Valid ground truth 1, 2, 3 (0 is invalid); predictions 2, 2, 2 -> ratios 2, 1, 1.5.
GT = np.array([[1.0, 2.0], [3.0, 0.0]])
PRED = np.array([[2.0, 2.0], [2.0, 5.0]])
EXPECTED = {
    "abs_rel": (1.0 + 0.0 + 1.0 / 3.0) / 3.0,
    "sq_rel": (1.0 + 0.0 + 1.0 / 3.0) / 3.0,
    "rmse": math.sqrt(2.0 / 3.0),
    "rmse_log": math.sqrt((math.log(2.0) ** 2 + math.log(1.5) ** 2) / 3.0),
    "log10": (math.log10(2.0) + math.log10(1.5)) / 3.0,
    "delta1": 1.0 / 3.0,
    "delta2": 2.0 / 3.0,  # 1.5 < 1.5625
    "delta3": 2.0 / 3.0,  # 2 > 1.953125
    "scale": 1.0,
}


def test_depth_metrics_hand_computed():
    metrics = depth_metrics(PRED, GT, median_scaling=False)
    for key, value in EXPECTED.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key
    assert metrics["images"] == 1


def test_torch_batch_is_mean_of_images():
    other_pred = GT * 1.1  # every ratio 1.1
    batch_pred = torch.tensor(np.stack([PRED, other_pred]))[:, None]
    batch_gt = torch.tensor(np.stack([GT, GT]))[:, None]
    metrics = depth_metrics(batch_pred, batch_gt, median_scaling=False)
    second = depth_metrics(other_pred, GT, median_scaling=False)
    assert second["abs_rel"] == pytest.approx(0.1)
    assert second["delta1"] == 1.0
    assert metrics["abs_rel"] == pytest.approx((EXPECTED["abs_rel"] + 0.1) / 2)
    assert metrics["delta1"] == pytest.approx((1.0 / 3.0 + 1.0) / 2)
    assert metrics["images"] == 2


def test_median_scaling_recovers_scale_and_reports_it():
    gt = np.array([[1.0, 2.0], [4.0, 8.0]])
    metrics = depth_metrics(gt / 2.5, gt, median_scaling=True)
    assert metrics["scale"] == pytest.approx(2.5)
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["delta1"] == 1.0


def test_clamp_and_valid_range():
    gt = np.array([[5.0, 12.0, 0.05]])  # only 5.0 is inside (0.1, 10)
    pred = np.array([[20.0, 1.0, 1.0]])  # 20 is clamped to 10
    metrics = depth_metrics(pred, gt, median_scaling=False, min_depth=0.1, max_depth=10.0)
    assert metrics["abs_rel"] == pytest.approx(1.0)
    assert metrics["rmse"] == pytest.approx(5.0)


def test_mask_restricts_pixels():
    mask = np.array([[True, False], [False, False]])  # only gt 1 vs pred 2
    metrics = depth_metrics(PRED, GT, median_scaling=False, mask=mask)
    assert metrics["abs_rel"] == pytest.approx(1.0)


def test_no_valid_pixel_raises_and_accumulator_skips():
    with pytest.raises(ValueError, match="no ground-truth pixel"):
        depth_metrics(np.ones((2, 2)), np.zeros((2, 2)))
    acc = DepthMetricsAccumulator()
    acc.add(None)
    acc.add({**EXPECTED})
    assert acc.count == 1 and acc.skipped == 1
    assert acc.mean()["abs_rel"] == pytest.approx(EXPECTED["abs_rel"])
    assert acc.scale_stats()["median"] == 1.0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="differ"):
        depth_metrics(np.ones((2, 2)), np.ones((2, 3)))


def test_semantic_metrics_ignore_void():
    gt = np.array([[0, 0], [1, 255]])
    pred = np.array([[0, 1], [1, 1]])  # the prediction at the void pixel does not count
    metrics = semantic_metrics(pred, gt, num_classes=40)
    assert metrics["pixel_acc"] == pytest.approx(2.0 / 3.0)
    # class 0: intersection 1, union 2 + 1 - 1 = 2; class 1: intersection 1, union 1 + 2 - 1 = 2
    assert metrics["miou"] == pytest.approx(0.5)
    assert metrics["classes"] == 2


def test_semantic_invalid_prediction_counts_as_wrong_and_accumulates():
    gt = np.array([3, 3, 3, 3])
    pred = np.array([3, 3, 255, 7])
    metrics = semantic_metrics(torch.tensor(pred), torch.tensor(gt), num_classes=40)
    assert metrics["pixel_acc"] == pytest.approx(0.5)
    # class 3: intersection 2, union 4; class 7: intersection 0, union 1
    assert metrics["miou"] == pytest.approx((0.5 + 0.0) / 2)
    acc = SemanticAccumulator(40)
    acc.add(pred, gt)
    acc.add(gt, gt)  # perfect second image: class 3 intersection 6, union 8
    result = acc.result()
    assert result["pixel_acc"] == pytest.approx(6.0 / 8.0)
    assert result["miou"] == pytest.approx((6.0 / 8.0 + 0.0) / 2)
    assert result["images"] == 2
