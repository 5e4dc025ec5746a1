"""Monodepth2-style U-Net decoder, used for both the depth and the semantic head.

Written from the architecture description in the design reference: five up-sampling stages with
16, 32, 64, 128, 256 channels, ELU 3x3 convolutions with reflection padding, nearest x2
up-sampling and skip connections from the encoder.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

DECODER_CHANNELS = (16, 32, 64, 128, 256)


class ReflectConv3x3(nn.Module):
    """3x3 convolution on a reflection-padded (1 pixel) input: borders see mirrored content
    instead of zeros, which avoids dark-edge artefacts in the predicted depth."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class ConvELU(ReflectConv3x3):
    """3x3 convolution with reflection padding followed by ELU."""

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(super().forward(x), inplace=True)


class UpStage(nn.Module):
    """One decoder stage: conv, nearest x2 up-sampling, concatenation with a skip, conv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.reduce = ConvELU(in_channels, out_channels)
        self.fuse = ConvELU(out_channels + skip_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        x = F.interpolate(self.reduce(x), scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.fuse(x)


class UNetDecoder(nn.Module):
    """Decoder from the five encoder feature maps to per-pixel outputs.

    Parameters
    ----------
    encoder_channels:
        Channels of the encoder features, finest first (ResNet-18: 64, 64, 128, 256, 512).
    out_channels:
        Output channels of each head (1 for disparity, 40 for semantic logits).
    scales:
        Output scales, 0 = full input resolution, s = 1/2**s. Training uses (0, 1, 2, 3) for the
        depth head; export and inference use (0,).
    """

    def __init__(
        self,
        encoder_channels: tuple[int, ...],
        out_channels: int,
        scales: tuple[int, ...] = (0,),
    ) -> None:
        super().__init__()
        if len(encoder_channels) != 5:
            raise ValueError(f"expected 5 encoder feature levels, got {len(encoder_channels)}")
        if not scales or any(s not in range(4) for s in scales):
            raise ValueError(f"scales must be a non-empty subset of 0..3, got {scales}")
        self.scales = tuple(sorted(scales))
        stages = []
        for level in range(4, -1, -1):  # coarsest to finest
            in_ch = encoder_channels[4] if level == 4 else DECODER_CHANNELS[level + 1]
            skip_ch = encoder_channels[level - 1] if level > 0 else 0
            stages.append(UpStage(in_ch, skip_ch, DECODER_CHANNELS[level]))
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(
            ReflectConv3x3(DECODER_CHANNELS[s], out_channels) for s in self.scales
        )

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Decode.

        Parameters
        ----------
        features:
            Encoder features, finest first, as returned by ``ResNetEncoder``.

        Returns
        -------
        list[Tensor]
            One raw (pre-activation) output per configured scale, finest first:
            [B, out_channels, H / 2**s, W / 2**s].
        """
        x = features[4]
        by_level: dict[int, Tensor] = {}
        for stage, level in zip(self.stages, range(4, -1, -1)):
            x = stage(x, features[level - 1] if level > 0 else None)
            by_level[level] = x
        return [head(by_level[s]) for head, s in zip(self.heads, self.scales)]
