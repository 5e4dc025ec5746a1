"""Pose networks for training: a 6-channel ResNet-18 encoder, a pose decoder and a residual decoder.

The depth + semantic network is :class:`gam_depth_ros.networks.GamDepthNet` (runtime package);
only training needs poses. A pair of frames ``(first, second)`` in temporal order is stacked
along channels; the decoder returns ``T_second_first`` (first-frame points into the second frame).
All pairs of a batch go through the encoder in one call (stacked along the batch dimension).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gam_depth_ros.networks.resnet import ResNetEncoder, load_imagenet_weights
from training.geometry import pose_vector_to_matrix


class PoseDecoder(nn.Module):
    """Coarsest encoder features -> a rigid transform per pair.

    1x1 squeeze to 256 channels, two 3x3 convolutions, spatial mean, a linear map to 6 outputs; the 6
    values (axis-angle, translation) are multiplied by ``scale`` so that the untrained network
    predicts small motions, as in monodepth2.

    Parameters
    ----------
    in_channels:
        Channels of the encoder's last feature map (512 for ResNet-18).
    scale:
        Output scale of axis-angle (radians) and translation (depth units).
    """

    def __init__(self, in_channels: int = 512, hidden: int = 256, scale: float = 0.01) -> None:
        super().__init__()
        self.scale = scale
        self.squeeze = nn.Conv2d(in_channels, hidden, 1)
        self.conv1 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.out = nn.Linear(hidden, 6)  # = a 1x1 convolution before the spatial mean
        self.relu = nn.ReLU(inplace=True)

    def forward(self, features: Tensor) -> Tensor:
        """``features [N,C,h,w]`` -> ``T_second_first [N,4,4]``."""
        x = self.relu(self.squeeze(features))
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        pose = self.out(x.mean((2, 3))).float() * self.scale  # [N,6]
        return pose_vector_to_matrix(pose[:, :3], pose[:, 3:])


class PoseNetwork(nn.Module):
    """Shared pose encoder with an initial and (optionally) a residual pose decoder.

    Parameters
    ----------
    residual:
        Build the residual decoder (MonoIndoor-style refinement). Both decoders share the encoder.
    scale:
        Output scale of both decoders.
    base_channels:
        Encoder width (64 = ResNet-18; ImageNet weights need it).
    """

    def __init__(self, residual: bool = True, scale: float = 0.01, base_channels: int = 64) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(in_images=2, base_channels=base_channels)
        self.decoder = PoseDecoder(self.encoder.channels[-1], scale=scale)
        self.residual_decoder = PoseDecoder(self.encoder.channels[-1], scale=scale) if residual else None

    def load_imagenet(self, path: str) -> None:
        """Initialise the encoder from torchvision ResNet-18 ImageNet weights in a local file."""
        load_imagenet_weights(self.encoder, path)

    def encode(self, first: Tensor, second: Tensor) -> Tensor:
        """Coarsest features ``[N,8*base_channels,H/32,W/32]`` of pairs ``first, second [N,3,H,W]`` (RGB, 0..1)."""
        return self.encoder(torch.cat([first, second], dim=1))[-1]

    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        """Initial poses ``T_second_first [N,4,4]`` of the pairs ``first, second [N,3,H,W]``."""
        return self.decoder(self.encode(first, second))

    def residual(self, first: Tensor, second: Tensor) -> Tensor:
        """Residual poses ``[N,4,4]`` of the pairs (one frame of each is already warped)."""
        if self.residual_decoder is None:
            raise RuntimeError("PoseNetwork was built with residual=False")
        return self.residual_decoder(self.encode(first, second))

