"""bench/fitted_depth_quality.py: scores fitted maps against the ground truth, beside a constant depth."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from bench_scripts import REPO, load_bench
from room_fixtures import write_tiny_rich_rooms

quality = load_bench("fitted_depth_quality")
TINY = ["--set", "model.height=64", "--set", "model.width=96", "--set", "data.options.stride=2",
        "--set", "data.options.min_baseline=0"]


def test_maps_equal_to_the_truth_score_zero_and_a_scaled_truth_only_without_median_scaling(tmp_path):
    for index, sequence in enumerate(sorted(write_tiny_rich_rooms(tmp_path / "rooms").iterdir())):
        (sequence / "fitted_depth").mkdir()
        for stem in sorted(p.stem for p in (sequence / "depth").glob("*.npy"))[2:4]:  # targets 2, 3 (of 2..5)
            truth = np.load(sequence / "depth" / f"{stem}.npy")
            np.save(sequence / "fitted_depth" / f"{stem}.npy", (truth * (1.2 if index else 1.0)).astype(np.float32))
    output = tmp_path / "quality.json"
    assert quality.main(["--config", str(REPO / "config" / "train_rich192.yaml"), *TINY,
                         "--data", str(tmp_path / "rooms"), "--output", str(output),
                         "--montage", str(tmp_path / "maps.png"), "--rows", "3"]) == 0
    picture = cv2.imread(str(tmp_path / "maps.png"))
    assert picture.shape == (3 * 64, 4 * 96, 3)  # rows of image | map | truth | error
    scores = json.loads(output.read_text())["folders"][str(tmp_path / "rooms")]
    assert scores["maps"] == 4 and scores["pinned_fraction"] == 1.0  # the truth: every pixel
    assert scores["fitted"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)  # 1.2x the truth: median scaling undoes it
    assert scores["fitted_metric"]["abs_rel"] == pytest.approx(0.1, abs=1e-4)  # half the maps 20 % too far
    assert scores["constant"]["abs_rel"] > 0.1
