"""Pinhole intrinsics from sensor_msgs/CameraInfo, scaled to the resolution the node publishes.

Conventions (REP 104 / OpenCV): pixel (u, v) = (0, 0) is the centre of the top-left pixel, so an
image resized from W to W' pixels maps u to u' = (u + 0.5) * W'/W - 0.5. Scaling therefore gives

    fx' = fx * sx,   cx' = (cx + 0.5) * sx - 0.5,   fy' = fy * sy,   cy' = (cy + 0.5) * sy - 0.5

with sx = W'/W, sy = H'/H, which is exactly how the depth image is resampled (bilinear with
half-pixel centres). ``image_proc``'s resize node multiplies cx, cy by the scale without the half
pixel shift; the difference is below half an output pixel. The skew term scales by sx, the
projection matrix P the same way (its Tx, Ty columns by sx, sy), R and the distortion
coefficients D are unitless and unchanged. A region of interest and binning in the message are
applied first (the published info has none).

The node's input should be rectified (``image_rect`` from ``image_proc``, or a driver's rectified
stream), so its outputs lie on the rectified grid, whose intrinsics are the projection matrix P:
:meth:`CameraModel.rectified` gives that camera (K = P's left 3x3, R = identity, zero plumb_bob
distortion), as ``image_geometry`` and ``depth_image_proc`` read it. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


class CameraInfoError(ValueError):
    """A CameraInfo message cannot give usable intrinsics; the message says why."""


@dataclass(frozen=True)
class CameraModel:
    """Intrinsics of one image resolution.

    Attributes
    ----------
    width, height:
        Image size in pixels these intrinsics belong to.
    K:
        [3, 3] float64 camera matrix (fx, skew, cx; 0, fy, cy; 0, 0, 1), pixels.
    P:
        [3, 4] float64 projection matrix (rectified camera; Tx, Ty in pixels x metres).
    R:
        [3, 3] float64 rectification rotation.
    D:
        Distortion coefficients of ``distortion_model`` (unitless).
    distortion_model:
        e.g. ``plumb_bob``.
    """

    width: int
    height: int
    K: np.ndarray
    P: np.ndarray
    R: np.ndarray
    D: tuple[float, ...]
    distortion_model: str

    def same_aspect(self, width: int, height: int) -> bool:
        """Whether images of ``width`` x ``height`` show this camera's whole view resized (within a
        pixel), not a crop or another camera: only then may the intrinsics be scaled to them."""
        return abs(self.width * height - self.height * width) <= max(self.width, self.height)

    def rectified(self) -> CameraModel:
        """The camera of the rectified image: K = P[:, :3], R = I, D = 0 (plumb_bob), P unchanged.

        ``depth_image_proc`` and ``image_geometry`` take fx, fy, cx, cy from P for rectified images;
        publishing this model keeps every consumer on the same numbers, and the zero distortion
        tells rectifying consumers there is nothing left to undo.
        """
        return replace(self, K=self.P[:, :3].copy(), R=np.eye(3), D=(0.0,) * 5, distortion_model="plumb_bob")

    def scaled_to(self, width: int, height: int) -> CameraModel:
        """The same camera seen at ``width`` x ``height`` pixels (see the module docstring)."""
        if width <= 0 or height <= 0:
            raise ValueError(f"invalid output size {width}x{height}")
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        return replace(
            self, width=width, height=height, K=_scale_matrix(self.K, sx, sy), P=_scale_matrix(self.P, sx, sy)
        )


def _scale_matrix(matrix: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Scale the rows of K [3,3] or P [3,4] for an image resized by (sx, sy), half-pixel centres."""
    out = matrix.astype(np.float64).copy()
    out[0, :] *= sx
    out[1, :] *= sy
    # cx' = (cx + 0.5) sx - 0.5 written for a homogeneous row: add (0.5 sx - 0.5) times the last row.
    out[0, :] += (0.5 * sx - 0.5) * matrix[2, :]
    out[1, :] += (0.5 * sy - 0.5) * matrix[2, :]
    return out


