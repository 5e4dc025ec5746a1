"""Image pre-processing shared by every backend and by training: RGB uint8 -> network tensor.

Pure numpy + OpenCV (:mod:`gam_depth_ros.image_resize`), so it runs on a robot without torch.
"""

from __future__ import annotations

import numpy as np

from gam_depth_ros.image_resize import resize_image


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Return an [H, W, 3] uint8 RGB view or copy of ``image``.

    Accepts [H, W] or [H, W, 1] grey (replicated to three channels), [H, W, 3] RGB and
    [H, W, 4] RGBA (alpha dropped). Non-contiguous arrays (crops, flipped views) are fine.

    Raises
    ------
    ValueError
        For other shapes or dtypes, or an empty image.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an image [H,W], [H,W,1], [H,W,3] or [H,W,4], got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"empty image {image.shape}")
    return image


def resize_rgb(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an [H, W, 3] uint8 image: area filter when shrinking, else bilinear (see image_resize)."""
    return resize_image(rgb, height, width)


def to_network_input(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Prepare one image for the network.

    Parameters
    ----------
    image:
        Any layout :func:`as_rgb` accepts, uint8.
    height, width:
        Network input size.

    Returns
    -------
    np.ndarray
        [1, 3, height, width] float32 RGB in [0, 1], C-contiguous. ImageNet normalisation is
        inside the network, so none is applied here.
    """
    rgb = resize_rgb(as_rgb(image), height, width)
    chw = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)
    chw *= 1.0 / 255.0
    return chw[None]
