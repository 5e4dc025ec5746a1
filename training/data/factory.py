"""``make_dataset``: a :class:`training.config.DataConfig` -> a map-style dataset of schema samples.

Sources (``DataConfig.source``):

==============  ==========================================================  ===========================
source          what                                                        module
==============  ==========================================================  ===========================
``nyu_raw``     NYUv2 raw videos, StructDepth/P2Net split file              :mod:`.nyu_raw`
``folder``      image-sequence folder + ``intrinsics.yaml``                 :mod:`.folder`
``rosbag``      rosbag2 bags (sqlite3 / mcap), each extracted once          :mod:`.bags`
``synthetic``   rendered box-room clips (tests, smoke runs)                 :mod:`.synthetic_clip`
``nyu_mat``     labeled NYUv2 ``.mat`` + ``splits.mat`` (validation)        :mod:`.eval_sets`
``nyu_h5``      folder of per-image ``.h5`` (validation)                    :mod:`.eval_sets`
``scannet``     ``<rgb> <depth png>`` split file (validation)               :mod:`.eval_sets`
``interiornet`` same layout as scannet (validation)                         :mod:`.eval_sets`
==============  ==========================================================  ===========================

The evaluation sources give single-frame samples (F = 1; ``images`` holds the target only) with
``depth_gt`` and, with a class mapping, ``labels``, resized (nearest) to the network size after
the protocol's crop, and a nominal K (``nominal_intrinsics``: fx = fy = W, principal point at the
centre) unless the NYU camera applies. They are meant for validation, which uses the target only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from training.data.common import DataError, assemble_sample, prepare_frame, resize_nearest, resized_intrinsics
from training.data.eval_sets import NYU_EVAL_CROP, make_eval_set
from training.data.undistort import NYU_RGB_INTRINSICS

TRAIN_SOURCES = ("nyu_raw", "folder", "rosbag", "synthetic")
EVAL_SAMPLE_SOURCES = ("nyu_mat", "nyu_h5", "scannet", "interiornet")
SOURCES = TRAIN_SOURCES + EVAL_SAMPLE_SOURCES


def nominal_intrinsics(height: int, width: int) -> np.ndarray:
    """``[3,3]`` stand-in K for sets without calibration: fx = fy = W, principal point at the centre."""
    return np.array([[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]])


class EvalSampleDataset(Dataset):
    """Single-frame schema samples of an evaluation set (no augmentation)."""

    def __init__(self, items: Sequence, height: int, width: int, nyu_camera: bool = False) -> None:
        self.items, self.height, self.width, self.nyu_camera = items, height, width, nyu_camera

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.items[index]
        h, w = item.rgb.shape[:2]
        top, bottom, left, right = NYU_EVAL_CROP
        if self.nyu_camera and (h, w) == (bottom - top, right - left):
            fx, fy, cx, cy = NYU_RGB_INTRINSICS
            K = resized_intrinsics(fx, fy, cx - left, cy - top, self.width / w, self.height / h)
        else:
            K = nominal_intrinsics(self.height, self.width)
        frame = prepare_frame(item.rgb, self.height, self.width)
        depth = resize_nearest(item.depth_m, self.height, self.width)
        labels = None if item.labels is None else resize_nearest(item.labels, self.height, self.width)
        return assemble_sample([frame], K, None, labels=labels, depth_m=depth)


def make_dataset(
    data, frame_ids: tuple[int, ...] = (0, -2, -1, 1, 2), height: int = 288, width: int = 384, train: bool = True,
) -> Dataset:
    """Dataset of a :class:`training.config.DataConfig` (``data.source`` picks the loader).

    Parameters
    ----------
    data:
        The data section; ``options`` are documented by each source's module.
    frame_ids:
        Frames of a sample, target first (ignored by the single-frame evaluation sources).
    height, width:
        Network input size.
    train:
        Training split: ``data.augment`` applies; otherwise no augmentation.
    """
    source = data.source
    if source == "nyu_raw":
        from training.data.nyu_raw import NyuRawDataset

        return NyuRawDataset.from_config(data, frame_ids, height, width, train)
    if source == "folder":
        from training.data.folder import FolderDataset

        return FolderDataset.from_config(data, frame_ids, height, width, train)
    if source == "rosbag":
        from training.data.bags import rosbag_dataset

        return rosbag_dataset(data, frame_ids, height, width, train)
    if source == "synthetic":
        from training.data.synthetic_clip import SyntheticClipDataset

        return SyntheticClipDataset.from_options(dict(data.options), height, width, tuple(frame_ids))
    if source in EVAL_SAMPLE_SOURCES:
        options: dict[str, Any] = dict(data.options)
        items = make_eval_set(source, data.path, data.split_file or None, options)
        return EvalSampleDataset(items, height, width, nyu_camera=source in ("nyu_mat", "nyu_h5"))
    raise DataError(f"unknown data source {source!r}; choose one of {SOURCES}")


def build_dataset(data, frame_ids: tuple[int, ...], height: int, width: int, train: bool) -> Dataset:
    """The trainer's entry point; same as :func:`make_dataset`."""
    return make_dataset(data, frame_ids=frame_ids, height=height, width=width, train=train)


def sequences(dataset: Dataset) -> list[Dataset]:
    """The sequences of a dataset :func:`make_dataset` built: the parts of a ``ConcatDataset`` (many
    bags), else the dataset itself."""
    return list(dataset.datasets) if isinstance(dataset, ConcatDataset) else [dataset]
