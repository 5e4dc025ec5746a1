"""The GAM-Depth network: a shared ResNet-18 encoder with a depth and a semantic decoder."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gam_depth_ros.classes import NUM_CLASSES
from gam_depth_ros.networks.decoder import DECODER_CHANNELS, UNetDecoder
from gam_depth_ros.networks.resnet import ResNetEncoder

#: Input height and width must be multiples of this (five stride-2 stages).
SIZE_MULTIPLE = 32


class GamDepthNet(nn.Module):
    """Depth and semantics from one RGB image through a shared encoder.

    Parameters
    ----------
    num_classes:
        Semantic classes (NYU-40 by default).
    depth_scales:
        Disparity output scales of :meth:`forward_multiscale` (training uses 0..3).
    decoder_padding, decoder_activation:
        ``"reflect"``/``"elu"`` (the paper) or ``"zero"``/``"relu"`` (faster on CPU); see
        :class:`UNetDecoder`.
    base_channels:
        Encoder width (64 = ResNet-18, the paper). Decoder channels scale with it: 32 gives the
        compact variant (encoder 32..256, decoders 8..128 channels, about 1/4 of the parameters).
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        depth_scales: tuple[int, ...] = (0,),
        decoder_padding: str = "reflect",
        decoder_activation: str = "elu",
        base_channels: int = 64,
    ):
        super().__init__()
        self.encoder = ResNetEncoder(in_images=1, base_channels=base_channels)
        decoder_channels = tuple(c * base_channels // 64 for c in DECODER_CHANNELS)
        variant = {"padding": decoder_padding, "activation": decoder_activation, "channels": decoder_channels}
        self.depth_decoder = UNetDecoder(self.encoder.channels, 1, depth_scales, **variant)
        self.semantic_decoder = UNetDecoder(self.encoder.channels, num_classes, (0,), **variant)

    @classmethod
    def from_config(cls, config, depth_scales: tuple[int, ...] = (0,)) -> GamDepthNet:
        """Build the network a :class:`~gam_depth_ros.model_config.ModelConfig` describes."""
        return cls(config.num_classes, depth_scales, config.decoder_padding, config.decoder_activation,
                   config.base_channels)

    def forward_multiscale(self, image: Tensor) -> tuple[list[Tensor], Tensor]:
        """Disparity at every configured scale and semantic logits at full resolution.

        Parameters
        ----------
        image:
            [B, 3, H, W] float RGB in [0, 1]; H, W multiples of 32, at least 64.

        Returns
        -------
        disparities:
            Sigmoid disparities in (0, 1), one per scale s: [B, 1, H / 2**s, W / 2**s].
        semantic_logits:
            [B, num_classes, H, W] unnormalised class scores.
        """
        if not torch.jit.is_tracing():  # shapes are static in an export; skip the Python checks
            _check_size(image)
        features = self.encoder(image)
        disparities = [torch.sigmoid(d) for d in self.depth_decoder(features)]
        semantic_logits = self.semantic_decoder(features)[0]
        return disparities, semantic_logits

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Full-resolution outputs.

        Parameters
        ----------
        image:
            [B, 3, H, W] float RGB in [0, 1]; H, W multiples of 32, at least 64.

        Returns
        -------
        disparity:
            [B, 1, H, W] sigmoid disparity in (0, 1); see :func:`disparity_to_depth`.
        semantic_logits:
            [B, num_classes, H, W].
        """
        disparities, semantic_logits = self.forward_multiscale(image)
        return disparities[0], semantic_logits


def _check_size(image: Tensor) -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected image [B,3,H,W], got {tuple(image.shape)}")
    height, width = image.shape[-2:]
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or min(height, width) < 2 * SIZE_MULTIPLE:
        # The coarsest features must be at least 2x2 for the decoder's reflection padding.
        raise ValueError(f"image size {height}x{width} must be a multiple of {SIZE_MULTIPLE}, at least 64")
