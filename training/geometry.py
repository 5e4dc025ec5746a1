"""Pinhole camera geometry for view synthesis: pure functions, any batch size.

Conventions
-----------
* Camera optical frame: x right, y down, z forward. Pixel (u, v) is column u, row v; pixel
  centres sit at integer coordinates (u = 0 is the centre of the first column).
* ``K`` and ``inv_K`` are homogeneous 4x4 intrinsics ``[N,4,4]`` (top-left 3x3 is the pinhole
  matrix in pixels), as in :mod:`training.data.sample`.
* ``T_b_a`` ``[N,4,4]`` is a rigid transform that maps points expressed in frame ``a`` into frame
  ``b``: ``x_b = T_b_a @ x_a``. Poses predicted by the pose network are ``T_source_target``.
* Leading batch size N is never stored anywhere; tensors of size 1 broadcast where noted.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

_SMALL_ANGLE_SQ = 1e-8  # below this squared angle the rotation uses its Taylor expansion


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """Homogeneous pixel coordinates ``[3, H*W]`` (rows u, v, 1), row-major over the image."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype), torch.arange(width, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)])


def pixel_rays(inv_K: Tensor, height: int, width: int) -> Tensor:
    """Viewing rays with z = 1 for every pixel.

    Parameters
    ----------
    inv_K:
        ``[...,4,4]`` inverse intrinsics (any leading dimensions, e.g. ``[N,4,4]``).

    Returns
    -------
    Tensor
        ``[...,3,H,W]`` camera-frame ray (x/z, y/z, 1) through each pixel centre.
    """
    grid = pixel_grid(height, width, inv_K.device, inv_K.dtype)
    rays = inv_K[..., :3, :3] @ grid
    return rays.unflatten(-1, (height, width))


def backproject(depth: Tensor, inv_K: Tensor) -> Tensor:
    """Lift a depth map to 3D points in its own camera frame.

    Parameters
    ----------
    depth:
        ``[N,1,H,W]`` z-depth (camera-frame z of each pixel's point), any unit.
    inv_K:
        ``[N,4,4]`` inverse intrinsics of the depth map's camera (leading dimensions broadcast
        against ``depth``'s, so N may be 1).

    Returns
    -------
    Tensor
        ``[N,3,H,W]`` points (x, y, z) in the same unit as ``depth``.
    """
    height, width = depth.shape[-2:]
    return pixel_rays(inv_K, height, width) * depth


def project(points: Tensor, K: Tensor, T_source_target: Tensor, eps: float = 1e-7) -> Tensor:
    """Project target-frame points into a source camera.

    Leading dimensions broadcast: points ``[B,1,3,H,W]`` with ``T_source_target`` ``[B,S,4,4]``
    and ``K`` ``[B,1,4,4]`` project one depth map into S sources at once (``[B,S,H,W,2]``).

    Parameters
    ----------
    points:
        ``[N,3,H,W]`` points in the target camera frame.
    K:
        ``[N,4,4]`` intrinsics of the source camera.
    T_source_target:
        ``[N,4,4]`` transform from the target frame to the source frame.
    eps:
        Floor of the projected depth (points behind the camera project far away, not to NaN).

    Returns
    -------
    Tensor
        ``[N,H,W,2]`` source pixel coordinates (u, v) of every target pixel.
    """
    height, width = points.shape[-2:]
    P = K[..., :3, :3] @ T_source_target[..., :3, :]  # [...,3,4]
    cam = P[..., :3] @ points.flatten(-2) + P[..., 3:]  # [...,3,H*W]
    pix = cam[..., :2, :] / cam[..., 2:3, :].clamp(min=eps)
    return pix.unflatten(-1, (height, width)).movedim(-3, -1)


def pixels_to_grid(pixels: Tensor, height: int, width: int) -> Tensor:
    """Pixel coordinates ``[N,H',W',2]`` -> ``grid_sample`` coordinates in [-1, 1] (align_corners=True)."""
    scale = pixels.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    return pixels * scale - 1.0


def warp(source: Tensor, depth: Tensor, K: Tensor, inv_K: Tensor, T_source_target: Tensor) -> Tensor:
    """Synthesise the target view by sampling the source image at the reprojected target pixels.

    Parameters
    ----------
    source:
        ``[N,C,H,W]`` source image (any channels).
    depth:
        ``[N,1,H,W]`` target depth.
    K, inv_K:
        ``[N,4,4]`` intrinsics of both cameras (same camera) and their inverse.
    T_source_target:
        ``[N,4,4]`` target -> source transform.

    Returns
    -------
    Tensor
        ``[N,C,H,W]`` source resampled into the target view (bilinear, border padding).
    """
    return sample(source, project(backproject(depth, inv_K), K, T_source_target))


