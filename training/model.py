"""Everything with parameters in one module: depth + semantic network and pose networks.

:class:`SelfSupervisedModel` is what the trainer optimises (and what DistributedDataParallel
wraps). Its forward runs the networks and the pose refinement; the losses (parameter-free) are
computed outside, in :mod:`training.objective`.

Pose flow for frame ids such as [0, -2, -1, 1, 2]:

1. Initial poses between temporally consecutive frames (-2,-1), (-1,0), (0,1), (1,2), all pairs
   of the batch in one pose-encoder call; the pose of each source relative to the target is the
   composition along the chain (T_2_0 = T_2_1 @ T_1_0; negative frames through the inverse).
2. Each source (network input version) is warped into the target view with its initial pose and
   the full-resolution depth.
3. Residual poses from (target, warped source) pairs, again in temporal order and in one encoder
   call; the final ``T_source_target = T_initial @ T_residual``.

With ``pose_source="data"`` step 1 is replaced by the poses that come with the data (a robot's
odometry, ``poses.txt``): metric, so the depth is learnt in metres; the residual decoder (if on)
corrects their errors. The initial pose network is then unused. With
``pose_source="two_view_rotation"`` step 1 keeps the network's translations but takes the rotation
of each source from the classical two-view estimate (:mod:`training.two_view`) where there is one:
the network supplies the translation and its scale (which two views cannot give), feature matches
the rotation, which the network does not find from scratch (docs/benchmarks.md, "Pose diagnostics").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gam_depth_ros.inference.postprocessing import depth_to_disparity, disparity_to_depth
from gam_depth_ros.model_config import ModelConfig
from gam_depth_ros.networks import GamDepthNet
from training.geometry import backproject, invert, project, sample, with_rotation
from training.networks import PoseNetwork


class SelfSupervisedModel(nn.Module):
    """Depth + semantics network and pose network for view-synthesis training.

    Parameters
    ----------
    model_config:
        Network size, classes and depth range (``training_config.model``).
    frame_ids:
        Target first, then the sources (temporal offsets), e.g. (0, -2, -1, 1, 2).
    depth_scales:
        Disparity scales produced for the losses.
    residual_pose:
        Refine poses with the residual decoder.
    pose_scale:
        Output scale of the pose decoders.
    pose_base_channels:
        Width of the pose encoder (64 = ResNet-18).
    pose_source:
        ``"network"`` (initial poses from the pose network), ``"data"`` (passed to :meth:`forward`) or
        ``"two_view_rotation"`` (the network's, rotated as the two-view estimate passed to :meth:`forward`).
    initial_depth:
        Depth in metres the untrained depth decoder starts at; 0 keeps the default initialisation.
    """

    def __init__(
        self, model_config: ModelConfig, frame_ids: tuple[int, ...], depth_scales: tuple[int, ...] = (0, 1, 2, 3),
        residual_pose: bool = True, pose_scale: float = 0.01, pose_base_channels: int = 64,
        pose_source: str = "network", initial_depth: float = 0.0,
    ) -> None:
        super().__init__()
        self.depth_net = GamDepthNet.from_config(model_config, depth_scales=tuple(sorted(depth_scales)))
        if initial_depth:
            start_depth_at(self.depth_net, initial_depth, model_config.min_depth, model_config.max_depth)
        if pose_source not in ("network", "data", "two_view_rotation"):
            raise ValueError(f"pose_source must be 'network', 'data' or 'two_view_rotation', got {pose_source!r}")
        self.pose_source = pose_source
        self.pose_net = PoseNetwork(residual=residual_pose, scale=pose_scale, base_channels=pose_base_channels)
        self.frame_ids = tuple(frame_ids)
        self.min_depth = model_config.min_depth
        self.max_depth = model_config.max_depth
        ordered = sorted(self.frame_ids)
        self.pairs = tuple(zip(ordered[:-1], ordered[1:]))  # consecutive (earlier, later) frame ids

    def predict_depth(self, image: Tensor, with_semantics: bool = True) -> tuple[list[Tensor], Tensor | None]:
        """Disparities at every scale ``[B,1,H/2**s,W/2**s]`` and semantic logits ``[B,C,H,W]`` (or None)."""
        if with_semantics:
            return self.depth_net.forward_multiscale(image)
        features = self.depth_net.encoder(image)
        return [torch.sigmoid(d) for d in self.depth_net.depth_decoder(features)], None

    def forward(self, images_aug: Tensor, K: Tensor, inv_K: Tensor, with_semantics: bool = True,
                poses: Tensor | None = None, pose_found: Tensor | None = None) -> dict:
        """Run the networks on one batch.

        Parameters
        ----------
        images_aug:
            ``[B,F,3,H,W]`` network-input frames in [0, 1], ordered as ``frame_ids``.
        K, inv_K:
            ``[B,4,4]`` full-resolution intrinsics and inverse.
        with_semantics:
            Run the semantic decoder (skipped once the semantic loss is off).
        poses:
            ``[B,S,4,4]`` target -> source transforms from the data; required with
            ``pose_source="data"`` and (the two-view estimates) ``"two_view_rotation"``, ignored otherwise.
        pose_found:
            ``[B,S]`` bool, where ``poses`` holds a two-view estimate (``"two_view_rotation"`` only).

        Returns
        -------
        dict
            ``disparities``: list of ``[B,1,H/2**s,W/2**s]`` sigmoid disparities, finest first;
            ``semantic_logits``: ``[B,C,H,W]`` (only with semantics); ``T_initial`` and
            ``T_source_target``: ``[B,S,4,4]`` initial and final target -> source transforms of the
            S = F - 1 sources (equal when the residual decoder is off).
        """
        target = images_aug[:, 0]
        disparities, logits = self.predict_depth(target, with_semantics)
        if self.pose_source == "data":
            if poses is None:
                raise ValueError("pose_source 'data' needs the poses of the batch")
            T_initial = poses.float()
        elif self.pose_source == "two_view_rotation":
            if poses is None or pose_found is None:
                raise ValueError("pose_source 'two_view_rotation' needs the two-view poses and where they were found")
            with _full_precision(images_aug):
                T_initial = with_rotation(self._initial_poses(images_aug), poses.float(), pose_found.bool())
        else:
            T_initial = self._initial_poses(images_aug)
        T_final = T_initial
        if self.pose_net.residual_decoder is not None:
            depth = disparity_to_depth(disparities[0].float(), self.min_depth, self.max_depth)
            T_residual = self._residual_poses(images_aug, depth, K.float(), inv_K.float(), T_initial)
            with _full_precision(images_aug):
                T_final = T_initial @ T_residual
        outputs = {"disparities": disparities, "T_initial": T_initial, "T_source_target": T_final}
        if logits is not None:
            outputs["semantic_logits"] = logits
        return outputs

    def _initial_poses(self, images: Tensor) -> Tensor:
        b = images.shape[0]
        index = {frame: i for i, frame in enumerate(self.frame_ids)}
        first = images[:, [index[a] for a, _ in self.pairs]].flatten(0, 1)
        second = images[:, [index[c] for _, c in self.pairs]].flatten(0, 1)
        T_pairs = self.pose_net(first, second).view(b, len(self.pairs), 4, 4)  # T_later_earlier, float32
        step = {pair: T_pairs[:, i] for i, pair in enumerate(self.pairs)}
        poses = []
        with _full_precision(images):
            for frame in self.frame_ids[1:]:
                T = torch.eye(4, device=images.device, dtype=T_pairs.dtype).expand(b, 4, 4)
                lo, hi = min(0, frame), max(0, frame)
                for a, c in self.pairs:
                    if lo <= a and c <= hi:
                        T = step[(a, c)] @ T  # accumulates T_hi_lo along the chain
                poses.append(T if frame > 0 else invert(T))  # T_frame_0
        return torch.stack(poses, dim=1)

    def _residual_poses(self, images: Tensor, depth: Tensor, K: Tensor, inv_K: Tensor, T_initial: Tensor) -> Tensor:
        b, f, c, h, w = images.shape
        s = f - 1
        with _full_precision(images):  # pixel coordinates in bf16/fp16 would be off by pixels
            points = backproject(depth, inv_K)
            pixels = project(points.unsqueeze(1), K.unsqueeze(1), T_initial)  # [B,S,H,W,2]
            warped = sample(images[:, 1:].reshape(b * s, c, h, w).float(), pixels.reshape(b * s, h, w, 2))
        warped = warped.view(b, s, c, h, w).to(images.dtype)
        target = images[:, :1].expand(b, s, c, h, w)
        earlier = torch.tensor([frame < 0 for frame in self.frame_ids[1:]], device=images.device).view(1, s, 1, 1, 1)
        first = torch.where(earlier, warped, target).reshape(b * s, c, h, w)
        second = torch.where(earlier, target, warped).reshape(b * s, c, h, w)
        T_pair = self.pose_net.residual(first, second).view(b, s, 4, 4)
        with _full_precision(images):
            return torch.where(earlier.view(1, s, 1, 1), invert(T_pair), T_pair)


def start_depth_at(depth_net: GamDepthNet, depth: float, min_depth: float, max_depth: float) -> None:
    """Set the depth heads' biases so that the untrained network predicts about ``depth`` metres.

    The sigmoid output s maps to disparity ``1/max + s (1/min - 1/max)``; at the default bias 0
    (s = 0.5) that is about twice ``min_depth`` (0.2 m for 0.1-10 m), far from a room's depth.
    """
    s = depth_to_disparity(depth, min_depth, max_depth)
    with torch.no_grad():
        for head in depth_net.depth_decoder.heads:
            head.conv.bias.fill_(math.log(s / (1.0 - s)))


def _full_precision(like: Tensor):
    """Autocast off for geometry (a no-op outside autocast)."""
    return torch.autocast(like.device.type, enabled=False)
