"""Image operations shared by the data loaders and the losses (torch, any batch size).

:func:`gradient_magnitude` is the one implementation of the gradient ``m`` that drives the
gradient-aware mask: the data loaders store it in each sample (``gradient``), and the tests check
the mask against it.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

#: ITU-R BT.601 luma weights (what OpenCV's RGB->GRAY uses).
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
#: Sigma of the 5x5 Gaussian blur: OpenCV's choice for ksize 5 with sigma 0 (0.3 * (5/2 - 1) + 0.8).
BLUR_SIGMA = 1.1


def rgb_to_gray(image: Tensor) -> Tensor:
    """Grey level on the 0..255 scale.

    Parameters
    ----------
    image:
        ``[B,3,H,W]`` RGB in [0, 1].

    Returns
    -------
    Tensor
        ``[B,1,H,W]`` luma x 255.
    """
    weights = image.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1) * 255.0
    return (image * weights).sum(1, keepdim=True)


def gaussian_kernel(size: int = 5, sigma: float = BLUR_SIGMA, dtype=torch.float32) -> Tensor:
    """Normalised 1-D Gaussian ``[size]``."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype)


def gaussian_blur(image: Tensor, size: int = 5, sigma: float = BLUR_SIGMA) -> Tensor:
    """Separable Gaussian blur of ``[B,C,H,W]`` with mirrored borders (OpenCV's BORDER_REFLECT_101)."""
    channels = image.shape[1]
    k = gaussian_kernel(size, sigma, image.dtype).to(image.device)
    pad = size // 2
    x = F.pad(image, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, size).expand(channels, 1, 1, size), groups=channels)
    return F.conv2d(x, k.view(1, 1, size, 1).expand(channels, 1, size, 1), groups=channels)


def sobel_magnitude(image: Tensor) -> Tensor:
    """3x3 Sobel gradient magnitude sqrt(gx^2 + gy^2) of ``[B,1,H,W]`` (unnormalised kernels, mirrored borders)."""
    kx = image.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.t()]).unsqueeze(1)  # [2,1,3,3]: d/dx, d/dy
    g = F.conv2d(F.pad(image, (1, 1, 1, 1), mode="reflect"), kernels)
    return g.pow(2).sum(1, keepdim=True).sqrt()


def gradient_magnitude(image: Tensor) -> Tensor:
    """The mask's gradient ``m``: Sobel magnitude of the 5x5-Gaussian-blurred grey image, 0..255 scale.

    Parameters
    ----------
    image:
        ``[B,3,H,W]`` or ``[3,H,W]`` RGB in [0, 1] (float).

    Returns
    -------
    Tensor
        ``[B,1,H,W]`` (or ``[1,H,W]``) float32; 0 on flat regions, up to 4 x 255 x sqrt(2) in theory
        (about 500-700 at strong edges after the blur).
    """
    single = image.dim() == 3
    x = image.unsqueeze(0) if single else image
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an RGB image [B,3,H,W] or [3,H,W], got {tuple(image.shape)}")
    m = sobel_magnitude(gaussian_blur(rgb_to_gray(x.float())))
    return m[0] if single else m


def resize_area(image: Tensor, scale: int) -> Tensor:
    """Downsample ``[B,C,H,W]`` by ``2**scale`` with area averaging (identity for scale 0)."""
    if scale == 0:
        return image
    factor = 2**scale
    return F.avg_pool2d(image, factor) if image.shape[-1] % factor == 0 else F.interpolate(
        image, scale_factor=1.0 / factor, mode="area"
    )

