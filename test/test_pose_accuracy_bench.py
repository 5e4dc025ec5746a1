"""bench/pose_accuracy.py end to end on a tiny generated sequence: the identity baseline and a checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from bench_scripts import REPO, load_bench
from model_fixtures import one_step_checkpoint

from training.config import load_training_config
from training.synthetic.generate import render_sequence, write_folder
from training.trainer import Trainer


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def test_pose_accuracy_scores_identity_and_a_checkpoint(tmp_path):
    write_folder(render_sequence(41, 0, 12, 48, 64, "handheld"), tmp_path / "data" / "seq_0000")
    checkpoint = one_step_checkpoint(tmp_path)
    output = tmp_path / "pose.json"
    assert load_bench("pose_accuracy").main(
        ["--data", str(tmp_path / "data"), "--stride", "3", "--checkpoint", str(checkpoint),
         "--output", str(output), "--alphas", "0", "0.5", "1", "1.5"]) == 0
    report = json.loads(output.read_text())
    assert report["data"]["pairs"] == 2 * report["data"]["samples"] == 12  # frames 3..8 of 12 with stride 3
    identity = report["models"]["identity"]["final"]["all"]
    assert identity["translation_cosine_mean"] == 0.0 and identity["translation_ratio_mean"] == 0.0
    assert identity["rotation_error_fraction_median"] == pytest.approx(1.0)
    assert identity["rotation_spread_ratio"] == 0.0
    # With the true depth, the true pose explains the frames best along the identity -> truth path.
    losses = report["path_loss"]
    assert min(losses) == losses[2] and losses[0] > 1.5 * losses[2]
    # (equal up to the auto-mask's tie-breaking noise of std 1e-5)
    assert report["models"]["identity"]["photometric_at_prediction"] == pytest.approx(losses[0], rel=1e-3)
    trained = report["models"][str(checkpoint)]
    assert {"final", "initial", "photometric_at_prediction"} <= set(trained)
    assert -1.0 <= trained["final"]["all"]["translation_cosine_mean"] <= 1.0
    assert -1.0 <= report["identity_descent"]["pose6_cosine_mean"] <= 1.0


def test_two_view_rows_on_rich_frames(tmp_path):
    """``--two-view --size``: the classical estimate scored beside identity on a rich hand-held clip at
    192x256 (21 frames, stride 10: one sample, pairs 10 -> 0 and 10 -> 20; measured: both solved,
    direction cosine 0.979, rotation error 0.137 of the true rotation)."""
    write_folder(render_sequence(41, 0, 21, 192, 256, "handheld", style="rich"), tmp_path / "data" / "seq_0000")
    output = tmp_path / "pose.json"
    assert load_bench("pose_accuracy").main(
        ["--data", str(tmp_path / "data"), "--stride", "10", "--size", "192", "256", "--two-view",
         "--alphas", "0", "1", "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["data"]["size"] == [192, 256] and report["data"]["pairs"] == 2
    row = report["models"]["two_view (SIFT + essential matrix)"]
    assert row["found_fraction"] == 1.0
    solved = row["found_only"]
    assert solved["pairs"] == 2 and solved["translation_cosine_mean"] > 0.95
    assert solved["rotation_error_fraction_median"] < 0.2
    assert report["models"]["identity"]["final"]["all"]["translation_cosine_moving_mean"] == 0.0
    # A checkpoint trained with pose_source two_view_rotation is scored as it trains: its initial poses
    # carry the two-view rotation (estimated on the 192x256 frames before the resize to 64x96).
    config = load_training_config(REPO / "config" / "train_tiny.yaml", [
        "data.source=folder", f"data.path={tmp_path / 'data'}", "data.options={stride: 5, two_view_prior: true}",
        "networks.pose_source=two_view_rotation", f"train.output_dir={tmp_path / 'run'}", "validation=null",
        "train.max_steps=1", "train.progress_bar=false", "train.cpu_threads=1", "train.checkpoint_every_epochs=0",
    ])
    checkpoint = Trainer(config).fit().checkpoint
    assert load_bench("pose_accuracy").main(
        ["--data", str(tmp_path / "data"), "--stride", "10", "--size", "64", "96", "--checkpoint", str(checkpoint),
         "--alphas", "0", "1", "--output", str(output)]) == 0
    models = json.loads(output.read_text())["models"]
    initial = models[str(checkpoint)]["initial"]["all"]
    assert initial["rotation_error_fraction_median"] == pytest.approx(solved["rotation_error_fraction_median"],
                                                                      abs=1e-3)
    alone = models[f"{checkpoint} (network alone)"]["initial"]["all"]  # one step: about no rotation at all
    assert alone["rotation_error_fraction_median"] == pytest.approx(1.0, abs=0.05)
