"""NYUv2 raw videos in the StructDepth / P2Net split-file layout (``source: nyu_raw``).

Layout
------
``data.split_file`` is a text file with one training sample per line. A line holds 9 image paths
separated by white space, for the frame ids ``[0, -4, -3, -2, -1, 1, 2, 3, 4]`` in that order
(the target first, then the neighbours of the same NYUv2 raw video, oldest to newest)::

    bedroom_0086/r-1315251252.453265-3131793654.ppm bedroom_0086/r-...-4.ppm ... bedroom_0086/r-...+4.ppm

Paths are relative to ``data.path`` (absolute paths are kept). Blank lines and lines starting
with ``#`` are skipped. The config's ``frame_ids`` (the recipe: ``[0, -2, -1, 1, 2]``) pick the
columns; every id must be one of the line's ids (``options.line_frame_ids`` for other layouts).

Images are the raw Kinect RGB frames (PPM, PNG or JPEG), 640 x 480. Each frame is undistorted
with the NYU Kinect RGB calibration (fx 518.8579, fy 519.4696, cx 325.5824, cy 253.7362;
k1 0.20797, k2 -0.58614, p1 7.2231e-4, p2 1.0480e-3, k3 0.49857: the NYU toolbox values),
cropped by 16 px on every side (608 x 448; cx, cy - 16) and resized to the network size (fx, cx
times W / 608; fy, cy times H / 448). Training augmentation: horizontal flip (cx -> W - 1 - cx, labels
and structure flipped) and colour jitter of ``images_aug`` only, as set in ``data.augment``.

Side files (see :mod:`training.data.common`): the key of a sample is its target path without the
suffix, e.g. ``bedroom_0086/r-1315251252.453265-3131793654``; proxy labels at
``<labels_dir>/<key>.png``, structure at ``<structure_dir>/<key>.npz``.

``DataConfig.options``: ``labels_dir`` (default ``<path>/proxy_labels``), ``structure_dir``
(default ``<path>/structure``), ``undistort`` (true), ``crop`` (16), ``line_frame_ids``
(``[0, -4, -3, -2, -1, 1, 2, 3, 4]``). No ground-truth depth (``has_depth`` false).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.config import AugmentConfig
from training.data.common import (
    DataError,
    FrameDataset,
    assemble_sample,
    check_options,
    crop_border,
    prepare_frame,
    read_labels_for,
    read_rgb,
    read_structure,
    resized_intrinsics,
    side_file,
)
from training.data.undistort import NYU_RGB_DISTORTION, NYU_RGB_INTRINSICS, Undistorter

LOG = logging.getLogger("training.data")

LINE_FRAME_IDS = (0, -4, -3, -2, -1, 1, 2, 3, 4)
NYU_SIZE = (480, 640)  # raw frame (height, width)
NYU_CROP = 16
OPTIONS = {"labels_dir", "structure_dir", "undistort", "crop", "line_frame_ids"}


def read_split_file(path: str | Path, columns: int) -> list[list[str]]:
    """Lines of a split file as lists of ``columns`` paths (comments and blank lines skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(f"{path}: cannot read split file: {error}") from error
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != columns:
            raise DataError(f"{path}:{number}: expected {columns} image paths, found {len(fields)}")
        rows.append(fields)
    if not rows:
        raise DataError(f"{path}: split file lists no sample")
    return rows


class NyuRawDataset(FrameDataset):
    """Samples of the NYUv2 raw split file (see the module docstring).

    Parameters
    ----------
    root:
        Folder the split file's paths are relative to.
    split_file:
        The split text file.
    frame_ids:
        Frames of a sample, target first (subset of ``line_frame_ids``).
    height, width:
        Network size.
    augment:
        Flip / jitter settings, None for none.
    """

    def __init__(
        self, root: str | Path, split_file: str | Path, frame_ids: tuple[int, ...], height: int, width: int,
        augment: AugmentConfig | None = None, labels_dir: str | Path | None = None,
        structure_dir: str | Path | None = None, undistort: bool = True, crop: int = NYU_CROP,
        line_frame_ids: tuple[int, ...] = LINE_FRAME_IDS,
    ) -> None:
        self.root = Path(root)
        self.height, self.width = height, width
        self.augment = augment
        missing = [f for f in frame_ids if f not in line_frame_ids]
        if missing:
            raise DataError(
                f"{split_file}: frame ids {missing} are not among the split's columns {list(line_frame_ids)}"
            )
        self.columns = [list(line_frame_ids).index(f) for f in frame_ids]
        self.rows = read_split_file(split_file, len(line_frame_ids))
        self.crop = int(crop)
        self.undistorter = Undistorter(NYU_RGB_INTRINSICS, NYU_RGB_DISTORTION, NYU_SIZE[1], NYU_SIZE[0], self.crop) \
            if undistort else None
        self.labels_dir = Path(labels_dir) if labels_dir else self.root / "proxy_labels"
        self.structure_dir = Path(structure_dir) if structure_dir else self.root / "structure"
        fx, fy, cx, cy = NYU_RGB_INTRINSICS
        crop_h, crop_w = NYU_SIZE[0] - 2 * self.crop, NYU_SIZE[1] - 2 * self.crop
        self.K_prepared = resized_intrinsics(fx, fy, cx - self.crop, cy - self.crop, 1.0, 1.0)
        self.K = resized_intrinsics(fx, fy, cx - self.crop, cy - self.crop, width / crop_w, height / crop_h)

    @classmethod
    def from_config(cls, data, frame_ids, height: int, width: int, train: bool) -> NyuRawDataset:
        """Build from a :class:`training.config.DataConfig` (augmentation only when ``train``)."""
        options: dict[str, Any] = dict(data.options)
        check_options("nyu_raw", options, OPTIONS)
        if not data.split_file:
            raise DataError("nyu_raw data needs data.split_file (the split text file)")
        if "line_frame_ids" in options:
            options["line_frame_ids"] = tuple(int(f) for f in options["line_frame_ids"])
        return cls(data.path, data.split_file, tuple(frame_ids), height, width,
                   augment=data.augment if train else None, **options)

    def __len__(self) -> int:
        return len(self.rows)

    def _path(self, text: str) -> Path:
        path = Path(text)
        return path if path.is_absolute() else self.root / path

    def sample_key(self, index: int) -> str:
        text = self.rows[index][self.columns[0]]
        return str(Path(text).with_suffix("")) if not Path(text).is_absolute() else Path(text).stem

    def _prepared(self, path: Path) -> np.ndarray:
        rgb = read_rgb(path)
        if rgb.shape[:2] != NYU_SIZE:
            raise DataError(f"{path}: NYUv2 raw frames are 640x480, got {rgb.shape[1]}x{rgb.shape[0]}")
        return self.undistorter(rgb) if self.undistorter is not None else crop_border(rgb, self.crop)

    def target_frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self._prepared(self._path(self.rows[index][self.columns[0]])), self.K_prepared

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.rows[index]
        frames = [prepare_frame(self._prepared(self._path(row[c])), self.height, self.width) for c in self.columns]
        key = self.sample_key(index)
        labels = read_labels_for(side_file(self.labels_dir, key, ".png"), NYU_SIZE, self.crop, self.height, self.width)
        structure = read_structure(side_file(self.structure_dir, key, ".npz"), self.height, self.width)
        return assemble_sample(frames, self.K, self.augment, labels=labels, structure=structure)