def camera_model_from_values(
    width: int,
    height: int,
    k: list[float],
    p: list[float],
    r: list[float],
    d: list[float],
    distortion_model: str = "",
    binning: tuple[int, int] = (0, 0),
    roi: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> CameraModel:
    """Validated :class:`CameraModel` from CameraInfo field values.

    Parameters
    ----------
    width, height:
        Full sensor resolution of the calibration (``CameraInfo.width/height``).
    k, p, r, d:
        Row-major K (9 values), P (12), R (9) and the distortion coefficients. An all-zero P is
        replaced by [K | 0] and an all-zero R by the identity (some drivers leave them empty).
    binning:
        (binning_x, binning_y); 0 and 1 mean none.
    roi:
        (x_offset, y_offset, width, height); all zero means the full image.

    Raises
    ------
    CameraInfoError
        Zero or non-finite focal lengths, non-finite values, zero size, wrong array lengths.
    """
    if width <= 0 or height <= 0:
        raise CameraInfoError(f"camera_info has invalid size {width}x{height}")
    K = _matrix(k, (3, 3), "K")
    P = _matrix(p, (3, 4), "P") if any(p) else np.hstack([K, np.zeros((3, 1))])
    R = _matrix(r, (3, 3), "R") if any(r) else np.eye(3)
    for name, value in (("K", K), ("P", P)):
        if not (value[0, 0] > 0 and value[1, 1] > 0 and value[2, 2] == 1):
            raise CameraInfoError(f"camera_info {name} has no usable focal lengths: {value.ravel().tolist()}")
    D = tuple(float(v) for v in d)
    if not np.all(np.isfinite(D)):
        raise CameraInfoError(f"camera_info D has non-finite values: {D}")
    model = CameraModel(width, height, K, P, R, D, str(distortion_model))
    x_offset, y_offset, roi_width, roi_height = roi
    if roi_width > 0 and roi_height > 0:
        shift = np.array([[1.0, 0.0, -x_offset], [0.0, 1.0, -y_offset], [0.0, 0.0, 1.0]])
        model = replace(model, width=roi_width, height=roi_height, K=shift @ model.K, P=shift @ model.P)
    bin_x, bin_y = max(1, binning[0]), max(1, binning[1])
    if bin_x > 1 or bin_y > 1:
        model = model.scaled_to(model.width // bin_x, model.height // bin_y)
    return model


def _matrix(values, shape: tuple[int, int], name: str) -> np.ndarray:
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size != shape[0] * shape[1]:
        raise CameraInfoError(f"camera_info {name} has {flat.size} values, expected {shape[0] * shape[1]}")
    if not np.all(np.isfinite(flat)):
        raise CameraInfoError(f"camera_info {name} has non-finite values: {flat.tolist()}")
    return flat.reshape(shape)


def camera_model_from_msg(msg) -> CameraModel:
    """Validated :class:`CameraModel` from a sensor_msgs/CameraInfo (or any object with its fields)."""
    return camera_model_from_values(
        int(msg.width), int(msg.height), list(msg.k), list(msg.p), list(msg.r), list(msg.d),
        str(msg.distortion_model), (int(msg.binning_x), int(msg.binning_y)),
        (int(msg.roi.x_offset), int(msg.roi.y_offset), int(msg.roi.width), int(msg.roi.height)),
    )  # fmt: skip


def fill_camera_info_msg(msg, model: CameraModel):
    """Write ``model`` into a CameraInfo message (header untouched; no binning, no ROI); return it."""
    msg.width = model.width
    msg.height = model.height
    msg.distortion_model = model.distortion_model
    msg.d = [float(v) for v in model.D]
    msg.k = model.K.ravel().tolist()
    msg.r = model.R.ravel().tolist()
    msg.p = model.P.ravel().tolist()
    msg.binning_x = 0
    msg.binning_y = 0
    msg.roi.x_offset = msg.roi.y_offset = msg.roi.width = msg.roi.height = 0
    msg.roi.do_rectify = False
    return msg
