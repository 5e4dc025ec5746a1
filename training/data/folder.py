"""A generic image-sequence folder (``source: folder``): one video as numbered frames.

Layout (``data.path``)::

    intrinsics.yaml        camera of the frames (below)
    images/                frames in time order by file name (zero-padded numbers sort right):
      000000.png           PNG, JPEG, PPM or BMP; without images/, the frames lie in the folder itself
      000001.png
    labels/   (optional)   000000.png ...  proxy labels, uint8 NYU-40 ids, 255 = void (same stem)
    depth/    (optional)   000000.png (16-bit millimetres) or 000000.npy (float metres), 0 = invalid
    structure/ (optional)  000000.npz written by gam-depth-precompute
    fitted_depth/ (optional) 000000.npy: depth fitted to the view-synthesis objective by
                           gam-depth-fit-depth (float metres; read for ``loss.fitted_depth_weight``)
    poses.txt (optional)   world-from-camera pose per frame (:mod:`training.data.poses`), used by
                           ``networks.pose_source: data``

``intrinsics.yaml`` (pixels of the image size given by width and height)::

    fx: 525.0
    fy: 525.0
    cx: 319.5
    cy: 239.5
    width: 640                 # image size the values refer to; frames of another size are an error
    height: 480
    distortion: [k1, k2, p1, p2, k3]   # optional plumb_bob coefficients; frames are undistorted
    crop: 0                    # optional, pixels removed from every side after undistortion

``data.path`` may also be a folder of such sequence folders (e.g. the output of
``training.synthetic.generate``), or a list of either (e.g. two generator runs): the dataset is the
concatenation of all sequences, a sample never spans two sequences, and each sequence uses its own
``labels/``, ``depth/`` and ``structure/``.

A sample is frame t (the target) with the frames the spacing rule picks for the other ``frame_ids``
(:mod:`training.data.spacing`): by default frames t + stride * id; by camera motion (``spacing:
motion``, needs ``poses.txt``) or time (``spacing: time``, needs frames named by stamps in ns). Every
t whose frames all exist is a sample. Labels and depth may have the image size (cropped like the
image; depth is taken as registered to the undistorted image) or the cropped size. Keys of side
files are the frame stems.

``DataConfig.options``: ``stride`` (1), ``spacing``, its ranges and ``min_baseline`` (:mod:`training.data.spacing`;
in a folder of sequences, one whose camera never moves that far is skipped with a warning),
``labels_dir`` (``<path>/labels``), ``structure_dir`` (``<path>/structure``), ``depth_dir``
(``<path>/depth``), ``fitted_depth_dir`` (``<path>/fitted_depth``), ``require_fitted_depth`` (false:
when true, only targets with a fitted map are samples; a sequence without any is skipped with a
warning), ``depth_png_scale`` (1000: PNG units per metre), ``poses_file``
(``<path>/poses.txt``; read when it exists), ``two_view_prior`` (false: when true, each sample carries
the classical two-view pose of every source against the target, :mod:`training.two_view`, computed
on the undistorted frames before the resize to the network size and kept for the dataset's life).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from gam_depth_ros.config_io import MAX_YAML_BYTES, ConfigError, parse_yaml, read_text_limited
from training.config import AugmentConfig
from training.data.common import (
    IMAGE_SUFFIXES,
    DataError,
    FrameDataset,
    assemble_sample,
    check_options,
    crop_border,
    match_geometry,
    prepare_frame,
    read_depth,
    read_labels_for,
    read_rgb,
    read_structure,
    resize_nearest,
    resized_intrinsics,
    side_file,
)
from training.data.poses import read_pose_file
from training.data.spacing import OPTION_KEYS as SPACING_OPTIONS
from training.data.spacing import Spacing, sample_frames, spacing_from_options, stamps_from_names
from training.data.undistort import Undistorter
from training.two_view import two_view_frame_poses

INTRINSICS_FILE = "intrinsics.yaml"
INTRINSICS_KEYS = {"fx", "fy", "cx", "cy", "width", "height", "distortion", "crop"}
OPTIONS = {*SPACING_OPTIONS, "labels_dir", "structure_dir", "depth_dir", "depth_png_scale", "poses_file",
           "two_view_prior", "fitted_depth_dir", "require_fitted_depth"}
SEQUENCE_DIRS = ("labels_dir", "structure_dir", "depth_dir", "poses_file", "fitted_depth_dir")
POSES_FILE = "poses.txt"
LOG = logging.getLogger("training")


class NoBaselineError(DataError):
    """Every sample of a sequence was dropped by ``min_baseline`` (the camera only turned)."""


class NoFittedDepthError(DataError):
    """``require_fitted_depth`` and no target of a sequence has a fitted map."""


def read_intrinsics(path: Path) -> dict[str, Any]:
    """Read and check ``intrinsics.yaml`` (see the module docstring)."""
    try:
        data = parse_yaml(read_text_limited(path, MAX_YAML_BYTES, "intrinsics"), str(path))
    except ConfigError as error:
        raise DataError(f"cannot read intrinsics: {error}") from error
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping with fx, fy, cx, cy, width, height")
    unknown = sorted(set(data) - INTRINSICS_KEYS)
    missing = sorted({"fx", "fy", "cx", "cy", "width", "height"} - set(data))
    if unknown or missing:
        raise DataError(f"{path}: unknown keys {unknown}, missing keys {missing}")
    distortion = data.get("distortion") or []
    if distortion and len(distortion) not in (4, 5):
        raise DataError(f"{path}: distortion needs 4 or 5 coefficients (k1, k2, p1, p2[, k3])")
    return {
        "fx": float(data["fx"]), "fy": float(data["fy"]), "cx": float(data["cx"]), "cy": float(data["cy"]),
        "width": int(data["width"]), "height": int(data["height"]),
        "distortion": [float(v) for v in distortion], "crop": int(data.get("crop", 0)),
    }


def list_frames(folder: Path) -> list[Path]:
    """Image files of a sequence folder (``images/`` if present), sorted by name."""
    images = folder / "images" if (folder / "images").is_dir() else folder
    frames = sorted(p for p in images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not frames:
        raise DataError(f"{images}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return frames


def sequence_folders(path: str | Path) -> list[Path]:
    """``[path]`` for a sequence folder (it has ``intrinsics.yaml``), else its sub-folders that have one.

    Raises
    ------
    DataError
        Neither: the message names the folder.
    """
    path = Path(path)
    if (path / INTRINSICS_FILE).is_file():
        return [path]
    folders = sorted(p.parent for p in path.glob(f"*/{INTRINSICS_FILE}")) if path.is_dir() else []
    if not folders:
        raise DataError(f"{path}: neither a sequence folder ({INTRINSICS_FILE} inside) nor a folder of them")
    return folders


class FolderDataset(FrameDataset):
    """Samples of consecutive frames of an image-sequence folder (see the module docstring)."""

    def __init__(
        self, path: str | Path, frame_ids: tuple[int, ...], height: int, width: int,
        augment: AugmentConfig | None = None, stride: int = 1, labels_dir: str | Path | None = None,
        structure_dir: str | Path | None = None, depth_dir: str | Path | None = None,
        depth_png_scale: float = 1000.0, poses_file: str | Path | None = None, spacing: Spacing | None = None,
        two_view_prior: bool = False, fitted_depth_dir: str | Path | None = None,
        require_fitted_depth: bool = False,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"{self.path}: image folder does not exist")
        if stride < 1:
            raise DataError(f"{self.path}: stride must be >= 1, got {stride}")
        self.height, self.width = height, width
        self.augment = augment
        self.frame_ids = tuple(frame_ids)
        self.camera = read_intrinsics(self.path / INTRINSICS_FILE)
        self.frames = list_frames(self.path)
        self.spacing = spacing or Spacing(stride=stride)
        self.labels_dir = Path(labels_dir) if labels_dir else self.path / "labels"
        self.structure_dir = Path(structure_dir) if structure_dir else self.path / "structure"
        self.depth_dir = Path(depth_dir) if depth_dir else self.path / "depth"
        self.fitted_depth_dir = Path(fitted_depth_dir) if fitted_depth_dir else self.path / "fitted_depth"
        self.depth_png_scale = float(depth_png_scale)
        self.two_view_prior = bool(two_view_prior)
        self._priors: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # sample index -> two-view estimate
        poses_path = Path(poses_file) if poses_file else self.path / POSES_FILE
        if poses_file and not poses_path.is_file():
            raise DataError(f"{poses_path}: poses_file does not exist")
        self.poses = read_pose_file(poses_path, len(self.frames)) if poses_path.is_file() else None
        try:
            self.samples = sample_frames(self.frame_ids, len(self.frames), self.spacing,
                                         stamps_from_names([f.stem for f in self.frames]), self.poses)
        except DataError as error:
            raise DataError(f"{self.path}: {error}") from error
        if not self.samples and self.spacing.min_baseline > 0:
            raise NoBaselineError(f"{self.path}: no sample: the camera never moves {self.spacing.min_baseline:g} m "
                                  f"between a target and its sources ({self.spacing.describe()})")
        if self.samples and bool(require_fitted_depth):
            self.samples = [s for s in self.samples
                            if (self.fitted_depth_dir / f"{self.frames[s[0]].stem}.npy").is_file()]
            if not self.samples:
                raise NoFittedDepthError(f"{self.path}: require_fitted_depth and no target has a map in "
                                         f"{self.fitted_depth_dir}")
        if not self.samples:
            raise DataError(f"{self.path}: {len(self.frames)} frames are too few for frame_ids "
                            f"{list(self.frame_ids)} at spacing {self.spacing.mode} ({self.spacing.describe()})")
        cam = self.camera
        self.crop = cam["crop"]
        self.raw_size = (cam["height"], cam["width"])
        intrinsics = (cam["fx"], cam["fy"], cam["cx"], cam["cy"])
        self.undistorter = Undistorter(intrinsics, cam["distortion"], cam["width"], cam["height"], self.crop) \
            if cam["distortion"] and any(cam["distortion"]) else None
        prep_h, prep_w = cam["height"] - 2 * self.crop, cam["width"] - 2 * self.crop
        cx, cy = cam["cx"] - self.crop, cam["cy"] - self.crop
        self.K_prepared = resized_intrinsics(cam["fx"], cam["fy"], cx, cy, 1.0, 1.0)
        self.K = resized_intrinsics(cam["fx"], cam["fy"], cx, cy, width / prep_w, height / prep_h)

    @classmethod
    def from_config(cls, data, frame_ids, height: int, width: int, train: bool) -> Dataset:
        """Build from a :class:`training.config.DataConfig` (augmentation only when ``train``).

        A folder of sequence folders (:func:`sequence_folders`) gives their concatenation.
        """
        options = dict(data.options)
        check_options("folder", options, OPTIONS)
        spacing = spacing_from_options(options)
        options = {k: v for k, v in options.items() if k not in SPACING_OPTIONS} | {"spacing": spacing}
        augment = data.augment if train else None
        paths = [data.path] if isinstance(data.path, (str, Path)) else list(data.path)
        folders = [folder for path in paths for folder in sequence_folders(path)]
        if len(paths) == 1 and folders == [Path(paths[0])]:
            return cls(paths[0], tuple(frame_ids), height, width, augment=augment, **options)
        shared = sorted(k for k in SEQUENCE_DIRS if k in options)
        if shared:
            raise DataError(f"{data.path}: {shared} cannot be set for a folder of sequences (each uses its own)")
        parts, turning, unfitted = [], [], []
        for folder in folders:
            try:
                parts.append(cls(folder, tuple(frame_ids), height, width, augment=augment, **options))
            except NoBaselineError:
                turning.append(str(folder))
            except NoFittedDepthError:
                unfitted.append(str(folder))
        if turning:
            LOG.warning("%s: %d of %d sequences give no sample with min_baseline %g m (the camera only turns): %s",
                        data.path, len(turning), len(folders), spacing.min_baseline, ", ".join(turning))
        if unfitted:
            LOG.warning("%s: %d of %d sequences have no fitted depth map (require_fitted_depth): %s",
                        data.path, len(unfitted), len(folders), ", ".join(unfitted))
        if not parts:
            if unfitted:
                raise DataError(f"{data.path}: no sequence has a sample with a fitted depth map (require_fitted_depth)")
            raise DataError(f"{data.path}: no sequence has a sample with sources >= {spacing.min_baseline:g} m "
                            "from the target (min_baseline)")
        return ConcatDataset(parts)

    def __len__(self) -> int:
        return len(self.samples)

    def sample_key(self, index: int) -> str:
        return self.frames[self.samples[index][0]].stem

    def _prepared(self, path: Path) -> np.ndarray:
        rgb = read_rgb(path)
        if rgb.shape[:2] != self.raw_size:
            raise DataError(f"{path}: frame is {rgb.shape[1]}x{rgb.shape[0]}, {INTRINSICS_FILE} says "
                            f"{self.raw_size[1]}x{self.raw_size[0]}")
        return self.undistorter(rgb) if self.undistorter is not None else crop_border(rgb, self.crop)

    def target_frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self._prepared(self.frames[self.samples[index][0]]), self.K_prepared

    def _depth(self, key: str) -> np.ndarray | None:
        for suffix in (".png", ".npy"):
            path = side_file(self.depth_dir, key, suffix)
            if path is not None and path.is_file():
                depth = match_geometry(read_depth(path, self.depth_png_scale), self.raw_size, self.crop, path, "depth")
                return resize_nearest(depth, self.height, self.width)
        return None

    def _fitted_depth(self, key: str) -> np.ndarray | None:
        """The fitted map of a target (metres, :mod:`training.fitted_depth`) at the network size, or None."""
        path = self.fitted_depth_dir / f"{key}.npy"
        if not path.is_file():
            return None
        depth = read_depth(path)  # non-finite or negative values become 0: invalid, skipped by the loss
        return depth if depth.shape == (self.height, self.width) else resize_nearest(depth, self.height, self.width)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        indices = list(self.samples[index])
        prepared = [self._prepared(self.frames[i]) for i in indices]
        prior = None
        if self.two_view_prior:
            if index not in self._priors:  # SIFT + RANSAC cost tens of ms a pair: once per sample
                self._priors[index] = two_view_frame_poses(prepared, self.K_prepared)
            prior = self._priors[index]
        frames = [prepare_frame(frame, self.height, self.width) for frame in prepared]
        key = self.sample_key(index)
        labels = read_labels_for(side_file(self.labels_dir, key, ".png"), self.raw_size, self.crop,
                                 self.height, self.width)
        structure = read_structure(side_file(self.structure_dir, key, ".npz"), self.height, self.width)
        poses = self.poses[indices] if self.poses is not None else None
        return assemble_sample(frames, self.K, self.augment, labels=labels, depth_m=self._depth(key),
                               structure=structure, world_from_camera=poses, prior=prior,
                               fitted_depth_m=self._fitted_depth(key))
