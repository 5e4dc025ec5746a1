"""Lens undistortion (Brown-Conrady / OpenCV ``plumb_bob``) with torch ``grid_sample``, no OpenCV.

For every pixel (u, v) of the undistorted output (same camera matrix ``K`` as the input, like
OpenCV's ``undistort`` without a new camera matrix) the normalised ray x = (u - cx) / fx,
y = (v - cy) / fy is distorted with

    r2 = x^2 + y^2, radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3
    xd = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
    yd = y radial + p1 (r2 + 2 y^2) + 2 p2 x y

and the input is sampled bilinearly at (fx xd + cx, fy yd + cy); pixels that fall outside the
input are black. A crop of the output (pixels per side) is computed directly, so cropping costs
nothing extra.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

#: Kinect RGB camera of NYUv2 (the NYU toolbox's ``camera_params.m``), at 640 x 480.
NYU_RGB_INTRINSICS = (5.1885790117450188e02, 5.1946961112127485e02, 3.2558244941119034e02, 2.5373616633400465e02)
#: Its distortion coefficients k1, k2, p1, p2, k3.
NYU_RGB_DISTORTION = (
    2.0796615318809061e-01, -5.8613825163911781e-01, 7.2231363135888329e-04, 1.0479627195765181e-03,
    4.9856986684705107e-01,
)  # fmt: skip


def distort_normalised(x: np.ndarray, y: np.ndarray, dist: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Apply the plumb_bob model to normalised coordinates ``x, y`` (any equal shapes).

    ``dist`` is (k1, k2, p1, p2[, k3]); missing k3 is 0.
    """
    k1, k2, p1, p2 = (float(v) for v in dist[:4])
    k3 = float(dist[4]) if len(dist) > 4 else 0.0
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return xd, yd


class Undistorter:
    """Undistort (and crop) images of one camera; the sampling grid is built once.

    Parameters
    ----------
    intrinsics:
        (fx, fy, cx, cy) in pixels of the input images.
    distortion:
        (k1, k2, p1, p2[, k3]).
    width, height:
        Input image size the intrinsics refer to.
    crop:
        Pixels removed from every side of the undistorted image.
    """

    def __init__(
        self, intrinsics: Sequence[float], distortion: Sequence[float], width: int, height: int, crop: int = 0
    ) -> None:
        if len(distortion) not in (4, 5):
            raise ValueError(f"distortion needs 4 or 5 coefficients (k1, k2, p1, p2[, k3]), got {len(distortion)}")
        if not 0 <= 2 * crop < min(width, height):
            raise ValueError(f"crop {crop} too large for {width}x{height}")
        self.width, self.height, self.crop = int(width), int(height), int(crop)
        fx, fy, cx, cy = (float(v) for v in intrinsics)
        u, v = np.meshgrid(
            np.arange(crop, width - crop, dtype=np.float64), np.arange(crop, height - crop, dtype=np.float64)
        )
        xd, yd = distort_normalised((u - cx) / fx, (v - cy) / fy, distortion)
        src_u, src_v = fx * xd + cx, fy * yd + cy
        # grid_sample with align_corners=True: -1 and +1 are the centres of the first and last pixel.
        grid = np.stack([2.0 * src_u / (width - 1) - 1.0, 2.0 * src_v / (height - 1) - 1.0], axis=-1)
        self.grid = torch.from_numpy(grid.astype(np.float32)).unsqueeze(0)  # [1,H',W',2]

    @property
    def output_size(self) -> tuple[int, int]:
        """(height, width) of the undistorted, cropped output."""
        return self.height - 2 * self.crop, self.width - 2 * self.crop

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Undistort ``[H,W,3]`` or ``[H,W]`` uint8 (bilinear, rounded) at the size given at construction."""
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"undistortion set up for {self.width}x{self.height}, got {image.shape[1]}x{image.shape[0]}"
            )
        grey = image.ndim == 2
        x = torch.from_numpy(np.array(image, dtype=np.float32))  # a writable float copy
        x = x.unsqueeze(0).unsqueeze(0) if grey else x.permute(2, 0, 1).unsqueeze(0)
        out = F.grid_sample(x, self.grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]
        out = out.round_().clamp_(0, 255).to(torch.uint8)
        return out[0].numpy() if grey else out.permute(1, 2, 0).contiguous().numpy()
