"""training/two_view.py: the classical two-view pose on rendered frames with known motion."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from training.pose_metrics import pose_errors
from training.synthetic.generate import render_sequence, world_from_camera
from training.two_view import two_view_pose, two_view_sample_poses

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rich():
    return render_sequence(41, 0, 16, 192, 256, "handheld", style="rich")


def _grey(sequence, index: int) -> np.ndarray:
    return cv2.cvtColor(np.asarray(sequence.images[index]), cv2.COLOR_RGB2GRAY)


@pytest.mark.parametrize(("source", "max_rotation_fraction", "min_cosine"), [(10, 0.2, 0.7), (15, 0.2, 0.9)])
def test_textured_pairs_give_rotation_and_translation_direction(rich, source, max_rotation_fraction, min_cosine):
    """Frames 0 and 10 / 15 of a hand-held rich-room clip (6.5 / 13 cm, 10 / 14 degrees apart): measured
    rotation errors 0.146 / 0.127 of the true rotation, direction cosines 0.78 / 0.96."""
    poses = world_from_camera(rich)
    estimate = two_view_pose(_grey(rich, 0), _grey(rich, source), np.asarray(rich.K)[:3, :3])
    assert estimate is not None and estimate.inliers >= 12 and estimate.matches >= estimate.inliers
    assert np.linalg.norm(estimate.T_source_target[:3, 3]) == pytest.approx(1.0)  # no scale from two views
    true = np.linalg.inv(poses[source]) @ poses[0]  # T_source_target
    errors = pose_errors(torch.tensor(estimate.T_source_target[None]), torch.tensor(true[None]))
    assert float(errors["rotation_error_fraction"][0]) <= max_rotation_fraction
    assert float(errors["translation_cosine"][0]) >= min_cosine


def test_textureless_rooms_give_no_pose_and_samples_fall_back_to_identity(rich):
    plain = render_sequence(41, 0, 11, 192, 256, "handheld", style="plain")
    assert two_view_pose(_grey(plain, 0), _grey(plain, 10), np.asarray(plain.K)[:3, :3]) is None
    images = torch.from_numpy(np.stack([np.asarray(rich.images[i]) for i in (0, 15)]
                                       + [np.asarray(plain.images[0])])).permute(0, 3, 1, 2).float() / 255
    poses, found = two_view_sample_poses(images, torch.from_numpy(np.asarray(rich.K)).float())
    assert poses.shape == (2, 4, 4) and found.tolist() == [True, False]
    assert torch.equal(poses[1], torch.eye(4))


def test_folder_samples_carry_the_two_view_prior_mirrored_with_the_frames(tmp_path, rich):
    """``two_view_prior: true``: estimated on the 192x256 frames, carried by 64x96 samples; a flipped
    sample mirrors the estimate exactly as it mirrors the data's poses."""
    from training.config import AugmentConfig
    from training.data.folder import FolderDataset
    from training.synthetic.generate import write_folder

    write_folder(rich, tmp_path / "seq")
    plain = FolderDataset(tmp_path / "seq", (0, -1, 1), 64, 96, stride=5, two_view_prior=True)
    flipped = FolderDataset(tmp_path / "seq", (0, -1, 1), 64, 96, stride=5, two_view_prior=True,
                            augment=AugmentConfig(color_jitter_p=0.0, flip_p=1.0))
    sample, mirrored = plain[5], flipped[5]  # target frame 10, sources 5 and 15
    assert sample["has_prior_pose"].tolist() == [False, True, True]
    assert torch.equal(sample["prior_poses"][0], torch.eye(4))
    errors = pose_errors(sample["prior_poses"][1:].double(), sample["poses"][1:].double())
    # measured: rotation errors 0.12 / 0.34 of the true 4.9 / 4.4 degrees, direction cosines 0.9995 / 0.879
    assert float(errors["rotation_error_fraction"].max()) < 0.4 and float(errors["translation_cosine"].min()) > 0.85
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    assert torch.allclose(mirrored["prior_poses"], mirror @ sample["prior_poses"] @ mirror)
    assert torch.allclose(mirrored["poses"], mirror @ sample["poses"] @ mirror)
    off = FolderDataset(tmp_path / "seq", (0, -1, 1), 64, 96, stride=5)
    assert not bool(off[5]["has_prior_pose"].any())


def test_two_view_rotation_pose_source_rotates_the_networks_translation(tmp_path, rich):
    """``networks.pose_source: two_view_rotation``: the pose network's translations with the two-view
    rotation where a pair has one; a short training run on such data; refused without the estimates."""
    from training.config import load_training_config
    from training.model import SelfSupervisedModel
    from training.synthetic.generate import write_folder
    from training.trainer import Trainer

    config = load_training_config(REPO / "config" / "train_tiny.yaml")
    torch.manual_seed(0)
    network = SelfSupervisedModel(config.model, (0, -1, 1), residual_pose=False).eval()
    hybrid = SelfSupervisedModel(config.model, (0, -1, 1), residual_pose=False, pose_source="two_view_rotation").eval()
    hybrid.load_state_dict(network.state_dict())
    images = torch.rand(1, 3, 3, 64, 96)
    K = torch.eye(4)[None].clone()
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2] = 50.0, 50.0, 47.5, 31.5
    prior = torch.eye(4).repeat(1, 2, 1, 1)
    prior[0, 0, :3, :3] = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    found = torch.tensor([[True, False]])
    with torch.no_grad():
        own = network(images, K, torch.linalg.inv(K), with_semantics=False)["T_source_target"]
        mixed = hybrid(images, K, torch.linalg.inv(K), with_semantics=False, poses=prior, pose_found=found)
    T = mixed["T_source_target"]
    assert torch.equal(T[0, 0, :3, :3], prior[0, 0, :3, :3]) and torch.equal(T[0, 1], own[0, 1])
    assert torch.equal(T[:, :, :3, 3], own[:, :, :3, 3])
    with pytest.raises(ValueError, match="needs the two-view poses"):
        hybrid(images, K, torch.linalg.inv(K), with_semantics=False)

    write_folder(rich, tmp_path / "data" / "seq")
    settings = [f"data.path={tmp_path / 'data'}", "data.source=folder", "networks.pose_source=two_view_rotation",
                "validation=null", f"train.output_dir={tmp_path / 'run'}", "train.max_steps=2",
                "train.progress_bar=false", "train.checkpoint_every_epochs=0", "train.cpu_threads=1"]
    with pytest.raises(ValueError, match="two_view_rotation' needs the two-view estimates"):
        load_training_config(REPO / "config" / "train_tiny.yaml", [*settings, "data.options={stride: 5}"])
    run = load_training_config(REPO / "config" / "train_tiny.yaml",
                               [*settings, "data.options={stride: 5, two_view_prior: true}"])
    result = Trainer(run).fit()
    assert result.step == 2 and result.nan_steps == 0
