"""Colour jitter for the network inputs (torch, same jitter for every frame of a sample), crop windows.

The jitter follows the usual photometric recipe: brightness, contrast and saturation factors drawn
uniformly from ``1 +- range``, a hue shift from ``+- hue`` (fraction of the colour circle), applied
in a random order. Random numbers come from torch's global generator, which the trainer seeds per
sample, so a sample's augmentation is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from training.image_ops import GRAY_WEIGHTS

OPERATIONS = ("brightness", "contrast", "saturation", "hue")


@dataclass(frozen=True)
class JitterParams:
    """One draw of the colour jitter."""

    brightness: float  # multiplicative factor
    contrast: float  # blend factor towards the mean grey
    saturation: float  # blend factor towards the grey image
    hue: float  # shift, fraction of the colour circle
    order: tuple[int, ...]  # indices into OPERATIONS


def draw_jitter(brightness: float, contrast: float, saturation: float, hue: float) -> JitterParams:
    """Draw factors from ``1 +- brightness`` etc. and a hue shift from ``+- hue`` (torch's global RNG)."""
    u = torch.rand(4, dtype=torch.float64).tolist()
    order = tuple(int(i) for i in torch.randperm(4))
    return JitterParams(
        brightness=1.0 + brightness * (2.0 * u[0] - 1.0),
        contrast=1.0 + contrast * (2.0 * u[1] - 1.0),
        saturation=1.0 + saturation * (2.0 * u[2] - 1.0),
        hue=hue * (2.0 * u[3] - 1.0),
        order=order,
    )


def draw_crop_window(height: int, width: int, crop_height: int, crop_width: int) -> tuple[int, int]:
    """Top-left corner ``(y0, x0)`` of a ``crop_height x crop_width`` window drawn uniformly inside
    ``height x width`` (torch's global RNG, like the jitter)."""
    if crop_height > height or crop_width > width:
        raise ValueError(f"augment crop {crop_height}x{crop_width} (height x width) is larger than the frames "
                         f"({height}x{width}); set it at most model.height x model.width")
    y0 = int(torch.randint(height - crop_height + 1, ()))
    x0 = int(torch.randint(width - crop_width + 1, ()))
    return y0, x0


def _grey(images: Tensor) -> Tensor:
    weights = images.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def rgb_to_hsv(images: Tensor) -> Tensor:
    """``[N,3,H,W]`` RGB in [0,1] -> HSV in [0,1] (hue as a fraction of the circle)."""
    r, g, b = images.unbind(1)
    maxc, _ = images.max(1)
    minc, _ = images.min(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        maxc == r, ((g - b) / safe) % 6.0, torch.where(maxc == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    hue = torch.where(delta > 0, hue / 6.0, torch.zeros_like(hue)) % 1.0
    sat = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack([hue, sat, maxc], 1)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = hsv.unbind(1)
    k = torch.stack([(5.0 + h * 6.0) % 6.0, (3.0 + h * 6.0) % 6.0, (1.0 + h * 6.0) % 6.0], 1)
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def apply_jitter(images: Tensor, params: JitterParams) -> Tensor:
    """Jitter ``[N,3,H,W]`` RGB in [0,1] (every image with the same params); returns a new tensor in [0,1].

    Contrast blends each image towards its own mean grey level.
    """
    out = images
    for index in params.order:
        op = OPERATIONS[index]
        if op == "brightness":
            out = (out * params.brightness).clamp(0.0, 1.0)
        elif op == "contrast":
            mean = _grey(out).mean(dim=(1, 2, 3), keepdim=True)
            out = (mean + params.contrast * (out - mean)).clamp(0.0, 1.0)
        elif op == "saturation":
            grey = _grey(out)
            out = (grey + params.saturation * (out - grey)).clamp(0.0, 1.0)
        elif params.hue != 0.0:
            hsv = rgb_to_hsv(out)
            hsv = torch.stack([(hsv[:, 0] + params.hue) % 1.0, hsv[:, 1], hsv[:, 2]], 1)
            out = hsv_to_rgb(hsv).clamp(0.0, 1.0)
    return out.clone() if out is images else out
