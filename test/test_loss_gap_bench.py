"""bench/loss_gap.py: its depth-contrast slope and contrast scaling on hand-made maps, and the script end to end on
tiny generated rooms with a 1-step checkpoint."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from bench_scripts import REPO, load_bench
from model_fixtures import one_step_checkpoint

from training.synthetic.generate import render_sequence, write_folder

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


def test_the_warp_displacement_of_a_depth_error_is_the_parallax_difference():
    # A wall 2 m in front; sources 0.1 m to one side and 0.2 m to the other; focal 100 px, image 96 wide. Parallax
    # f*b/d: 5 px and 10 px at 2 m, 4 px and 8 px at 2.5 m. Row 0 is a wall 0.15 m away instead: 66.7 px through
    # the near source (53.3 px at 1.25x), beyond the image through the far one.
    K = torch.tensor([[100.0, 0, 48, 0], [0, 100.0, 32, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    poses = torch.eye(4).repeat(3, 1, 1)
    poses[1, 0, 3], poses[2, 0, 3] = -0.1, 0.2  # the points move 5 px left in source 1, 10 px right in source 2
    depth = torch.full((1, 1, 64, 96), 2.0)
    depth[..., 0, :] = 0.15
    batch = {"depth_gt": depth, "K": K.expand(1, 3, 4, 4), "inv_K": torch.linalg.inv(K).expand(1, 3, 4, 4),
             "poses": poses[None]}
    moved = gap.warp_displacement(batch, 1.25)
    assert moved.shape == (64, 96)
    # source 2 (2 px) where both its warps stay inside (column + 10 <= 95), else source 1 (1 px)
    assert torch.allclose(moved[1:, :86], torch.full((63, 86), 2.0), atol=1e-4)
    assert torch.allclose(moved[1:, 86:], torch.full((63, 10), 1.0), atol=1e-4)
    # row 0: only source 1, only where column - 66.7 >= 0; nothing seen elsewhere
    assert torch.isnan(moved[0, :67]).all()
    assert torch.allclose(moved[0, 67:], torch.full((29,), 100 * 0.1 / 0.15 - 100 * 0.1 / 0.1875), atol=1e-3)
    masks = gap.band_masks(np.array([[0.05, 1.0], [2.0, 12.0]]), 0.1, 10.0)
    assert [m.tolist() for m in masks.values()] == [[[False, True], [False, False]], [[False, False], [True, False]],
                                                     [[False, False], [False, False]], [[False, False], [False, False]]]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("loss_gap")
    rooms = folder / "rooms"
    for index in range(2):  # 24 frames at stride 10: enough parallax at 64x96 for the depth to matter to the loss
        sequence = render_sequence(57, index, 24, 64, 96, "handheld", style="rich", waypoint_margin=0.8)
        write_folder(sequence, rooms / f"seq_{index:04d}")
    checkpoint = one_step_checkpoint(folder)
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
    moved = rooms["warp_px_of_error_by_true_depth"]
    assert report["error_factor"] == 1.25 and set(moved) <= set(bands) and moved
    assert all(band["median"] > 0 and 1 <= band["frames"] <= 3 for band in moved.values())
