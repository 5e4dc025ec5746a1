"""Typed configuration of the network, shared by training, export and the runtime."""

from __future__ import annotations

from dataclasses import dataclass

from gam_depth_ros.classes import NUM_CLASSES


@dataclass(frozen=True)
class ModelConfig:
    """What is needed to rebuild the network and interpret its output."""

    num_classes: int = NUM_CLASSES  # semantic classes of the segmentation head (NYU-40)
    min_depth: float = 0.1  # depth at disparity 1, in network units (metres for NYU scale)
    max_depth: float = 10.0  # depth at disparity 0
    height: int = 288  # network input height, multiple of 32 (paper: 288)
    width: int = 384  # network input width, multiple of 32 (paper: 384)
    depth_scale: float = 1.0  # metres per network depth unit (relative depth -> metres)
    decoder_padding: str = "reflect"  # "reflect" (the paper) or "zero" (faster on CPU, see benchmarks)
    decoder_activation: str = "elu"  # "elu" (the paper) or "relu" (faster on CPU)
    base_channels: int = 64  # encoder width: 64 = ResNet-18 (the paper), 32 = compact (1/4 parameters)

    def __post_init__(self) -> None:
        if not 0 < self.min_depth < self.max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {self.min_depth}, {self.max_depth}")
        if self.height % 32 or self.width % 32 or min(self.height, self.width) < 64:
            raise ValueError(f"height and width must be multiples of 32, at least 64, got {self.height}x{self.width}")
        if self.num_classes < 1 or self.num_classes > 255:
            raise ValueError(f"num_classes must be in 1..255, got {self.num_classes}")
        if self.decoder_padding not in ("reflect", "zero"):
            raise ValueError(f"decoder_padding must be 'reflect' or 'zero', got {self.decoder_padding!r}")
        if self.decoder_activation not in ("elu", "relu"):
            raise ValueError(f"decoder_activation must be 'elu' or 'relu', got {self.decoder_activation!r}")
        if self.base_channels < 16 or self.base_channels % 16:
            raise ValueError(f"base_channels must be a positive multiple of 16, got {self.base_channels}")
        if self.depth_scale <= 0:
            raise ValueError(f"depth_scale must be positive, got {self.depth_scale}")
