"""Poses that come with the data (poses.txt, odometry): reading, the sample schema, flips, training with them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from training import geometry
from training.config import AugmentConfig, load_training_config
from training.data.common import DataError
from training.data.folder import FolderDataset
from training.data.poses import read_pose_file
from training.model import SelfSupervisedModel
from training.synthetic.generate import render_sequence, write_folder
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
H, W = 48, 64  # the generator's size; the network input below is 64x96
STRIDE = 3


@pytest.fixture(scope="module")
def posed_folder(tmp_path_factory):
    sequence = render_sequence(2, 0, 12, H, W, "handheld")
    return write_folder(sequence, tmp_path_factory.mktemp("posed") / "seq_0000"), sequence


def _world_from_camera(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def test_pose_file_reads_back_what_the_generator_wrote(posed_folder):
    folder, sequence = posed_folder
    poses = read_pose_file(folder / "poses.txt", len(sequence.poses))
    for T, (R, t) in zip(poses, sequence.poses):
        np.testing.assert_allclose(T, _world_from_camera(R, t), atol=2e-6)  # 6 decimals in the file


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
    W_t = _world_from_camera(*sequence.poses[t])
    for k, offset in enumerate((0, -STRIDE, STRIDE)):
        expected = np.linalg.inv(_world_from_camera(*sequence.poses[t + offset])) @ W_t
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
