"""ResNet-18 encoder in plain torch, with torchvision-compatible state-dict keys.

PyPI's torchvision does not import beside the pinned CPU torch, so the encoder is written here.
Parameter and buffer names match ``torchvision.models.resnet18`` exactly (``conv1``, ``bn1``,
``layer1.0.conv1`` ... ``layer4.1.bn2``, ``layerN.0.downsample.{0,1}``), minus the classifier
``fc``, so ImageNet weights saved from torchvision load from a local file with
:func:`load_imagenet_weights`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Channels of the five feature levels, finest first (strides 2, 4, 8, 16, 32).
RESNET18_CHANNELS = (64, 64, 128, 256, 512)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (torchvision's ``BasicBlock`` layout)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _make_layer(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels)
    )


class ResNetEncoder(nn.Module):
    """ResNet-18 feature extractor with ImageNet normalisation inside.

    Parameters
    ----------
    in_images:
        Number of RGB images stacked along channels (1 for depth, 2 for the pose encoder, whose
        first convolution then takes 6 channels).
    base_channels:
        Width of the first stage; the stages have (b, b, 2b, 4b, 8b) channels. 64 is ResNet-18 (the
        paper; ImageNet weights load only into this width); 32 is the compact variant with about a
        quarter of the parameters and FLOPs.
    """

    def __init__(self, in_images: int = 1, base_channels: int = 64) -> None:
        super().__init__()
        if base_channels < 8 or base_channels % 8:
            raise ValueError(f"base_channels must be a positive multiple of 8, got {base_channels}")
        self.in_images = in_images
        b = base_channels
        #: Channels of the five feature levels, finest first.
        self.channels = (b, b, 2 * b, 4 * b, 8 * b)
        mean = torch.tensor(IMAGENET_MEAN * in_images).view(1, -1, 1, 1)
        std = torch.tensor(IMAGENET_STD * in_images).view(1, -1, 1, 1)
        # Not persistent: the state dict must stay key-for-key equal to torchvision's.
        self.register_buffer("input_mean", mean, persistent=False)
        self.register_buffer("input_std", std, persistent=False)
        self.conv1 = nn.Conv2d(3 * in_images, b, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(b)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _make_layer(b, b, 1)
        self.layer2 = _make_layer(b, 2 * b, 2)
        self.layer3 = _make_layer(2 * b, 4 * b, 2)
        self.layer4 = _make_layer(4 * b, 8 * b, 2)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, image: Tensor) -> list[Tensor]:
        """Encode images.

        Parameters
        ----------
        image:
            [B, 3 * in_images, H, W] float in [0, 1], RGB; H and W multiples of 32.

        Returns
        -------
        list[Tensor]
            Five feature maps, finest first (``self.channels``; ResNet-18: 64, 64, 128, 256, 512):
            [B,c0,H/2,W/2], [B,c1,H/4,W/4], [B,c2,H/8,W/8], [B,c3,H/16,W/16], [B,c4,H/32,W/32].
        """
        x = (image - self.input_mean) / self.input_std
        f0 = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(f0))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return [f0, f1, f2, f3, f4]


def load_imagenet_weights(encoder: ResNetEncoder, path: str | Path) -> None:
    """Load torchvision ``resnet18`` ImageNet weights from a local file into ``encoder``.

    The classifier (``fc.*``) is dropped. For a multi-image encoder the first convolution's
    weights are repeated per image and divided by the image count, so the response to identical
    stacked images equals the single-image response.

    Raises
    ------
    ValueError
        If the file cannot be read or its keys or shapes do not match ResNet-18, naming the file.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load surfaces corrupt files as many exception types
        raise ValueError(f"{path}: cannot read ImageNet weights: {error}") from error
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if encoder.in_images > 1 and "conv1.weight" in state:
        state["conv1.weight"] = state["conv1.weight"].repeat(1, encoder.in_images, 1, 1)
        state["conv1.weight"] /= encoder.in_images
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path}: not a torchvision resnet18 state dict "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"{path}: {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)}"
            )
    encoder.load_state_dict(state)
