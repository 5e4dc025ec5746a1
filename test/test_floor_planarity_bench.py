"""bench/floor_planarity.py: the floor fit of floor mode on hand-made frames, and end to end on generated rooms."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bench_scripts import load_bench
from room_fixtures import write_tiny_rich_rooms

FLOOR = 1  # NYU-40 0-based "floor"
H, W = 96, 128
K = np.array([[100.0, 0.0, 63.5], [0.0, 100.0, 47.5], [0.0, 0.0, 1.0]])


def _floor_frame(camera_height: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth of a level floor ``camera_height`` below a camera looking straight ahead, 3 m wall above it."""
    rows = np.arange(H, dtype=np.float64)[:, None] - K[1, 2]
    floor = rows > 10  # rows below the horizon, up to where the floor meets the wall
    depth = np.where(floor, camera_height * K[1, 1] / np.maximum(rows, 1e-9), 3.0) * np.ones((1, W))
    labels = np.where(floor, FLOOR, 0) * np.ones((1, W), dtype=np.uint8)
    return depth, labels.astype(np.uint8)


def test_a_flat_floor_is_accepted_at_its_scale_and_a_wavy_one_is_not():
    bench = load_bench("floor_planarity")
    truth, labels = _floor_frame(0.8)
    relative = truth / 2.0  # a relative prediction: the right shape at half the scale
    row = bench.frame_fits(relative, labels, truth, labels, K, seed=0)
    for name in ("true_labels", "own_labels"):
        assert row[name]["accepted"] and row[name]["log_scale_error"] < 1e-6 and row[name]["inliers"] == 1.0
    wavy = relative * (1 + 0.1 * np.sin(np.arange(W) / 2.0))[None, :]  # +-10 % across the image
    row = bench.frame_fits(wavy, None, truth, labels, K, seed=0)
    assert not row["true_labels"]["accepted"] and row["true_labels"]["reason"].startswith("poor floor fit: N %")
    assert row["own_labels"] == {"accepted": False, "reason": "no labels"}
    no_floor = np.zeros_like(labels)
    assert bench.frame_fits(relative, labels, truth, no_floor, K, seed=0) is None  # the truth has no floor
    summary = bench.summarise([bench.frame_fits(relative, labels, truth, labels, K, 0), row], "true_labels")
    assert summary == {"frames": 2, "accepted": 1, "median_log_scale_error": pytest.approx(0.0, abs=1e-6),
                       "within_10_percent": 1, "rejections": {row["true_labels"]["reason"]: 1}}


def test_the_demo_model_on_generated_rooms(tmp_path):
    rooms = write_tiny_rich_rooms(tmp_path / "rooms", sequences=2, frames=8)
    output = tmp_path / "planarity.json"
    assert load_bench("floor_planarity").main([
        "--checkpoint", "models/demo/gam_depth_demo.onnx", "--set", f"tiny={rooms}", "--per-sequence", "4",
        "--threads", "1", "--output", str(output)]) == 0
    report = json.loads(output.read_text())["sets"]["tiny"]
    # Measured (2026-12-07, the model shipped at 10:00 UTC, on 64x96 hand-held frames): half the frames show enough
    # floor for the true depth's own fit; the model's depth is not flat enough there for any fit, on the true floor
    # pixels or on its own floor labels. The model before it passed one fit on its own labels (|ln| 0.305 off median
    # scaling's scale); the 160-room model none.
    assert report["frames"] == 8 and report["frames_with_floor"] == 4
    no_fit = {"frames": 4, "accepted": 0, "median_log_scale_error": None, "within_10_percent": 0,
              "rejections": {"poor floor fit: N % inliers (< N %)": 4}}
    assert report["true_labels"] == no_fit
    assert report["own_labels"] == no_fit, report["own_labels"]