def sample(source: Tensor, pixels: Tensor) -> Tensor:
    """Bilinear sampling of ``source [N,C,H,W]`` at pixel coordinates ``[N,H',W',2]`` (border padding)."""
    height, width = source.shape[-2:]
    grid = pixels_to_grid(pixels, height, width).to(source.dtype)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=True)


def skew(v: Tensor) -> Tensor:
    """Cross-product matrices ``[N,3,3]`` of vectors ``[N,3]`` (skew(a) @ b = a x b)."""
    zero = torch.zeros_like(v[:, 0])
    x, y, z = v.unbind(-1)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).view(-1, 3, 3)


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rodrigues' formula: rotation vectors ``[N,3]`` (radians) -> rotation matrices ``[N,3,3]``.

    Uses the Taylor expansion near zero angle so values and gradients stay finite at identity.
    """
    theta_sq = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]  # [N,1,1]
    small = theta_sq < _SMALL_ANGLE_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = safe_sq.sqrt()
    a = torch.where(small, 1.0 - theta_sq / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta_sq / 24.0, (1.0 - torch.cos(theta)) / safe_sq)
    A = skew(axis_angle)
    eye = torch.eye(3, device=axis_angle.device, dtype=axis_angle.dtype).expand_as(A)
    return eye + a * A + b * (A @ A)


def matrix_to_axis_angle(R: Tensor) -> Tensor:
    """Rotation matrices ``[N,3,3]`` -> rotation vectors ``[N,3]`` (angles in [0, pi); inverse of Rodrigues)."""
    cos = ((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0).clamp(-1.0, 1.0)
    theta = torch.acos(cos)
    vee = torch.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], dim=-1)
    sin = torch.sin(theta)
    factor = torch.where(sin.abs() < 1e-6, 0.5 + theta**2 / 12.0, theta / (2.0 * sin.clamp(min=1e-12)))
    return vee * factor[:, None]


def rigid(R: Tensor, t: Tensor) -> Tensor:
    """Homogeneous transforms ``[N,4,4]`` = ``[[R, t], [0, 1]]`` from ``R [N,3,3]`` and ``t [N,3]``."""
    top = torch.cat([R, t.unsqueeze(-1)], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def with_rotation(T: Tensor, T_rotation: Tensor, use: Tensor) -> Tensor:
    """``T [...,4,4]`` with its rotation taken from ``T_rotation [...,4,4]`` where ``use [...]`` is true.

    The translations stay ``T``'s: ``[[R_rotation, t], [0, 1]]`` (rotate by the other estimate, then
    translate as ``T`` does). Gradients reach ``T``'s rotation only where ``use`` is false.
    """
    R = torch.where(use[..., None, None], T_rotation[..., :3, :3].to(T.dtype), T[..., :3, :3])
    return rigid(R, T[..., :3, 3])


def pose_vector_to_matrix(axis_angle: Tensor, translation: Tensor) -> Tensor:
    """Rigid transforms ``[N,4,4]`` from rotation vectors ``[N,3]`` (radians) and translations ``[N,3]``.

    The result is ``[[R, t], [0, 1]]``: it rotates, then translates.
    """
    return rigid(axis_angle_to_matrix(axis_angle), translation)


def matrix_to_pose_vector(T: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pose_vector_to_matrix`: ``[N,4,4]`` -> (axis_angle ``[N,3]``, translation ``[N,3]``)."""
    return matrix_to_axis_angle(T[:, :3, :3]), T[:, :3, 3]


def compose(T_c_b: Tensor, T_b_a: Tensor) -> Tensor:
    """``T_c_a = T_c_b @ T_b_a`` for ``[N,4,4]`` transforms (apply ``T_b_a`` first)."""
    return T_c_b @ T_b_a


def invert(T_b_a: Tensor) -> Tensor:
    """Rigid inverse ``T_a_b`` of ``[N,4,4]`` transforms (R^T, -R^T t; no general matrix inverse)."""
    R_t = T_b_a[..., :3, :3].transpose(-1, -2)
    return rigid(R_t, -(R_t @ T_b_a[..., :3, 3:]).squeeze(-1))
