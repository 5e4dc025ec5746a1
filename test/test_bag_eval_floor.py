"""gam-depth-bag-eval --scale-mode floor: frames without a floor scale are counted, explained and not blamed on
the ground truth; the option needs a camera height. (Metric figures need a model that has learned depth: the
estimator itself is tested on exact and corrupted synthetic depth in test_floor_scale.py.)"""

from __future__ import annotations

import json

import pytest
from model_fixtures import SMALL_HEIGHT, SMALL_WIDTH

from gam_depth_ros.evaluation.bag_eval import main
from training.synthetic.generate import TOPICS, render_sequence, write_bag

FRAMES = 6


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    sequence = render_sequence(12, 0, FRAMES, SMALL_HEIGHT, SMALL_WIDTH, "robot", camera_height=0.8)
    return write_bag(sequence, tmp_path_factory.mktemp("bags") / "robot_bag")


def args(bag, model, out, *extra):
    return ["--bag", str(bag), "--image-topic", TOPICS["image"], "--camera-info-topic", TOPICS["camera_info"],
            "--depth-topic", TOPICS["depth"], "--model", str(model), "--output", str(out), *extra]


def test_frames_without_a_floor_scale_are_reported_with_reasons(tmp_path, bag, small_model, caplog):
    # The fixture network is random: its "floor" is no plane, so every frame is rejected.
    code = main(args(bag, small_model.onnx, tmp_path / "out", "--scale-mode", "floor", "--camera-height", "0.8"))
    assert code == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    summary = report["summary"]
    assert summary["frames"] == FRAMES and summary["frames_without_scale"] == FRAMES
    assert sum(report["floor_rejections"].values()) == FRAMES
    assert all("N" in reason for reason in report["floor_rejections"])  # numbers folded, so reasons group
    assert all(frame["scale"] != frame["scale"] for frame in report["per_frame"])  # NaN: nothing published
    assert "had no metric scale from the floor" in caplog.text and "most frequent reason" in caplog.text
    assert "no usable ground truth" not in caplog.text
    assert "Frames without a metric scale: 6" in (tmp_path / "out" / "report.md").read_text()


def test_fixed_mode_has_no_floor_section(tmp_path, bag, small_model):
    assert main(args(bag, small_model.onnx, tmp_path / "out")) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["floor_rejections"] == {} and report["summary"]["frames_without_scale"] == 0
    assert "(of the log:" in (tmp_path / "out" / "report.md").read_text()


def test_floor_mode_needs_a_camera_height(tmp_path, bag, small_model):
    with pytest.raises(SystemExit) as exit_info:
        main(args(bag, small_model.onnx, tmp_path / "out", "--scale-mode", "floor"))
    assert exit_info.value.code == 2
