"""Adapting to a robot's recordings: many bags, self-training labels, ``gam-depth-adapt`` end to end."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch.utils.data import ConcatDataset

from training import adapt
from training.config import DataConfig
from training.data.common import DataError, resize_nearest
from training.data.factory import make_dataset, sequences
from training.self_labels import SelfSegmenter, write_self_labels
from training.synthetic.generate import TOPICS, render_sequence, write_bag

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "demo" / "gam_depth_demo.safetensors"
FRAMES = 45
REALSENSE = {"image": "/camera/color/image_raw", "camera_info": "/camera/color/camera_info",
             "depth": "/camera/aligned_depth_to_color/image_raw"}
OPTIONS = {"topic": TOPICS["image"], "camera_info_topic": TOPICS["camera_info"], "odometry_topic": "/odom",
           "undistort": False}


@pytest.fixture(scope="module")
def robot_bags(tmp_path_factory) -> list[Path]:
    """Three 15 Hz robot bags (rooms 0, 1, 3 of seed 5, relit style, 96x128) with odometry and depth.

    Room 2 of seed 5 is bare (walls and floor only), so it cannot score objects.
    """
    folder = tmp_path_factory.mktemp("bags")
    bags = []
    for index, room in enumerate((0, 1, 3)):
        sequence = render_sequence(5, room, FRAMES, 96, 128, "robot", 0.45, style="relit", fps=15.0)
        bags.append(write_bag(sequence, folder / f"room_{index}"))
    return bags


def test_many_bags_one_sequence_each_with_a_log_line_per_bag(robot_bags, tmp_path, caplog):
    data = DataConfig(source="rosbag", path=tuple(str(b) for b in robot_bags[:2]),
                      options=OPTIONS | {"cache_dir": str(tmp_path / "cache")}, augment=None)
    with caplog.at_level(logging.INFO, logger="training.data"):
        dataset = make_dataset(data, (0, -1, 1), 96, 128)
    assert isinstance(dataset, ConcatDataset) and len(dataset.datasets) == 2
    for part, bag in zip(dataset.datasets, robot_bags[:2]):
        assert part.path == tmp_path / "cache" / bag.name  # extracted and cached per bag
        assert all(0 <= i < len(part.frames) for sample in part.samples for i in sample)  # never the other bag
        assert part.poses is not None and len(part.samples) > 0
        # motion spacing on the bag's own odometry: every source 5-15 cm or 3-10 degrees from its target
        for target, *sources in part.samples:
            for source in sources:
                relative = np.linalg.inv(part.poses[target]) @ part.poses[source]
                metres = float(np.linalg.norm(relative[:3, 3]))
                degrees = float(np.degrees(np.arccos(np.clip((np.trace(relative[:3, :3]) - 1) / 2, -1, 1))))
                assert metres <= 0.15 + 1e-6 and degrees <= 10.0 + 1e-6
                assert metres >= 0.05 - 1e-6 or degrees >= 3.0 - 1e-6, (target, source, metres, degrees)
    lines = [r.getMessage() for r in caplog.records if "samples (spacing motion)" in r.getMessage()]
    assert len(lines) == 2 and all(f"of {FRAMES} frames of {TOPICS['image']}" in line for line in lines)
    assert len(dataset) == sum(len(p) for p in dataset.datasets)
    first = dataset[len(dataset.datasets[0])]  # the first sample of the second bag: its own poses
    assert bool(first["has_poses"]) and first["images"].shape == (3, 3, 96, 128)
    # a glob finds the same bags (sorted; the caches beside them are not bags)
    globbed = DataConfig(source="rosbag", path=str(robot_bags[0].parent / "room_*"), options=OPTIONS, augment=None)
    assert [p.path.name for p in make_dataset(globbed, (0, 1), 96, 128).datasets] == [
        f"room_{i}_frames" for i in range(3)]
    with pytest.raises(DataError, match="matches no rosbag"):
        make_dataset(DataConfig(source="rosbag", path=str(tmp_path / "none_*"), options=OPTIONS), (0, 1), 96, 128)
    with pytest.raises(DataError, match="given twice"):
        make_dataset(DataConfig(source="rosbag", path=(str(robot_bags[0]),) * 2, options=OPTIONS), (0, 1), 96, 128)
    with pytest.raises(DataError, match="cannot be set for several bags"):
        make_dataset(DataConfig(source="rosbag", path=tuple(str(b) for b in robot_bags[:2]),
                                options=OPTIONS | {"labels_dir": str(tmp_path)}), (0, 1), 96, 128)


def test_self_training_labels_follow_the_models_confident_classes(robot_bags, tmp_path):
    data = DataConfig(source="rosbag", path=str(robot_bags[0]), options=OPTIONS | {"cache_dir": str(tmp_path / "c")},
                      augment=None)
    targets = make_dataset(data, (0,), 96, 128, train=False)
    segmenter = SelfSegmenter(SHIPPED, min_confidence=0.6)
    rgb, _ = targets.target_frame(3)
    probabilities = segmenter.probabilities(rgb)
    # at the network's size (the shipped model's 192x256), the labels at the frame's (96x128)
    assert probabilities.shape == (40, 192, 256) and np.allclose(probabilities.sum(0), 1.0, atol=1e-4)
    expected = resize_nearest(np.where(probabilities.max(0) >= 0.6, probabilities.argmax(0), 255), 96, 128)
    assert np.array_equal(segmenter.predict(rgb), expected)
    assert 0.0 < segmenter.void_share < 0.9  # some pixels are unsure, most are not
    assert write_self_labels([targets], SHIPPED, 0.6) == len(targets)
    written = np.asarray(Image.open(targets.labels_dir / f"{targets.sample_key(3)}.png"))
    assert np.array_equal(written, expected)
    assert (written == 1).mean() > 0.1  # the floor (id 1) is found in a robot's view
    sample = make_dataset(data, (0, -1, 1), 96, 128)[0]
    assert bool(sample["has_labels"]) and int((sample["labels"] != 255).sum()) > 0
    with pytest.raises(DataError, match="min_confidence"):
        SelfSegmenter(SHIPPED, min_confidence=1.0)
    two = DataConfig(source="rosbag", path=tuple(str(b) for b in robot_bags[:2]),
                     options=OPTIONS | {"cache_dir": str(tmp_path / "two")}, augment=None)
    with pytest.raises(DataError, match="--out-dir names one folder, but the data has several sequences"):
        write_self_labels(sequences(make_dataset(two, (0,), 96, 128, train=False)), SHIPPED, 0.6, tmp_path / "one")


def test_gam_depth_adapt_end_to_end(robot_bags, tmp_path, capsys):
    out = tmp_path / "adapted"
    # the evaluation bag was recorded with a RealSense driver's topic names: found by type there
    eval_bag = write_bag(render_sequence(5, 3, FRAMES, 96, 128, "robot", 0.45, style="relit", fps=15.0),
                         tmp_path / "realsense_eval", topics=REALSENSE)
    code = adapt.main(["--bags", str(robot_bags[0]), str(robot_bags[1]), "--eval-bag", str(eval_bag),
                       "--output", str(out), "--rectified", "--replay-rooms", "1", "--epochs", "1",
                       "--set", "train.max_steps=2", "--set", "train.num_workers=0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    for stage in ("[1/6] extracting", "[2/6] self-labels", "[3/6] fine-tuning", "[4/6] exporting",
                  "[5/6] evaluating", "[6/6] writing the report"):
        assert stage in printed
    assert f"odometry /odom; evaluation image {REALSENSE['image']}, depth {REALSENSE['depth']}" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == 2 and report["odometry"] == "/odom" and report["self_labels"] and report["blend"] == 1.0
    assert len(report["bags"]) == 2  # the replay room is trained on, not reported as the robot's
    for when in ("before", "after"):
        summary = report[when]
        assert summary["frames"] == FRAMES and 0.0 < summary["median"]["abs_rel"] < 1.0
        assert 0.0 < summary["obstacles"]["median"]["object_abs_rel"] < 2.0
        assert (out / f"eval_{when}" / "report.md").is_file()
    markdown = (out / "report.md").read_text()
    assert "| AbsRel (median) |" in markdown and "| object AbsRel (metric) |" in markdown
    assert (out / "replay" / "replay_00").is_dir()
    onnx = out / "model" / "gam_depth_adapted.onnx"
    # the exported weights (a start for the next fine-tuning) are the fine-tuned ones: --blend 1 by default
    from gam_depth_ros.checkpoint import load_checkpoint

    exported = load_checkpoint(onnx.with_suffix(".pt")).state_dict
    tuned = load_checkpoint(sorted((out / "train" / "checkpoints").glob("step_*.pt"))[-1]).state_dict
    assert all(torch.equal(exported[key], value) for key, value in tuned.items())
    from gam_depth_ros.inference import create_backend

    backend = create_backend("onnxruntime", onnx)
    assert backend.infer(np.zeros((96, 128, 3), np.uint8)).depth.shape == (96, 128)
    saved = yaml.safe_load(sorted((out / "train" / "checkpoints").glob("step_*.yaml"))[-1].read_text())
    assert saved["data"]["options"]["odometry_topic"] == "/odom"  # the config is saved beside the checkpoint
    # the evaluation bag must not be a training bag
    assert adapt.main(["--bags", str(robot_bags[0]), "--eval-bag", str(robot_bags[0]), "--output", str(out)]) == 2
    assert "not trained on" in capsys.readouterr().err


def test_blend_checkpoints_mixes_float_weights_and_keeps_the_rest(tmp_path):
    from gam_depth_ros.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from gam_depth_ros.model_config import ModelConfig
    from training.checkpointing import blend_checkpoints

    config = ModelConfig(height=96, width=128, base_channels=32)
    start = save_checkpoint(tmp_path / "start.safetensors", {"w": torch.tensor([0.0, 10.0]),
                                                             "count": torch.tensor([5])}, config)
    tuned = save_checkpoint(tmp_path / "tuned.pt", {"w": torch.tensor([1.0, 20.0]), "count": torch.tensor([7]),
                                                    "head": torch.tensor([3.0])}, config, {"train": {"epochs": 2}})
    out = load_checkpoint(blend_checkpoints(start, tuned, 0.7, tmp_path / "blend.pt"))
    assert torch.allclose(out.state_dict["w"], torch.tensor([0.7, 17.0]))  # 0.7 * tuned + 0.3 * start
    assert out.state_dict["count"].tolist() == [7] and out.state_dict["head"].tolist() == [3.0]  # from tuned
    assert out.training_config == {"train": {"epochs": 2}} and out.model_config == config
    assert torch.equal(load_checkpoint(blend_checkpoints(start, tuned, 1.0, tmp_path / "one.pt")).state_dict["w"],
                       torch.tensor([1.0, 20.0]))
    with pytest.raises(CheckpointError, match="outside"):
        blend_checkpoints(start, tuned, 1.5, tmp_path / "bad.pt")
    other = save_checkpoint(tmp_path / "other.pt", {"w": torch.zeros(3)}, config)
    with pytest.raises(CheckpointError, match="different architectures"):
        blend_checkpoints(start, other, 0.5, tmp_path / "bad.pt")
