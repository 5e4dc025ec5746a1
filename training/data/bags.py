"""Many rosbags as one training set (``source: rosbag``): bag lists and globs, one sequence per bag.

A robot's recordings come as many bags. ``data.path`` may be one bag, a glob or a list of either;
each bag is extracted (and cached) on its own by :mod:`training.data.rosbag` and becomes one
sequence, so no sample spans two bags. Each run logs per bag the frames kept, the frames dropped
and why, and the samples the spacing rule (:mod:`training.data.spacing`; ``auto`` by default:
camera motion with odometry, else time) found. A bag that gives no sample is skipped with a
warning when there are others.
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path

from torch.utils.data import ConcatDataset, Dataset

from training.data.common import DataError, check_options
from training.data.folder import FolderDataset
from training.data.rosbag import OPTIONS, extract_bag, extraction_stats
from training.data.spacing import resolved_mode, spacing_from_options

LOG = logging.getLogger("training.data")


def bag_paths(path: str | Path | list | tuple) -> list[Path]:
    """The bags of ``data.path``: one path, a glob, or a list of either (sorted within a glob, no repeats).

    Raises
    ------
    DataError
        A glob matching nothing, a missing bag, or the same bag twice.
    """
    items = [path] if isinstance(path, (str, Path)) else list(path)
    if not items:
        raise DataError("data.path: no rosbag given")
    bags: list[Path] = []
    for item in items:
        text = str(item)
        if glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text) if not m.endswith("_frames"))
            if not matches:
                raise DataError(f"{text}: the pattern matches no rosbag")
            bags.extend(matches)
        else:
            bags.append(Path(text))
    seen: set[Path] = set()
    for bag in bags:
        if not bag.exists():
            raise DataError(f"{bag}: rosbag does not exist")
        if bag.resolve() in seen:
            raise DataError(f"{bag}: given twice in data.path")
        seen.add(bag.resolve())
    return bags


def _bag_caches(bags: list[Path], cache_dir: str | None) -> list[Path | None]:
    if not cache_dir:
        return [None] * len(bags)
    if len(bags) == 1:
        return [Path(cache_dir)]
    names = [bag.name for bag in bags]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise DataError(f"options.cache_dir: several bags are named {clashes}; rename them or give no cache_dir")
    return [Path(cache_dir) / name for name in names]


def rosbag_dataset(data, frame_ids, height: int, width: int, train: bool) -> Dataset:
    """Dataset of a ``source: rosbag`` :class:`training.config.DataConfig` (extracts on first use).

    One :class:`FolderDataset` per bag, concatenated when there are several.
    """
    options = dict(data.options)
    check_options("rosbag", options, OPTIONS)
    bags = bag_paths(data.path)
    if len(bags) > 1:
        shared = sorted(k for k in ("labels_dir", "structure_dir") if k in options)
        if shared:
            raise DataError(f"{shared} cannot be set for several bags (each uses the folders inside its cache)")
    spacing = spacing_from_options(options, default_mode="auto")
    folder_options = {k: options[k] for k in ("labels_dir", "structure_dir") if k in options}
    sequences = []
    for bag, cache in zip(bags, _bag_caches(bags, options.get("cache_dir"))):
        folder = extract_bag(bag, options, cache)
        stats = extraction_stats(folder)
        dropped = ", ".join(f"{stats[k]} {k.replace('_', ' ')}" for k in ("stationary", "stamp_out_of_order",
                                                                          "no_odometry") if stats.get(k))
        try:
            dataset = FolderDataset(folder, tuple(frame_ids), height, width,
                                    augment=data.augment if train else None, spacing=spacing, **folder_options)
        except DataError as error:
            if len(bags) == 1:
                raise
            LOG.warning("%s: skipped: %s", bag, error)
            continue
        mode = resolved_mode(spacing, dataset.poses is not None)
        LOG.info("%s: kept %d of %d frames of %s (dropped: %s); %d samples (spacing %s)", bag,
                 stats.get("kept", len(dataset.frames)), stats.get("messages", len(dataset.frames)),
                 options.get("topic"), dropped or "none", len(dataset), mode)
        sequences.append(dataset)
    if not sequences:
        raise DataError(f"none of the {len(bags)} bags gives a training sample (see the warnings above)")
    return sequences[0] if len(sequences) == 1 else ConcatDataset(sequences)
