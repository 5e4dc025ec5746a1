"""Tiny in-memory video clips of random box rooms, in the training sample schema.

Each sample is one short clip: a camera placed in a random room (:mod:`training.synthetic.room`)
moves a few centimetres and turns slightly between consecutive frames; the frames listed in
``frame_ids`` are rendered with exact depth and NYU-40 labels. Planar segments and Manhattan
directions come from the known geometry: the rooms are axis-aligned, so the dominant directions
are the world axes seen from the camera, and a segment is a set of pixels on the same axis-aligned
plane. This is a test and smoke-run source; the full synthetic generator is a separate module.

``DataConfig.options`` for ``source: synthetic``: ``num_samples`` (default 8), ``seed`` (0),
``step_m`` (camera motion per frame in metres, 0.04), ``turn_rad`` (yaw per frame, 0.01),
``hfov_deg`` (60), ``cache`` (keep rendered samples in memory, true).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from training.data.common import relative_poses
from training.data.poses import homogeneous
from training.data.sample import NUM_SCALES
from training.image_ops import gradient_magnitude
from training.synthetic.room import intrinsics, look_at_pose, random_room, render

PLANE_BIN_M = 0.05  # plane offsets closer than this fall in the same segment


class SyntheticClipDataset(Dataset):
    """Map-style dataset of rendered clips; sample ``i`` is a pure function of (seed, i).

    Parameters
    ----------
    num_samples:
        Number of clips.
    height, width:
        Rendered (= network) size.
    frame_ids:
        Frames of each sample, target first (temporal offsets).
    seed:
        Base seed of rooms and trajectories.
    step_m, turn_rad:
        Camera translation (metres) and yaw (radians) per frame.
    """

    def __init__(
        self, num_samples: int, height: int, width: int, frame_ids: tuple[int, ...], seed: int = 0,
        step_m: float = 0.04, turn_rad: float = 0.01, hfov_deg: float = 60.0, cache: bool = True,
    ) -> None:
        self.num_samples = num_samples
        self.height, self.width = height, width
        self.frame_ids = tuple(frame_ids)
        self.seed = seed
        self.step_m, self.turn_rad = step_m, turn_rad
        self.K = intrinsics(width, height, hfov_deg)
        self.cache: dict[int, dict[str, torch.Tensor]] | None = {} if cache else None

    @classmethod
    def from_options(
        cls, options: dict[str, Any], height: int, width: int, frame_ids: tuple[int, ...]
    ) -> SyntheticClipDataset:
        """Build from ``DataConfig.options`` (see the module docstring); unknown options are errors."""
        known = {"num_samples", "seed", "step_m", "turn_rad", "hfov_deg", "cache"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"synthetic data: unknown option(s) {unknown}; known: {sorted(known)}")
        return cls(options.get("num_samples", 8), height, width, frame_ids, **{
            k: v for k, v in options.items() if k != "num_samples"
        })

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        if self.cache is not None and index in self.cache:
            return {k: v.clone() for k, v in self.cache[index].items()}
        sample = self._render(index)
        if self.cache is not None:
            self.cache[index] = sample
            return {k: v.clone() for k, v in sample.items()}
        return sample

    def camera_poses(self, index: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """World-from-camera poses (R ``[3,3]``, t ``[3]``) of every frame of clip ``index``."""
        return self._clip(index)[1]

    def relative_poses(self, index: int) -> torch.Tensor:
        """Ground-truth ``T_source_target`` ``[S,4,4]`` of clip ``index`` (target = frame 0)."""
        return _frame_poses(self.camera_poses(index))[1:]

    def _clip(self, index: int):
        rng = np.random.default_rng([self.seed, index])
        room = random_room(rng)
        start = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.2, 0.2), rng.uniform(-0.6, 0.0)])
        yaw0, pitch = rng.uniform(-0.4, 0.4), rng.uniform(-0.15, 0.1)
        heading = rng.normal(size=3) * np.array([1.0, 0.3, 1.0])
        velocity = self.step_m * heading / np.linalg.norm(heading)
        turn = self.turn_rad * rng.choice([-1.0, 1.0])
        poses = [look_at_pose(start + frame * velocity, yaw0 + frame * turn, pitch) for frame in self.frame_ids]
        return room, poses

    def _render(self, index: int) -> dict[str, torch.Tensor]:
        room, poses = self._clip(index)
        views = [render(room, self.K, R, t, self.width, self.height) for R, t in poses]
        images = torch.from_numpy(np.stack([view.image for view in views])).permute(0, 3, 1, 2).float() / 255.0
        K = _scaled_intrinsics(self.K)
        R0, t0 = poses[0]  # frame_ids[0] is the target (0)
        depth0, labels0 = views[0].depth, views[0].labels
        segments = plane_segments(depth0, self.K, R0, t0)
        return {
            "images": images,
            "images_aug": images.clone(),
            "K": K,
            "inv_K": torch.linalg.inv(K),
            "gradient": gradient_magnitude(images[0]),
            "labels": torch.from_numpy(labels0.astype(np.int64)),
            "has_labels": torch.tensor(True),
            "depth_gt": torch.from_numpy(depth0).unsqueeze(0),
            "has_depth": torch.tensor(True),
            "depth_fitted": torch.zeros(1, self.height, self.width),
            "has_fitted_depth": torch.tensor(False),
            "segments": torch.from_numpy(segments),
            "vanishing_directions": torch.from_numpy(R0.astype(np.float32)),  # rows: world axes in the camera frame
            "has_structure": torch.tensor(True),
            "poses": _frame_poses(poses),
            "has_poses": torch.tensor(True),
            "prior_poses": torch.eye(4).repeat(len(views), 1, 1),  # no two-view estimate for these clips
            "has_prior_pose": torch.zeros(len(views), dtype=torch.bool),
        }


def _frame_poses(poses: list[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
    """``T_frame_target`` ``[F,4,4]`` of world-from-camera ``(R, t)`` poses, target first (identity)."""
    return relative_poses(np.stack([homogeneous(R, t) for R, t in poses]))


def _scaled_intrinsics(K: np.ndarray) -> torch.Tensor:
    """``[NUM_SCALES,4,4]`` homogeneous intrinsics, fx, fy, cx, cy divided by 2**s."""
    out = torch.zeros(NUM_SCALES, 4, 4)
    for s in range(NUM_SCALES):
        out[s, :3, :3] = torch.from_numpy(K).float()
        out[s, :2, :] /= 2**s
        out[s, 3, 3] = 1.0
    return out


def plane_segments(depth: np.ndarray, K: np.ndarray, R_world_cam: np.ndarray, t_world_cam: np.ndarray) -> np.ndarray:
    """Segment ids ``[H,W]`` int64 of axis-aligned planes (-1 where the normal is ambiguous).

    A pixel's plane is the world axis its surface normal follows (from finite differences of the
    back-projected depth) and its world coordinate along that axis, binned by ``PLANE_BIN_M``.
    """
    height, width = depth.shape
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, float)], -1)
    world = (rays * depth[..., None]) @ R_world_cam.T + t_world_cam
    dx = np.diff(world, axis=1, append=world[:, -1:] * 2 - world[:, -2:-1])
    dy = np.diff(world, axis=0, append=world[-1:] * 2 - world[-2:-1])
    normal = np.cross(dx, dy)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-12
    axis = np.abs(normal).argmax(-1)
    confident = np.abs(normal).max(-1) > 0.95
    offset = np.take_along_axis(world, axis[..., None], -1)[..., 0]
    key = axis * 100_000 + np.round(offset / PLANE_BIN_M).astype(np.int64) + 50_000
    key = np.where(confident, key, -1)
    segments = np.full(key.shape, -1, np.int64)
    valid = key >= 0
    _, inverse = np.unique(key[valid], return_inverse=True)
    segments[valid] = inverse
    return segments

