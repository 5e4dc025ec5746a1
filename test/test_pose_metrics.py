"""Pose-error maths on hand-made poses (known rotations and translations, numbers computed by hand)."""

from __future__ import annotations

import math

import pytest
import torch

from training.pose_metrics import interpolate_pose, pose_errors, prediction_spread, rotation_angle, summarise


def rot(axis: str, degrees: float) -> torch.Tensor:
    """``[3,3]`` rotation about a coordinate axis."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    rows = {"x": [[1.0, 0, 0], [0, c, -s], [0, s, c]], "y": [[c, 0, s], [0, 1.0, 0], [-s, 0, c]],
            "z": [[c, -s, 0], [s, c, 0], [0, 0, 1.0]]}[axis]
    return torch.tensor(rows, dtype=torch.float64)


def pose(R: torch.Tensor, t: tuple[float, float, float]) -> torch.Tensor:
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3], T[:3, 3] = R, torch.tensor(t, dtype=torch.float64)
    return T


def stack(*poses: torch.Tensor) -> torch.Tensor:
    return torch.stack(poses)


def test_rotation_angle_of_known_rotations():
    angles = rotation_angle(stack(rot("z", 30), rot("x", 0), rot("y", 179.5), rot("x", 90) @ rot("y", 90)))
    expected = [30.0, 0.0, 179.5, 120.0]  # two quarter turns about orthogonal axes make a third of a turn
    assert torch.rad2deg(angles).tolist() == pytest.approx(expected, abs=1e-9)


def test_errors_of_a_partly_right_prediction():
    true = pose(rot("z", 20), (0.1, 0.0, 0.0))
    pred = pose(rot("z", 15), (0.2, 0.2, 0.0))
    e = {k: float(v) for k, v in pose_errors(stack(pred), stack(true)).items()}
    assert e["translation_cosine"] == pytest.approx(1 / math.sqrt(2))  # (0.2,0.2,0)·(0.1,0,0) / (0.2√2 · 0.1)
    assert e["translation_ratio"] == pytest.approx(2 * math.sqrt(2))  # 0.2√2 / 0.1
    assert e["rotation_error_deg"] == pytest.approx(5.0)  # R_pred^T R_true = Rz(5°)
    assert e["rotation_error_fraction"] == pytest.approx(0.25)  # 5° of 20°
    assert e["true_rotation_deg"] == pytest.approx(20.0) and e["true_translation_m"] == pytest.approx(0.1)


def test_identity_baseline_and_exact_prediction_and_other_axes():
    true = stack(pose(rot("z", 20), (0.1, 0.0, 0.0)), pose(rot("x", 90), (0.0, 0.0, -0.3)))
    identity = torch.eye(4, dtype=torch.float64).expand(2, 4, 4)
    e = pose_errors(identity, true)
    assert e["translation_cosine"].tolist() == [0.0, 0.0]  # no motion predicted: no direction
    assert e["translation_ratio"].tolist() == [0.0, 0.0]
    assert e["rotation_error_deg"].tolist() == pytest.approx([20.0, 90.0])
    assert e["rotation_error_fraction"].tolist() == pytest.approx([1.0, 1.0])
    exact = pose_errors(true, true)
    assert exact["translation_cosine"].tolist() == pytest.approx([1.0, 1.0])
    assert exact["translation_ratio"].tolist() == pytest.approx([1.0, 1.0])
    assert exact["rotation_error_deg"].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    # Right angle about the wrong axis: Ry(90)^T Rx(90) turns by 120°; opposite translation: cosine -1.
    wrong = pose_errors(stack(pose(rot("y", 90), (0.0, 0.0, 0.6))), true[1:])
    assert float(wrong["rotation_error_deg"]) == pytest.approx(120.0)
    assert float(wrong["rotation_error_fraction"]) == pytest.approx(120.0 / 90.0)
    assert float(wrong["translation_cosine"]) == pytest.approx(-1.0)
    assert float(wrong["translation_ratio"]) == pytest.approx(2.0)


def test_no_true_rotation_gives_no_fraction_and_summaries_skip_it():
    true = stack(pose(rot("z", 0), (0.0, 0.1, 0.0)), pose(rot("z", 10), (0.0, 0.1, 0.0)))
    pred = stack(pose(rot("z", 2), (0.0, 0.1, 0.0)), pose(rot("z", 12), (0.0, 0.3, 0.0)))
    e = pose_errors(pred, true)
    assert math.isnan(float(e["rotation_error_fraction"][0]))
    assert float(e["rotation_error_fraction"][1]) == pytest.approx(0.2)
    s = summarise(e)
    assert s["pairs"] == 2 and s["rotation_error_fraction_mean"] == pytest.approx(0.2)
    assert s["rotation_error_deg_mean"] == pytest.approx(2.0) and s["translation_ratio_mean"] == pytest.approx(2.0)
    assert s["translation_ratio_median"] == pytest.approx(2.0)  # the median of 1 and 3 (their mean, not the lower)


def test_spread_of_constant_and_of_half_as_varied_predictions():
    true = stack(*(pose(rot("z", a), (0.1 * k, 0.0, 0.0)) for k, a in ((1, 10), (2, 20), (3, 30))))
    constant = stack(*[pose(rot("z", 20), (0.2, 0.0, 0.0))] * 3)
    s = prediction_spread(constant, true)
    assert s["rotation_spread_ratio"] == pytest.approx(0.0, abs=1e-7)
    assert s["translation_spread_ratio"] == pytest.approx(0.0, abs=1e-7)
    # True rotations 10/20/30° about z: RMS distance from the 20° mean = sqrt(200/3)° = 8.165°.
    assert s["rotation_spread_true"] == pytest.approx(math.radians(math.sqrt(200 / 3)))
    # Predictions 15/20/25° (half the spread) with translations twice the truth's (same relative spread).
    half = stack(*(pose(rot("z", a), (0.2 * k, 0.0, 0.0)) for k, a in ((1, 15), (2, 20), (3, 25))))
    s = prediction_spread(half, true)
    assert s["rotation_spread_ratio"] == pytest.approx(0.5)
    assert s["translation_spread_ratio"] == pytest.approx(1.0)  # scaled to each set's mean length first
    assert s["translation_spread_pred"] == pytest.approx(2 * s["translation_spread_true"])
    with pytest.raises(ValueError):
        prediction_spread(half[:1], true[:1])


def test_interpolation_from_identity_to_the_pose():
    T = stack(pose(rot("z", 20), (0.1, -0.2, 0.4)))
    assert torch.allclose(interpolate_pose(T, 0.0), torch.eye(4, dtype=torch.float64)[None])
    assert torch.allclose(interpolate_pose(T, 1.0), T)
    half = interpolate_pose(T, 0.5)
    assert torch.allclose(half, stack(pose(rot("z", 10), (0.05, -0.1, 0.2))))
    assert float(torch.rad2deg(rotation_angle(interpolate_pose(T, 1.5)[:, :3, :3]))) == pytest.approx(30.0)
