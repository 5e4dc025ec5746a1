"""Building blocks shared by the data sources: file readers, resizing, the sample assembly.

Every source turns one sample into *prepared* frames (uint8 RGB already undistorted, cropped and
resized to the network size) plus the target's intrinsics, labels, depth and structure at that
size, and calls :func:`assemble_sample`, which applies the crop, flip and colour jitter and returns
the schema of :mod:`training.data.sample`.

Side files of a target frame are found by one rule: the source gives every sample a *key* (a
relative path without suffix, e.g. ``bedroom_0086/r-1315251252.453265-3131793654`` for NYUv2 raw
or the frame's file stem for a folder) and

- proxy labels live at ``<labels_dir>/<key>.png`` (uint8, NYU-40 ids 0..39, 255 = void), written
  by ``gam-depth-proxy-labels`` at the prepared frame's size before resizing (labels at the raw
  image size are accepted too and cropped like the image);
- precomputed structure lives at ``<structure_dir>/<key>.npz`` (``segments`` int32 [h,w], -1 =
  none; ``vanishing_directions`` float32 [3,3]), written by ``gam-depth-precompute`` at the
  network size.

A missing side file is not an error: the sample then has ``has_labels`` / ``has_structure`` false.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from gam_depth_ros.classes import NUM_CLASSES
from gam_depth_ros.inference.preprocessing import resize_rgb
from training.config import AugmentConfig
from training.data.augment import apply_jitter, draw_crop_window, draw_jitter
from training.data.errors import DataError  # defined there (torch-free); the sources import it from here
from training.data.sample import NUM_SCALES, VOID_LABEL
from training.image_ops import gradient_magnitude

LOG = logging.getLogger("training.data")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp")


class FrameDataset(Dataset):
    """What every training source offers besides samples: the target frame of each sample.

    ``gam-depth-proxy-labels`` and ``gam-depth-precompute`` iterate :meth:`target_frame` and write
    side files under :attr:`labels_dir` / :attr:`structure_dir` named by :meth:`sample_key`.
    """

    height: int  # network size
    width: int
    labels_dir: Path | None
    structure_dir: Path | None

    def sample_key(self, index: int) -> str:
        """Relative path without suffix naming sample ``index``'s side files."""
        raise NotImplementedError

    def target_frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The prepared target frame before resizing: ``[h,w,3]`` uint8 RGB and its ``[3,3]`` K in its pixels."""
        raise NotImplementedError

    def side_files_to_write(self, folder: Path, suffix: str, overwrite: bool) -> Iterator[tuple[int, Path]]:
        """``(index, folder/<key><suffix>)`` for the first sample of each distinct :meth:`sample_key` (samples
        share target frames), skipping keys whose file exists unless ``overwrite``."""
        seen: set[str] = set()
        for index in range(len(self)):
            key = self.sample_key(index)
            path = folder / (key + suffix)
            if key in seen or (path.exists() and not overwrite):
                continue
            seen.add(key)
            yield index, path


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as ``[H,W,3]`` uint8 RGB; any failure (missing, truncated, not an image) is a DataError."""
    try:
        with Image.open(path) as pil:
            pil.load()
            return np.asarray(pil.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as error:
        raise DataError(f"{path}: cannot read image: {error}") from error


def read_label_png(path: str | Path) -> np.ndarray:
    """Read a label image (8-bit grey or palette PNG) as ``[H,W]`` uint8 class ids."""
    try:
        with Image.open(path) as pil:
            pil.load()
            if pil.mode not in ("L", "P"):
                raise DataError(f"{path}: label images must be 8-bit grey or palette PNGs, got mode {pil.mode}")
            return np.asarray(pil)
    except (OSError, SyntaxError) as error:
        raise DataError(f"{path}: cannot read label image: {error}") from error


def read_depth(path: str | Path, png_scale: float = 1000.0) -> np.ndarray:
    """Ground-truth depth in metres ``[H,W]`` float32 (0 = invalid).

    ``.png``: 16-bit, divided by ``png_scale`` (millimetres by default); ``.npy``: metres as stored
    (non-finite and negative values become 0).
    """
    path = Path(path)
    try:
        if path.suffix == ".npy":
            depth = np.load(path).astype(np.float32)
        else:
            with Image.open(path) as pil:
                pil.load()
                if pil.mode not in ("I;16", "I;16B", "I", "I;16L"):
                    raise DataError(f"{path}: depth PNGs must be 16-bit (millimetres), got mode {pil.mode}")
                depth = np.asarray(pil).astype(np.float32) / float(png_scale)
    except (OSError, ValueError, SyntaxError) as error:
        raise DataError(f"{path}: cannot read depth: {error}") from error
    if depth.ndim != 2:
        raise DataError(f"{path}: depth must be a 2-D image, got shape {depth.shape}")
    depth[~np.isfinite(depth) | (depth < 0)] = 0.0
    return depth


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of ``[h,w]`` (any dtype; pixel-centre sampling, never blends values)."""
    h, w = array.shape[:2]
    if (h, w) == (height, width):
        return array
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return array[rows[:, None], cols[None, :]]


def crop_border(array: np.ndarray, crop: int) -> np.ndarray:
    """Remove ``crop`` pixels from every side of ``[H,W,...]``."""
    return array[crop: array.shape[0] - crop, crop: array.shape[1] - crop] if crop else array


def match_geometry(array: np.ndarray, raw_size: tuple[int, int], crop: int, path: str | Path, what: str) -> np.ndarray:
    """Bring a side image (labels, depth) to the prepared geometry before resizing.

    Accepted: the raw image size ``raw_size`` (H, W) - cropped like the image - or the prepared
    size (raw minus the crop on every side) as is.
    """
    prepared = (raw_size[0] - 2 * crop, raw_size[1] - 2 * crop)
    if array.shape[:2] == tuple(raw_size):
        return crop_border(array, crop)
    if array.shape[:2] == prepared:
        return array
    raise DataError(
        f"{path}: {what} is {array.shape[1]}x{array.shape[0]}, expected the image size "
        f"{raw_size[1]}x{raw_size[0]} or the cropped size {prepared[1]}x{prepared[0]}"
    )


def prepare_frame(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (already undistorted and cropped) ``[h,w,3]`` uint8 frame to the network size (runtime resize)."""
    return resize_rgb(rgb, height, width)


def scaled_intrinsics(K: np.ndarray, width: int, flip: bool = False, num_scales: int = NUM_SCALES) -> torch.Tensor:
    """``[S,4,4]`` homogeneous intrinsics per scale: fx, fy, cx, cy divided by ``2**s``.

    ``K`` is ``[3,3]`` in pixels of the network size (width ``width``). ``flip``: the intrinsics of
    the horizontally flipped images, ``cx_s -> W_s - 1 - cx_s`` at every scale (W_s = W / 2**s).

    Why ``W - 1``: pixel centres sit at integer coordinates (:mod:`training.geometry`), so the
    flip maps column u to ``W - 1 - u``. A point (x, y, z) projects to ``u = fx x / z + cx``; its
    mirror (-x, y, z) must land on ``W - 1 - u = fx (-x) / z + (W - 1 - cx)``, hence the new cx.
    (``W - cx``, the reference's expression, belongs to the pixel-corner convention and puts the
    principal point one pixel off here.)
    """
    K = np.asarray(K, dtype=np.float64)
    out = torch.zeros(num_scales, 4, 4, dtype=torch.float64)
    for s in range(num_scales):
        out[s, :3, :3] = torch.from_numpy(K)
        out[s, :2, :] /= 2**s
        if flip:
            out[s, 0, 2] = width / 2**s - 1.0 - out[s, 0, 2]
        out[s, 3, 3] = 1.0
    return out.float()


def resized_intrinsics(fx: float, fy: float, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    """``[3,3]`` pixel intrinsics after scaling the image by (sx, sy) (normalised-intrinsics convention)."""
    return np.array([[fx * sx, 0.0, cx * sx], [0.0, fy * sy, cy * sy], [0.0, 0.0, 1.0]])


@dataclass
class Structure:
    """Precomputed planar segments (network size) and dominant directions (camera frame, rows)."""

    segments: np.ndarray  # [H,W] int64, -1 = none
    vanishing_directions: np.ndarray  # [3,3] float32


def read_structure(path: Path, height: int, width: int) -> Structure | None:
    """Load ``<structure_dir>/<key>.npz`` (see module docstring) resized to the network size, or None if absent."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            segments = data["segments"].astype(np.int64)
            directions = data["vanishing_directions"].astype(np.float32)
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{path}: cannot read precomputed structure: {error}") from error
    if segments.ndim != 2 or directions.shape != (3, 3):
        raise DataError(f"{path}: expected segments [H,W] and vanishing_directions [3,3], got "
                        f"{segments.shape} and {directions.shape}")
    return Structure(resize_nearest(segments, height, width), directions)


def read_labels_for(path: Path, raw_size: tuple[int, int], crop: int, height: int, width: int) -> np.ndarray | None:
    """Proxy labels at the network size (nearest), or None when ``path`` does not exist.

    Ids outside 0..39 other than 255 are turned into void.
    """
    if not path.is_file():
        return None
    labels = match_geometry(read_label_png(path), raw_size, crop, path, "label image")
    labels = resize_nearest(labels, height, width).copy()
    labels[(labels >= NUM_CLASSES) & (labels != VOID_LABEL)] = VOID_LABEL  # unknown ids count as void
    return labels


def assemble_sample(
    frames: list[np.ndarray],
    K: np.ndarray,
    augment: AugmentConfig | None,
    labels: np.ndarray | None = None,
    depth_m: np.ndarray | None = None,
    structure: Structure | None = None,
    prior: tuple[np.ndarray, np.ndarray] | None = None,
    world_from_camera: np.ndarray | None = None,
    fitted_depth_m: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """The schema of :mod:`training.data.sample` from prepared frames.

    Parameters
    ----------
    frames:
        F frames ``[H,W,3]`` uint8 RGB at the network size, target first.
    K:
        ``[3,3]`` target intrinsics in pixels of the network size.
    augment:
        Crop, flip and colour-jitter settings; None = no augmentation (validation). With a crop set,
        every array and the sample's size are the window's.
    labels:
        ``[H,W]`` uint8 NYU-40 ids, 255 = void, or None.
    depth_m:
        ``[H,W]`` float32 metres, 0 = invalid, or None.
    structure:
        Precomputed segments and directions, or None.
    world_from_camera:
        ``[F,4,4]`` camera poses of the frames (``x_world = T @ x_cam``, optical axes), or None.
    fitted_depth_m:
        ``[H,W]`` float32 metres fitted to the view-synthesis objective (:mod:`training.fitted_depth`),
        0 = invalid, or None.
    prior:
        The two-view estimate (:func:`training.two_view.two_view_frame_poses`): ``[F,4,4]``
        ``T_frame_target`` and ``[F]`` found flags, or None.
    """
    if augment is not None and augment.crop_height > 0:
        y0, x0 = draw_crop_window(*frames[0].shape[:2], augment.crop_height, augment.crop_width)
        rows, cols = slice(y0, y0 + augment.crop_height), slice(x0, x0 + augment.crop_width)
        frames = [frame[rows, cols] for frame in frames]
        labels, depth_m, fitted_depth_m = (None if array is None else array[rows, cols]
                                           for array in (labels, depth_m, fitted_depth_m))
        if structure is not None:
            structure = replace(structure, segments=structure.segments[rows, cols])
        K = K.copy()
        K[0, 2] -= x0  # the window's pixel (0, 0) is the frame's (x0, y0)
        K[1, 2] -= y0
    height, width = frames[0].shape[:2]
    images = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    flip = augment is not None and augment.flip_p > 0 and float(torch.rand(())) < augment.flip_p
    jitter = augment is not None and augment.color_jitter_p > 0 and float(torch.rand(())) < augment.color_jitter_p
    has_labels = labels is not None
    labels_t = torch.from_numpy(labels.astype(np.int64)) if has_labels else torch.full((height, width), VOID_LABEL)
    has_depth = depth_m is not None and bool((depth_m > 0).any())
    depth_t = torch.from_numpy(depth_m.astype(np.float32))[None] if has_depth else torch.zeros(1, height, width)
    has_fitted = fitted_depth_m is not None
    fitted_t = (torch.from_numpy(fitted_depth_m.astype(np.float32))[None] if has_fitted
                else torch.zeros(1, height, width))
    has_structure = structure is not None
    if has_structure:
        segments = torch.from_numpy(structure.segments.astype(np.int64))
        directions = torch.from_numpy(structure.vanishing_directions.astype(np.float32)).clone()
    else:
        segments = torch.full((height, width), -1, dtype=torch.int64)
        directions = torch.zeros(3, 3)
    has_poses = world_from_camera is not None
    poses = relative_poses(world_from_camera) if has_poses else torch.eye(4).repeat(len(frames), 1, 1)
    if prior is not None:
        prior_poses, has_prior = torch.from_numpy(prior[0]).float(), torch.from_numpy(prior[1]).bool()
    else:
        prior_poses, has_prior = torch.eye(4).repeat(len(frames), 1, 1), torch.zeros(len(frames), dtype=torch.bool)
    if flip:
        images = images.flip(-1)
        poses = _MIRROR_X @ poses @ _MIRROR_X  # the mirrored scene moves mirrored
        prior_poses = _MIRROR_X @ prior_poses @ _MIRROR_X
        labels_t, depth_t, segments = labels_t.flip(-1), depth_t.flip(-1), segments.flip(-1)
        fitted_t = fitted_t.flip(-1)
        directions[:, 0] = -directions[:, 0]  # mirrored scene: x components change sign
    if jitter:
        assert augment is not None
        params = draw_jitter(augment.brightness, augment.contrast, augment.saturation, augment.hue)
        images_aug = apply_jitter(images, params)
    else:
        images_aug = images.clone()
    K_s = scaled_intrinsics(K, width, flip)
    return {
        "images": images.contiguous(),
        "images_aug": images_aug.contiguous(),
        "K": K_s,
        "inv_K": torch.linalg.inv(K_s),
        "gradient": gradient_magnitude(images[0]),
        "labels": labels_t.to(torch.int64).contiguous(),
        "has_labels": torch.tensor(has_labels),
        "depth_gt": depth_t.contiguous(),
        "has_depth": torch.tensor(has_depth),
        "depth_fitted": fitted_t.contiguous(),
        "has_fitted_depth": torch.tensor(has_fitted),
        "segments": segments.contiguous(),
        "vanishing_directions": directions,
        "has_structure": torch.tensor(has_structure),
        "poses": poses.contiguous(),
        "has_poses": torch.tensor(has_poses),
        "prior_poses": prior_poses.contiguous(),
        "has_prior_pose": has_prior,
    }


_MIRROR_X = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))


def relative_poses(world_from_camera: np.ndarray) -> torch.Tensor:
    """``[F,4,4]`` float32 ``T_frame_target = inv(W_frame) @ W_target`` of world-from-camera poses (target first)."""
    W = np.asarray(world_from_camera, dtype=np.float64)
    return torch.from_numpy(np.linalg.inv(W) @ W[0]).float()


def side_file(folder: Path | None, key: str, suffix: str) -> Path | None:
    """``<folder>/<key><suffix>`` (key may contain sub-folders and dots), or None without a folder."""
    return None if folder is None else folder / (key + suffix)


def check_options(source: str, options: dict, known: set[str]) -> None:
    """Unknown ``DataConfig.options`` keys are errors naming the source and the known keys."""
    unknown = sorted(set(options) - known)
    if unknown:
        raise DataError(f"{source} data: unknown option(s) {unknown}; known: {sorted(known)}")
