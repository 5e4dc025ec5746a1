"""Depth image -> 3-D points in the camera's optical frame, and the PointCloud2 memory layout.

Pure numpy. The optical frame is REP 103's ``*_optical_frame``: x right, y down, z forward, metres.
A pixel (u, v) with depth z (distance along the optical axis, as in REP 118 depth images) maps to

    x = (u - cx) / fx * z,   y = (v - cy) / fy * z

with fx, fy, cx, cy from the projection matrix P of the published camera_info: exactly what
``depth_image_proc``'s ``point_cloud_xyz`` computes (``image_geometry``'s ``fx()`` etc. read P;
skew and Tx are ignored there too), so both clouds agree. The depth lies on the rectified grid
(the node expects a rectified input image); distortion plays no part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# sensor_msgs/PointField datatypes (constants of the message definition).
POINTFIELD_FLOAT32 = 7


@dataclass(frozen=True)
class PointCloud:
    """Points ready for a PointCloud2 message.

    Attributes
    ----------
    points:
        Structured array of shape [height, width] with float32 fields ``x, y, z`` and, when
        colour was requested, ``rgb`` (see :func:`pack_rgb`). Organised clouds keep NaN points.
    is_dense:
        True when no point is NaN.
    """

    points: np.ndarray
    is_dense: bool

    @property
    def height(self) -> int:
        return int(self.points.shape[0])

    @property
    def width(self) -> int:
        return int(self.points.shape[1])


def point_dtype(with_rgb: bool) -> np.dtype:
    """Little-endian packed point layout: x, y, z float32 (+ rgb float32), 12 or 16 bytes."""
    names = ["x", "y", "z"] + (["rgb"] if with_rgb else [])
    return np.dtype({"names": names, "formats": ["<f4"] * len(names), "offsets": [0, 4, 8, 12][: len(names)]})


def pointfield_layout(with_rgb: bool) -> list[tuple[str, int, int, int]]:
    """(name, offset, datatype, count) of each PointCloud2 field for :func:`point_dtype`."""
    dtype = point_dtype(with_rgb)
    return [(name, dtype.fields[name][1], POINTFIELD_FLOAT32, 1) for name in dtype.names]


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] uint8 RGB -> [...] float32 whose bits are 0x00RRGGBB, the PCL/RViz convention."""
    rgb = np.asarray(rgb, dtype=np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return packed.astype("<u4").view("<f4")


def backproject(
    depth_m: np.ndarray,
    P: np.ndarray,
    stride: int = 1,
    organized: bool = False,
    rgb: np.ndarray | None = None,
) -> PointCloud:
    """Back-project a depth image to points.

    Parameters
    ----------
    depth_m:
        [H, W] float32 depth in metres along the optical axis; NaN, inf and values <= 0 are
        invalid.
    P:
        [3, 4] projection matrix (or [3, 3] camera matrix) for exactly this [H, W] resolution;
        only fx = P[0, 0], fy = P[1, 1], cx = P[0, 2], cy = P[1, 2] are used.
    stride:
        Keep every ``stride``-th pixel in both directions, starting at (0, 0).
    organized:
        True: an organised cloud [ceil(H/stride), ceil(W/stride)] with NaN for invalid pixels;
        False: one row of only the valid points (``is_dense``).
    rgb:
        Optional [H, W, 3] uint8 colours, packed into an ``rgb`` field.

    Returns
    -------
    PointCloud
    """
    if depth_m.ndim != 2:
        raise ValueError(f"depth must be [H, W], got {depth_m.shape}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if rgb is not None and rgb.shape[:2] != depth_m.shape:
        raise ValueError(f"rgb {rgb.shape} does not match depth {depth_m.shape}")
    fx, cx = float(P[0, 0]), float(P[0, 2])
    fy, cy = float(P[1, 1]), float(P[1, 2])
    z = np.asarray(depth_m[::stride, ::stride], dtype=np.float32)
    v = np.arange(0, depth_m.shape[0], stride, dtype=np.float32)[:, None]
    u = np.arange(0, depth_m.shape[1], stride, dtype=np.float32)[None, :]
    valid = np.isfinite(z) & (z > 0)
    y_norm = (v - cy) / fy
    x_norm = (u - cx) / fx
    points = np.empty(z.shape, dtype=point_dtype(rgb is not None))
    z_valid = np.where(valid, z, np.float32(np.nan))
    points["x"] = x_norm * z_valid
    points["y"] = y_norm * z_valid
    points["z"] = z_valid
    if rgb is not None:
        points["rgb"] = pack_rgb(rgb[::stride, ::stride])
    if organized:
        return PointCloud(points, bool(valid.all()))
    return PointCloud(points[valid][None, :], True)
