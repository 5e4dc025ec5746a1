"""The crop augmentation (``data.augment.crop_height/crop_width``) is geometrically exact: a window of
the frames with the principal point shifted reprojects every pixel where the whole frame does."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from room_fixtures import write_tiny_rich_rooms

from training import geometry
from training.config import AugmentConfig, load_training_config
from training.data.augment import draw_crop_window
from training.data.common import assemble_sample

H, W = 96, 128
CROP_H, CROP_W = 64, 96
FX, FY, CX, CY = 90.0, 92.0, 63.3, 47.6
NO_AUG = AugmentConfig(color_jitter_p=0.0, flip_p=0.0)
CROP = AugmentConfig(color_jitter_p=0.0, flip_p=0.0, crop_height=CROP_H, crop_width=CROP_W)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _inputs() -> dict:
    """A two-frame sample's inputs: textured frames, smooth depth, labels, real motion."""
    rng = np.random.default_rng(5)
    v, u = np.mgrid[0:H, 0:W]
    world_from_camera = np.stack([np.eye(4), np.eye(4)])
    c, s = np.cos(0.04), np.sin(0.04)
    world_from_camera[1, :3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    world_from_camera[1, :3, 3] = [0.08, -0.02, 0.05]
    return {
        "frames": [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(2)],
        "K": np.array([[FX, 0.0, CX], [0.0, FY, CY], [0.0, 0.0, 1.0]]),
        "labels": rng.integers(0, 40, (H, W), dtype=np.uint8),
        "depth_m": (2.0 + 0.5 * np.sin(u / 9.0) + 0.4 * v / H).astype(np.float32),
        "fitted_depth_m": (3.0 + 0.1 * u / W).astype(np.float32),
        "world_from_camera": world_from_camera,
    }


def _cropped(seed: int) -> tuple[dict, tuple[int, int]]:
    """The cropped sample for RNG seed ``seed`` and the window corner the same draw gives."""
    torch.manual_seed(seed)
    corner = draw_crop_window(H, W, CROP_H, CROP_W)
    torch.manual_seed(seed)
    inputs = _inputs()
    return assemble_sample(inputs.pop("frames"), inputs.pop("K"), CROP, **inputs), corner


def _pixels(sample: dict) -> torch.Tensor:
    """``[H,W,2]`` source pixels of the target's pixels at scale 0, with the sample's depth and pose."""
    points = geometry.backproject(sample["depth_gt"][None], sample["inv_K"][:1])
    return geometry.project(points, sample["K"][:1], sample["poses"][1:2])[0]


def test_the_window_keeps_every_pixel_and_moves_the_principal_point():
    full = assemble_sample(**_inputs(), augment=NO_AUG)
    corners = set()
    for seed in range(6):
        cropped, (y0, x0) = _cropped(seed)
        corners.add((y0, x0))
        window = (slice(y0, y0 + CROP_H), slice(x0, x0 + CROP_W))
        assert cropped["images"].shape == (2, 3, CROP_H, CROP_W)
        assert torch.equal(cropped["images"], full["images"][..., window[0], window[1]])
        for key in ("labels", "depth_gt", "depth_fitted"):
            assert torch.equal(cropped[key], full[key][..., window[0], window[1]]), key
        assert torch.equal(cropped["poses"], full["poses"])
        for s in range(cropped["K"].shape[0]):  # (cx - x0) / 2**s: the scales stay consistent
            assert float(cropped["K"][s, 0, 2]) == pytest.approx(float(full["K"][s, 0, 2]) - x0 / 2**s, abs=1e-5)
            assert float(cropped["K"][s, 1, 2]) == pytest.approx(float(full["K"][s, 1, 2]) - y0 / 2**s, abs=1e-5)
            assert float(cropped["K"][s, 0, 0]) == pytest.approx(float(full["K"][s, 0, 0]), abs=1e-6)
        # Every window pixel reprojects to the whole frame's pixel, moved by the window's corner.
        moved = _pixels(full)[window] - torch.tensor([float(x0), float(y0)])
        assert float((_pixels(cropped) - moved).abs().max()) < 1e-3
    assert len(corners) >= 4  # the window moves (33 x 33 corners possible)


def test_warping_the_window_equals_the_window_of_the_warp_where_the_source_sees_it():
    full = assemble_sample(**_inputs(), augment=NO_AUG)
    cropped, (y0, x0) = _cropped(2)

    def warp(sample: dict) -> torch.Tensor:
        return geometry.warp(sample["images"][1:2], sample["depth_gt"][None], sample["K"][:1],
                             sample["inv_K"][:1], sample["poses"][1:2])[0]

    window = (slice(y0, y0 + CROP_H), slice(x0, x0 + CROP_W))
    pixels = _pixels(full)[window]
    # Bilinear sampling reads the 2x2 neighbours: compare where all of them lie inside the window.
    inside = ((pixels[..., 0] >= x0) & (pixels[..., 0] <= x0 + CROP_W - 1)
              & (pixels[..., 1] >= y0) & (pixels[..., 1] <= y0 + CROP_H - 1))
    assert 0.3 < float(inside.float().mean()) < 1.0  # the motion takes some pixels out of the window
    difference = (warp(cropped) - warp(full)[:, window[0], window[1]]).abs().amax(0)
    assert float(difference[inside].max()) < 1e-4


def test_bad_crop_settings_are_refused_with_the_sizes():
    with pytest.raises(ValueError, match="multiples of 32 and at least 64.*96x80"):
        AugmentConfig(crop_height=96, crop_width=80)
    with pytest.raises(ValueError, match="at least 64.*32x64"):
        AugmentConfig(crop_height=32, crop_width=64)
    with pytest.raises(ValueError, match="both 0"):
        AugmentConfig(crop_height=64)
    with pytest.raises(ValueError, match="crop 256x256 is larger than the network size .* 192x256"):
        load_training_config("config/train_rich192.yaml", ["data.augment.crop_height=256",
                                                            "data.augment.crop_width=256"])
    big = AugmentConfig(crop_height=128, crop_width=96)
    inputs = _inputs()
    with pytest.raises(ValueError, match=r"crop 128x96 \(height x width\) is larger than the frames \(96x128\)"):
        assemble_sample(inputs.pop("frames"), inputs.pop("K"), big, **inputs)


def test_a_cropped_training_run_trains_on_windows_and_validates_on_whole_frames(tmp_path):
    from training.trainer import Trainer

    rooms = write_tiny_rich_rooms(tmp_path / "rooms")
    torch.set_num_threads(2)
    config = load_training_config("config/train_rich192.yaml", [
        "model.height=64", "model.width=96", "data.options.stride=2", "data.options.min_baseline=0",
        "data.augment.crop_height=64", "data.augment.crop_width=64",
        f"data.path={rooms}", f"validation.data.path={rooms}", "validation.max_samples=2",
        f"train.output_dir={tmp_path / 'run'}", "train.batch_size=2", "train.max_steps=4", "train.epochs=4",
        "train.log_every_steps=1", "train.checkpoint_every_epochs=0", "train.checkpoint_every_steps=0"])
    trainer = Trainer(config)
    rows: list[dict[str, float]] = []
    trainer._log = lambda terms, data_time, step_time: rows.append(terms)  # type: ignore[method-assign]
    sizes: list[tuple[int, ...]] = []
    trainer.model.register_forward_pre_hook(lambda module, args: sizes.append(tuple(args[0].shape[-2:])))
    result = trainer.fit()
    assert sizes == [(64, 64)] * 4  # every training step saw a 64x64 window of the 64x96 frames
    assert len(rows) == 4 and all(math.isfinite(row["total"]) and row["photometric"] > 0 for row in rows)
    assert result.step == 4 and result.validation["images"] == 2  # whole frames: validation has no augmentation
