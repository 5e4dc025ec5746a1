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


# --- obstacle metrics ------------------------------------------------------------------------

def test_object_mask_excludes_structure_and_void():
    from gam_depth_ros.evaluation.metrics import object_mask, structural_ids

    wall, floor, ceiling = structural_ids()
    assert (wall, floor, ceiling) == (0, 1, 21)
    labels = np.array([[0, 1, 21], [4, 6, 255]])
    np.testing.assert_array_equal(object_mask(labels), [[False, False, False], [True, True, False]])
    # A configurable structural list: doors count as structure too.
    np.testing.assert_array_equal(object_mask(np.array([7, 4]), structural_ids(("wall", "door"))), [False, True])
    with pytest.raises(ValueError, match="unknown structural classes \\['walls'\\]"):
        structural_ids(("walls",))


def test_object_scores_use_the_whole_image_scale():
    from gam_depth_ros.evaluation.metrics import obstacle_metrics

    # 4 pixels: wall 2 m, floor 2 m (predicted right), chair 1 m predicted 2 m, table 4 m predicted 4.4 m.
    gt = np.array([[2.0, 2.0], [1.0, 4.0]])
    pred = np.array([[2.0, 2.0], [2.0, 4.4]])
    labels = np.array([[0, 1], [4, 6]])
    m = obstacle_metrics(pred, gt, labels, median_scaling=True)
    # median(gt) = 2, median(pred) = 2: scale 1 (not refitted to the object pixels).
    assert m["objects_scored"] and m["object_pixels"] == 2
    assert m["object_abs_rel"] == pytest.approx((1.0 / 1.0 + 0.4 / 4.0) / 2)
    assert m["object_rmse"] == pytest.approx(math.sqrt((1.0 + 0.16) / 2))
    assert m["object_delta1"] == pytest.approx(0.5)  # chair ratio 2 fails, table 1.1 passes
    assert m["obstacle_hits"] == 1


def test_without_labels_object_scores_are_not_computed():
    from gam_depth_ros.evaluation.metrics import ObstacleAccumulator, obstacle_metrics

    gt = np.full((6, 6), 2.0)
    accumulator = ObstacleAccumulator()
    accumulator.add(obstacle_metrics(gt, gt, None, median_scaling=True))
    result = accumulator.result()
    assert result["objects_scored"] is False and "object_abs_rel" not in result
    assert result["note"] == "object scores not computed: no ground-truth labels"


def test_obstacle_recall_is_pooled_over_pixels():
    from gam_depth_ros.evaluation.metrics import ObstacleAccumulator, obstacle_metrics

    accumulator = ObstacleAccumulator()
    # Image 1: one object pixel, wrong (ratio 2). Image 2: three object pixels, all right.
    gt1, pred1 = np.array([[2.0, 2.0, 1.0]]), np.array([[2.0, 2.0, 2.0]])
    accumulator.add(obstacle_metrics(pred1, gt1, np.array([[0, 1, 4]]), median_scaling=False))
    gt2 = np.array([[3.0, 3.0, 3.0, 2.0]])
    accumulator.add(obstacle_metrics(gt2, gt2, np.array([[4, 4, 4, 0]]), median_scaling=False))
    result = accumulator.result()
    assert result["obstacle_recall"] == pytest.approx(3 / 4)  # pooled: 3 of 4 object pixels
    assert result["object_delta1"] == pytest.approx((0.0 + 1.0) / 2)  # per-image mean
    assert result["object_images"] == 2


def test_depth_edges_and_boundary_scores_on_a_step():
    from gam_depth_ros.evaluation.metrics import boundary_scores, depth_edges

    gt = np.full((8, 10), 4.0)
    gt[:, 5:] = 2.0  # a vertical occluding edge between columns 4 and 5
    edges = depth_edges(gt)
    # Central differences 1 px either side: columns 4 and 5 see the jump.
    np.testing.assert_array_equal(np.flatnonzero(edges.any(0)), [4, 5])
    assert edges[:, 4].all() and edges[:, 5].all() and edges.sum() == 16
    # A smooth ramp (the floor) has no discontinuity at 15 %.
    ramp = np.tile(np.linspace(1.0, 1.5, 10), (8, 1))
    assert not depth_edges(ramp).any()
    valid = np.ones_like(gt, bool)
    perfect = boundary_scores(gt, gt, valid)
    assert perfect == {"boundary_precision": 1.0, "boundary_recall": 1.0, "boundary_f1": 1.0}
    # Prediction's edge 2 px to the right: inside the 2 px tolerance; 4 px away: missed.
    shifted = np.full_like(gt, 4.0)
    shifted[:, 7:] = 2.0
    assert boundary_scores(shifted, gt, valid)["boundary_f1"] == 1.0
    far = np.full_like(gt, 4.0)
    far[:, 9:] = 2.0  # edge pixels at columns 8 (and 9 has no right neighbour)
    far_scores = boundary_scores(far, gt, valid)
    assert far_scores["boundary_recall"] == 0.0 and far_scores["boundary_precision"] == 0.0
    # A flat prediction finds no edge: recall 0, precision 0 (nothing predicted).
    flat = boundary_scores(np.full_like(gt, 3.0), gt, valid)
    assert flat == {"boundary_precision": 0.0, "boundary_recall": 0.0, "boundary_f1": 0.0}
    # Only the top half in front (rows 0-3): predicted edges are the vertical one on rows 0-3
    # (columns 4, 5: 8 px) and the new horizontal one on rows 3-4 (columns 5-9: 10 px, one shared):
    # 17 edges, of which 9 lie on the true edge (the 8, plus (4, 5)); 9 of the 16 true ones found.
    half = np.full_like(gt, 4.0)
    half[:4, 5:] = 2.0
    half_scores = boundary_scores(half, gt, valid, tolerance_px=0)
    assert half_scores["boundary_precision"] == pytest.approx(9 / 17)
    assert half_scores["boundary_recall"] == pytest.approx(9 / 16)
    assert boundary_scores(np.full_like(gt, 3.0), np.full_like(gt, 3.0), valid) is None
