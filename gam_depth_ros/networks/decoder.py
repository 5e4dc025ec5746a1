"""Monodepth2-style U-Net decoder, used for both the depth and the semantic head.

Written from the architecture description in the design reference: five up-sampling stages with
16, 32, 64, 128, 256 channels, ELU 3x3 convolutions with reflection padding, nearest x2
up-sampling and skip connections from the encoder. A constructor flag selects a faster variant
(zero padding, ReLU) for CPU deployment.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

DECODER_CHANNELS = (16, 32, 64, 128, 256)


PADDINGS = ("reflect", "zero")
ACTIVATIONS = ("elu", "relu")


class Conv3x3(nn.Module):
    """3x3 convolution keeping the size, with reflection (the paper) or zero padding.

    Reflection lets borders see mirrored content instead of zeros, avoiding dark-edge artefacts
    in the predicted depth. Zero padding is the fast variant: ONNX Runtime folds it into the
    convolution and keeps its blocked memory layout through the decoder (see docs/benchmarks.md).
    """

    def __init__(self, in_channels: int, out_channels: int, padding: str = "reflect") -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.pad = nn.ReflectionPad2d(1) if padding == "reflect" else nn.Identity()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=0 if padding == "reflect" else 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class ConvBlock(Conv3x3):
    """:class:`Conv3x3` followed by ELU (the paper) or ReLU (the fast variant)."""

    def __init__(self, in_channels: int, out_channels: int, padding: str = "reflect", activation: str = "elu"):
        super().__init__(in_channels, out_channels, padding)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = super().forward(x)
        return F.elu(x, inplace=True) if self.activation == "elu" else F.relu(x, inplace=True)


class UpStage(nn.Module):
    """One decoder stage: conv, nearest x2 up-sampling, concatenation with a skip, conv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, padding: str, activation: str):
        super().__init__()
        self.reduce = ConvBlock(in_channels, out_channels, padding, activation)
        self.fuse = ConvBlock(out_channels + skip_channels, out_channels, padding, activation)

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
    padding, activation:
        ``"reflect"``/``"elu"`` as in the paper (default), or ``"zero"``/``"relu"`` for the faster
        variant; weights have the same names and shapes either way.
    channels:
        Channels of the five decoder stages, finest first (the paper: 16, 32, 64, 128, 256).
    """

    def __init__(
        self,
        encoder_channels: tuple[int, ...],
        out_channels: int,
        scales: tuple[int, ...] = (0,),
        padding: str = "reflect",
        activation: str = "elu",
        channels: tuple[int, ...] = DECODER_CHANNELS,
    ) -> None:
        super().__init__()
        if len(encoder_channels) != 5 or len(channels) != 5:
            raise ValueError(f"expected 5 encoder and decoder levels, got {len(encoder_channels)} and {len(channels)}")
        if not scales or any(s not in range(4) for s in scales):
            raise ValueError(f"scales must be a non-empty subset of 0..3, got {scales}")
        self.scales = tuple(sorted(scales))
        stages = []
        for level in range(4, -1, -1):  # coarsest to finest
            in_ch = encoder_channels[4] if level == 4 else channels[level + 1]
            skip_ch = encoder_channels[level - 1] if level > 0 else 0
            stages.append(UpStage(in_ch, skip_ch, channels[level], padding, activation))
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(
            Conv3x3(channels[s], out_channels, padding) for s in self.scales
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
