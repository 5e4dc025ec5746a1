"""bench/loss_gap.py: its depth-contrast slope and contrast scaling on hand-made maps, and the script end to end on
tiny generated rooms with a 1-step checkpoint."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from bench_scripts import REPO, load_bench

from training.config import load_training_config
from training.synthetic.generate import render_sequence, write_folder
from training.trainer import Trainer

gap = load_bench("loss_gap")


def test_the_slope_is_the_power_between_predicted_and_true_depth():
    true = np.array([[1.0, 2.0], [4.0, 8.0]])
    valid = np.ones_like(true, dtype=bool)
    assert gap.log_depth_slope(3.0 * np.sqrt(true), true, valid) == pytest.approx(0.5)  # ratios square-rooted
    assert gap.log_depth_slope(5.0 * true, true, valid) == pytest.approx(1.0)  # a global scale does not count
    assert gap.log_depth_slope(np.full_like(true, 2.0), true, valid) == pytest.approx(0.0)
    wild = np.array([[1.0, 2.0], [4.0, 1e6]])
    first_three = np.array([[True, True], [True, False]])
    assert gap.log_depth_slope(wild, true, first_three) == pytest.approx(1.0)  # the invalid pixel is not read
    assert math.isnan(gap.log_depth_slope(true, np.full_like(true, 3.0), valid))


def test_contrast_scaling_keeps_the_median_and_the_invalid_pixels():
    depth = torch.tensor([[[[1.0, 4.0], [16.0, 0.0]]]])
    valid = depth > 0
    # logs 0, ln 4, ln 16 around the median ln 4: halved to ln 2, ln 4, ln 8
    assert gap.contrast_scaled(depth, valid, 0.5).flatten().tolist() == pytest.approx([2.0, 4.0, 8.0, 0.0])
    assert gap.contrast_scaled(depth, valid, 1.0).flatten().tolist() == pytest.approx([1.0, 4.0, 16.0, 0.0])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("loss_gap")
    rooms = folder / "rooms"
    for index in range(2):  # 24 frames at stride 10: enough parallax at 64x96 for the depth to matter to the loss
        sequence = render_sequence(57, index, 24, 64, 96, "handheld", style="rich", waypoint_margin=0.8)
        write_folder(sequence, rooms / f"seq_{index:04d}")
    config = load_training_config(REPO / "config" / "train_tiny.yaml", [
        f"train.output_dir={folder / 'run'}", "validation=null", "train.max_steps=1", "train.progress_bar=false",
        "train.cpu_threads=1", "train.checkpoint_every_epochs=0",
    ])
    checkpoint = Trainer(config).fit().checkpoint
    output = folder / "gap.json"
    assert gap.main(["--config", str(REPO / "config" / "train_rich192.yaml"), "--override", "model.height=64",
                     "--override", "model.width=96", "--override", "data.options.stride=10",
                     "--override", "data.options.min_baseline=0", "--checkpoint", str(checkpoint),
                     "--set", f"rooms={rooms}", "--samples", "3", "--threads", "1", "--output", str(output)]) == 0
    return json.loads(output.read_text())


def test_the_report_places_the_model_and_the_flattened_truths_against_the_truth(report):
    rooms = report["sets"]["rooms"]
    assert rooms["samples"] == 3 and report["contrast"] == [0.5, 0.75, 1.25, 1.5]
    loss = {name: terms["photometric"] for name, terms in rooms["loss"].items()}
    # The truth is the loss's minimum along the contrast line, rising on both sides (measured at 64x96: 0.0449 at the
    # truth; 0.0514 / 0.0475 at 0.5 / 0.75; 0.0474 / 0.0533 at 1.25 / 1.5)
    assert loss["truth"] < 0.96 * min(loss["truth_contrast_0.75"], loss["truth_contrast_1.25"])
    assert loss["truth_contrast_0.5"] > 1.04 * loss["truth_contrast_0.75"]
    assert loss["truth_contrast_1.5"] > 1.04 * loss["truth_contrast_1.25"]
    assert rooms["model_over_truth_photometric"] == pytest.approx(loss["model"] / loss["truth"])
    # One training step leaves a network near its constant start: no depth contrast, a loss far above the truth's
    # (measured: contrast 0.01, 0.1191 against 0.0449, 2.65x)
    assert abs(rooms["depth_contrast"]["median"]) < 0.1 and rooms["depth_contrast"]["frames"] == 3
    assert rooms["model_over_truth_photometric"] > 2.0
    bands = rooms["abs_rel_by_true_depth"]
    assert list(bands) == ["0-1.5m", "1.5-3m", "3-5m", "5-10m"]
    assert all(0 <= band["images"] <= 3 for band in bands.values()) and any(band["images"] for band in bands.values())
    assert 0.0 < rooms["model"]["abs_rel"] < 1.0 and rooms["model"]["object_abs_rel"] is not None
