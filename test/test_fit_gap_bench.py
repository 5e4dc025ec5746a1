"""bench/fit_gap.py, bench/heldout_montage.py and bench/speed_accuracy.py end to end on tiny generated sequences
and a 1-step checkpoint."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from bench_scripts import load_bench
from model_fixtures import one_step_checkpoint

from gam_depth_ros.evaluation.metrics import single_image_depth_metrics
from training.synthetic.generate import render_sequence, write_folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    return one_step_checkpoint(tmp_path_factory.mktemp("fit_gap"))


def test_fit_gap_scores_each_set_and_sequence(tmp_path, checkpoint):
    turning = render_sequence(56, 0, 12, 48, 64, "robot", 0.8)  # seed 56, sequence 0: the robot only turns
    walking = render_sequence(56, 1, 12, 48, 64, "handheld")
    write_folder(turning, tmp_path / "train" / "seq_0000")
    write_folder(walking, tmp_path / "train" / "seq_0001")
    write_folder(render_sequence(57, 0, 12, 48, 64, "handheld"), tmp_path / "val" / "seq_0000")
    output = tmp_path / "gap.json"
    assert load_bench("fit_gap").main(["--checkpoint", str(checkpoint), "--set", f"training={tmp_path / 'train'}",
                                       "--set", f"validation={tmp_path / 'val'}", "--per-sequence", "3",
                                       "--threads", "1", "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    training, validation = report["sets"]["training"], report["sets"]["validation"]
    assert training["images"] == 6 and validation["images"] == 3  # frames 0, 4, 8 of each sequence
    rows = training["sequences"]
    assert [r["sequence"] for r in rows] == ["seq_0000", "seq_0001"]
    assert rows[0]["camera_path_m"] == pytest.approx(0.0, abs=1e-4)
    path = float(np.linalg.norm(np.diff([t for _, t in walking.poses], axis=0), axis=1).sum())
    assert rows[1]["camera_path_m"] == pytest.approx(path, rel=1e-3) and path > 0.1
    # The constant depth's AbsRel, recomputed here on the same frames of the first sequence.
    constant = np.mean([single_image_depth_metrics(np.ones((48, 64)), turning.depth[i].astype(np.float64),
                                                   True, 0.1, 10.0)["abs_rel"] for i in (0, 4, 8)])
    assert rows[0]["constant_abs_rel"] == pytest.approx(constant, rel=1e-6)
    assert 0.0 < training["model"]["abs_rel"] < 2.0 and training["model"]["object_abs_rel"] is not None
    with pytest.raises(SystemExit):
        load_bench("fit_gap").main(["--checkpoint", str(checkpoint), "--set", "no-equals-sign"])


def test_heldout_montage_draws_one_row_per_sequence(tmp_path, checkpoint):
    for index in range(3):
        write_folder(render_sequence(57, index, 2, 48, 64, "handheld"), tmp_path / "heldout" / f"seq_{index:04d}")
    picture = tmp_path / "montage.png"
    assert load_bench("heldout_montage").main(["--checkpoint", str(checkpoint), "--heldout", str(tmp_path / "heldout"),
                                               "--sequences", "2", "--output", str(picture)]) == 0
    assert cv2.imread(str(picture)).shape == (2 * 48, 4 * 64, 3)  # image | prediction | truth | error
    assert load_bench("heldout_montage").main(["--checkpoint", str(checkpoint), "--heldout", str(tmp_path / "heldout"),
                                               "--sequences", "3", "--width", "128", "--output", str(picture)]) == 0
    assert cv2.imread(str(picture)).shape == (3 * 48 // 2, 128, 3)


def test_speed_accuracy_scores_the_heldout_frames_and_times_both_thread_counts(tmp_path, checkpoint):
    for index in range(2):
        write_folder(render_sequence(57, index, 6, 48, 64, "handheld"), tmp_path / "heldout" / f"seq_{index:04d}")
    output = tmp_path / "speed.json"
    assert load_bench("speed_accuracy").main(["--model", f"tiny={checkpoint}@64x96", "--heldout",
                                              str(tmp_path / "heldout"), "--per-sequence", "2", "--runs", "2",
                                              "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert "--model tiny=" in report["command"] and report["machine"]["cpus"] >= 1
    assert report["heldout"]["frames"] == 4  # frames 0 and 3 of each sequence
    row = report["models"]["tiny"]
    assert row["input"] == "64x96" and 0.0 < row["abs_rel"] < 2.0 and row["object_abs_rel"] is not None
    assert row["ort_ms_1_threads"] > 0 and row["ort_ms_2_threads"] > 0
    assert row["fps_2_threads"] == pytest.approx(1e3 / row["ort_ms_2_threads"])
    assert row["onnx_mb"] > 1 and row["gflop"] > 0
    constant = np.mean([single_image_depth_metrics(np.ones((48, 64)), sequence.depth[i].astype(np.float64),
                                                   True, 0.1, 10.0)["abs_rel"]
                        for sequence in (render_sequence(57, k, 6, 48, 64, "handheld") for k in range(2))
                        for i in (0, 3)])
    assert report["constant_depth"]["abs_rel"] == pytest.approx(constant, rel=1e-6)
    with pytest.raises(SystemExit):
        load_bench("speed_accuracy").main(["--model", "no-size", "--heldout", str(tmp_path)])
