"""Poses that come with the data (poses.txt, odometry): reading, the sample schema, flips, training with them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from training import geometry
from training.config import AugmentConfig, load_training_config
from training.data.bag_poses import chain_transform
from training.data.common import DataError
from training.data.folder import FolderDataset
from training.data.poses import interpolate_poses, matrix_quaternion, pose_matrix, read_pose_file
from training.data.rosbag import extract_bag
from training.model import SelfSupervisedModel
from training.synthetic.generate import (
    ODOM_TOPIC,
    TOPICS,
    base_from_camera,
    render_sequence,
    world_from_camera,
    write_bag,
    write_folder,
)
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
H, W = 48, 64  # the generator's size; the network input below is 64x96
STRIDE = 3


@pytest.fixture(scope="module")
def posed_folder(tmp_path_factory):
    sequence = render_sequence(2, 0, 12, H, W, "handheld")
    return write_folder(sequence, tmp_path_factory.mktemp("posed") / "seq_0000"), sequence


def test_pose_file_reads_back_what_the_generator_wrote(posed_folder):
    folder, sequence = posed_folder
    poses = read_pose_file(folder / "poses.txt", len(sequence.poses))
    np.testing.assert_allclose(poses, world_from_camera(sequence), atol=2e-6)  # 6 decimals in the file


@pytest.mark.parametrize("text, problem", [
    ("0 1 2 3 0 0 0 1\n", "1 poses for 2 frames"),
    ("0 1 2 3 0 0 0 1\n0 1 2 3 0 0 0\n", ":3: expected"),  # line 1 is the comment
    ("0 1 2 3 0 0 0 1\n0 1 2 x 0 0 0 1\n", ":3: expected"),
    ("0 1 2 3 0 0 0 0\n0 1 2 3 0 0 0 1\n", ":2: expected"),
    ("0 nan 2 3 0 0 0 1\n0 1 2 3 0 0 0 1\n", ":2: expected"),
])
def test_bad_pose_files_name_the_file_and_line(tmp_path, text, problem):
    path = tmp_path / "poses.txt"
    path.write_text("# stamp tx ty tz qx qy qz qw\n" + text)
    with pytest.raises(DataError, match=str(path)) as error:
        read_pose_file(path, 2)
    assert problem in str(error.value)


def _sample(folder: Path, flip: bool) -> dict[str, torch.Tensor]:
    augment = AugmentConfig(color_jitter_p=0.0, flip_p=1.0) if flip else None
    return FolderDataset(folder, (0, -1, 1), 64, 96, augment=augment, stride=STRIDE)[2]


def _warp_error(sample: dict[str, torch.Tensor], poses: torch.Tensor) -> float:
    """Mean |warped source - target| with the true depth: low only when the poses are right."""
    depth = sample["depth_gt"][None]
    K, inv_K = sample["K"][:1, None], sample["inv_K"][:1]
    points = geometry.backproject(depth, inv_K)
    pixels = geometry.project(points.unsqueeze(1), K, poses[None, 1:])  # [1,2,H,W,2]
    warped = geometry.sample(sample["images"][1:], pixels[0])
    valid = (depth[0] > 0).expand(2, 3, -1, -1)
    return float((warped - sample["images"][:1]).abs()[valid].mean())


def test_samples_carry_the_relative_poses_and_flips_mirror_them(posed_folder):
    folder, sequence = posed_folder
    sample = _sample(folder, flip=False)
    assert bool(sample["has_poses"]) and sample["poses"].shape == (3, 4, 4)
    t = 2 + STRIDE  # target index of sample 2: the first target is STRIDE
    W = world_from_camera(sequence)
    for k, offset in enumerate((0, -STRIDE, STRIDE)):
        expected = np.linalg.inv(W[t + offset]) @ W[t]
        np.testing.assert_allclose(sample["poses"][k].numpy(), expected, atol=1e-4)
    identity = torch.eye(4).repeat(3, 1, 1)
    straight, still = _warp_error(sample, sample["poses"]), _warp_error(sample, identity)
    flipped = _sample(folder, flip=True)
    mirrored = _warp_error(flipped, flipped["poses"])
    assert straight < 0.7 * still, (straight, still)  # measured 0.0097 vs 0.018
    assert mirrored < 1.1 * straight + 1e-3, (mirrored, straight)  # the mirrored poses fit the mirrored frames
    wrong = _warp_error(flipped, sample["poses"])
    assert wrong > 1.5 * mirrored  # unmirrored poses would not (measured: 0.0097 straight and mirrored, 0.018 not)


def test_model_takes_its_initial_poses_from_the_data():
    config = load_training_config(REPO / "config" / "train_tiny.yaml")
    model = SelfSupervisedModel(config.model, (0, -1, 1), residual_pose=False, pose_source="data",
                                initial_depth=2.0)
    images = torch.rand(2, 3, 3, 64, 96)
    K = torch.eye(4).expand(2, 4, 4).clone()
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2] = 50.0, 50.0, 48.0, 32.0
    poses = torch.eye(4).repeat(2, 2, 1, 1)
    poses[:, :, 0, 3] = torch.tensor([0.1, -0.2])
    out = model(images, K, torch.linalg.inv(K), with_semantics=False, poses=poses)
    assert torch.equal(out["T_source_target"], poses)
    depth = 1.0 / (0.1 + (10.0 - 0.1) * out["disparities"][0])  # disparity_to_depth of the default 0.1-10 m
    assert abs(float(depth.detach().mean()) - 2.0) < 0.3  # initial_depth sets where the untrained network starts
    with pytest.raises(ValueError, match="needs the poses"):
        model(images, K, torch.linalg.inv(K), with_semantics=False)


def _folder_config(data_path: Path, output_dir: Path):
    return load_training_config(REPO / "config" / "train_tiny.yaml", [
        "data.source=folder", f"data.path={data_path}", "data.options={stride: 2}", "validation=null",
        f"train.output_dir={output_dir}", "train.max_steps=3", "train.progress_bar=false",
        "train.checkpoint_every_epochs=0", "networks.pose_source=data", "networks.initial_depth=2.0",
    ])


def test_training_with_data_poses_runs_and_refuses_data_without_them(posed_folder, tmp_path):
    folder, _ = posed_folder
    result = Trainer(_folder_config(folder, tmp_path / "run")).fit()
    assert result.step == 3 and result.nan_steps == 0
    bare = shutil.copytree(folder, tmp_path / "bare")
    (bare / "poses.txt").unlink()
    with pytest.raises(DataError, match="pose_source is 'data'.*poses.txt"):
        Trainer(_folder_config(bare, tmp_path / "run2")).fit()


def test_initial_depth_outside_the_depth_range_is_a_config_error():
    with pytest.raises(ValueError, match="initial_depth 20.0 must lie inside"):
        load_training_config(REPO / "config" / "train_tiny.yaml", ["networks.initial_depth=20.0"])


def _rotation_z(angle: float) -> np.ndarray:
    return pose_matrix([0, 0, 0], [0, 0, np.sin(angle / 2), np.cos(angle / 2)])[:3, :3]


def test_interpolation_between_odometry_messages():
    a, b = pose_matrix([0, 0, 0], [0, 0, 0, 1]), pose_matrix([1.0, 2.0, 0], [0, 0, np.sin(0.3), np.cos(0.3)])
    stamps = np.array([100, 200])
    out = interpolate_poses(stamps, np.stack([a, b]), np.array([100, 125, 200, 99, 201]), max_gap_ns=150)
    np.testing.assert_allclose(out[0], a)
    np.testing.assert_allclose(out[2], b)
    np.testing.assert_allclose(out[1, :3, 3], [0.25, 0.5, 0], atol=1e-12)
    np.testing.assert_allclose(out[1, :3, :3], _rotation_z(0.6 * 0.25), atol=1e-12)  # a quarter of the turn
    assert np.isnan(out[3]).all() and np.isnan(out[4]).all()  # outside the span
    assert np.isnan(interpolate_poses(stamps, np.stack([a, b]), np.array([150]), max_gap_ns=99)).all()  # gap


def test_static_transforms_chain_through_frames_both_ways():
    base_mount = pose_matrix([0.1, 0, 0.5], [0, 0, 0, 1])
    mount_camera = pose_matrix([0, 0.2, 0.3], [0.5, -0.5, 0.5, -0.5])
    edges = {("base_link", "mount"): base_mount, ("mount", "camera"): mount_camera}
    np.testing.assert_allclose(chain_transform(edges, "base_link", "camera"), base_mount @ mount_camera)
    np.testing.assert_allclose(chain_transform(edges, "camera", "base_link"), np.linalg.inv(base_mount @ mount_camera))
    assert chain_transform(edges, "base_link", "lidar") is None


@pytest.fixture(scope="module")
def robot_bag(tmp_path_factory):
    sequence = render_sequence(3, 0, 12, H, W, "robot", camera_height=0.8)
    return write_bag(sequence, tmp_path_factory.mktemp("odom") / "robot_bag"), sequence


BAG_OPTIONS = {"topic": TOPICS["image"], "camera_info_topic": TOPICS["camera_info"], "min_motion": 0.0,
               "odometry_topic": ODOM_TOPIC}


def test_camera_poses_from_the_bags_odometry_and_mounting(robot_bag, tmp_path):
    bag, sequence = robot_bag
    folder = extract_bag(bag, BAG_OPTIONS, tmp_path / "frames")
    poses = read_pose_file(folder / "poses.txt", 12)
    truth = world_from_camera(sequence)
    for i in (1, 5, 11):  # relative motion is what training uses; the fixed frame differs (odom is z-up)
        np.testing.assert_allclose(np.linalg.inv(poses[i]) @ poses[0], np.linalg.inv(truth[i]) @ truth[0], atol=1e-4)
    np.testing.assert_allclose(poses[:, 2, 3], poses[0, 2, 3], atol=1e-5)  # a robot camera: constant height in odom
    mounting = base_from_camera(0.8)
    base = poses @ np.linalg.inv(mounting)
    np.testing.assert_allclose(base[:, 2, 2], 1.0, atol=1e-6)  # base_link stays level: only yaw


def test_a_mounting_missing_from_tf_static_is_named(robot_bag, tmp_path):
    bag, _ = robot_bag
    with pytest.raises(DataError, match="no static transform from 'base_link' to the camera frame 'head_camera'"):
        extract_bag(bag, BAG_OPTIONS | {"camera_frame": "head_camera"}, tmp_path / "a")
    with pytest.raises(DataError, match="odometry_topic must be one of"):
        extract_bag(bag, BAG_OPTIONS | {"odometry_topic": TOPICS["camera_info"]}, tmp_path / "b")
    extrinsic = base_from_camera(0.8)  # the same mounting given by hand instead of /tf_static
    given = {"translation": extrinsic[:3, 3].tolist(), "rotation": matrix_quaternion(extrinsic[:3, :3]).tolist()}
    folder = extract_bag(bag, BAG_OPTIONS | {"tf_static_topic": "/none", "camera_extrinsic": given}, tmp_path / "c")
    reference = extract_bag(bag, BAG_OPTIONS, tmp_path / "d")
    np.testing.assert_allclose(read_pose_file(folder / "poses.txt", 12), read_pose_file(reference / "poses.txt", 12),
                               atol=1e-5)


def test_fine_tuning_on_a_rosbag_with_odometry_poses(robot_bag, tmp_path):
    bag, _ = robot_bag
    config = load_training_config(REPO / "config" / "train_tiny.yaml", [
        "data.source=rosbag", f"data.path={bag}",
        f"data.options={BAG_OPTIONS | {'cache_dir': str(tmp_path / 'c'), 'stride': 1}}",
        "validation=null", f"train.output_dir={tmp_path / 'run'}", "train.max_steps=2", "train.progress_bar=false",
        "train.checkpoint_every_epochs=0", "networks.pose_source=data", "networks.initial_depth=2.0",
    ])
    result = Trainer(config).fit()
    assert result.step == 2 and result.nan_steps == 0
