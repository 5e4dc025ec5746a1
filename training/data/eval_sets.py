"""Evaluation data: single RGB images with ground-truth depth (and labels when there are any).

Each set is a sequence of :class:`EvalItem` already cut to the protocol's evaluation region.

- ``nyu_mat``: the official ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5, read with h5py).
  MATLAB stores arrays column-major, so h5py sees them transposed: ``images`` is
  ``[N,3,640,480]`` uint8 (-> ``[480,640,3]`` per image), ``depths`` ``[N,640,480]`` float metres,
  ``labels`` ``[N,640,480]`` raw class ids (0 = unlabeled, 1..894). ``splits.mat`` (older MATLAB
  format, scipy) holds ``testNdxs`` (654) and ``trainNdxs`` (795), 1-based. Labels are used only
  with a class-mapping file from the 894 raw classes to NYU-40 (:func:`load_class_mapping`).
- ``nyu_h5``: a folder of per-image ``.h5`` files (P2Net / StructDepth test layout): ``rgb``
  ``[3,H,W]`` uint8, ``depth`` ``[H,W]`` metres (``norm``, ``mask`` ignored); all ``*.h5`` under the
  folder sorted by path, or the files listed in a split file (one relative path a line).
- ``scannet`` / ``interiornet``: a split file with one ``<rgb path> <depth png path>`` pair a line,
  relative to the data root (default: the split file's folder); depth PNGs in millimetres.
- ``folder``: an image-sequence folder (:mod:`training.data.folder`) whose frames have ``depth/``,
  or a folder of such sequence folders.

NYUv2 images (``nyu_mat`` and ``nyu_h5`` at 640 x 480) are cut to rows 44:471, cols 40:601 (the
standard crop, 561 x 427) for the network input and the ground truth alike; the other sets are
used whole.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.data.common import DataError, read_depth, read_label_png, read_rgb
from training.data.folder import list_frames, sequence_folders
from training.data.sample import VOID_LABEL

NYU_EVAL_CROP = (44, 471, 40, 601)  # rows 44:471, cols 40:601 of a 480 x 640 image
NYU_RAW_CLASSES = 894
EVAL_SOURCES = ("nyu_mat", "nyu_h5", "scannet", "interiornet", "folder")


@dataclass
class EvalItem:
    """One evaluation image (already cropped)."""

    name: str
    rgb: np.ndarray  # [H,W,3] uint8
    depth_m: np.ndarray  # [H,W] float32 metres, 0 = invalid
    labels: np.ndarray | None = None  # [H,W] uint8 NYU-40 ids 0..39, 255 = void


def _nyu_crop(array: np.ndarray, crop: bool) -> np.ndarray:
    if not crop or array.shape[:2] != (480, 640):
        return array
    top, bottom, left, right = NYU_EVAL_CROP
    return np.ascontiguousarray(array[top:bottom, left:right])


def load_class_mapping(path: str | Path, variable: str = "mapClass") -> np.ndarray:
    """Look-up table ``[895]`` uint8: raw NYUv2 class id (0..894) -> NYU-40 id 0..39 or 255 (void).

    The file lists, for raw classes 1..894 in order, the NYU-40 class 1..40 (0 = void): a ``.mat``
    (variable ``variable``, e.g. ``classMapping40.mat``'s ``mapClass``), a ``.npy`` array, or a text
    file of integers separated by white space or commas. Raw class 0 (unlabeled) is always void.
    """
    path = Path(path)
    try:
        if path.suffix == ".mat":
            values = _read_mat_variable(path, variable)
        elif path.suffix == ".npy":
            values = np.load(path)
        else:
            values = np.array(path.read_text(encoding="utf-8").replace(",", " ").split(), dtype=np.int64)
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"{path}: cannot read class mapping: {error}") from error
    values = np.asarray(values).reshape(-1).astype(np.int64)
    if values.size != NYU_RAW_CLASSES or values.min() < 0 or values.max() > 40:
        raise DataError(f"{path}: expected {NYU_RAW_CLASSES} NYU-40 ids in 0..40, got {values.size} values "
                        f"in {values.min()}..{values.max()}")
    lut = np.full(NYU_RAW_CLASSES + 1, VOID_LABEL, dtype=np.uint8)
    lut[1:] = np.where(values > 0, values - 1, VOID_LABEL)
    return lut


def _read_mat_variable(path: Path, variable: str) -> np.ndarray:
    import h5py

    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as mat:
            return np.asarray(mat[variable])
    from scipy.io import loadmat

    return np.asarray(loadmat(path)[variable])


class NyuMatSet(Sequence):
    """The labeled NYUv2 ``.mat`` (see the module docstring); ``split`` is ``test``, ``train`` or ``all``."""

    def __init__(self, mat_path: str | Path, splits_path: str | Path | None = None, split: str = "test",
                 class_mapping: str | Path | None = None, crop: bool = True) -> None:
        self.path = Path(mat_path)
        self._handle: tuple[int, Any] | None = None  # (pid, h5py.File): reopened in each worker process
        images, depths = self._file()["images"], self._file()["depths"]
        count = images.shape[0]
        if images.ndim != 4 or images.shape[1] != 3 or depths.shape != (count, *images.shape[2:]):
            raise DataError(f"{self.path}: expected images [N,3,W,H] and depths [N,W,H], got "
                            f"{images.shape} and {depths.shape}")
        if class_mapping and "labels" not in self._file():
            raise DataError(f"{self.path}: has no labels but a class mapping was given")
        self.indices = list(range(count)) if split == "all" else _split_indices(splits_path, split, count)
        self.lut = load_class_mapping(class_mapping) if class_mapping else None
        self.crop = crop
        self._close()

    def _file(self):
        import h5py

        if self._handle is None or self._handle[0] != os.getpid():
            try:
                mat = h5py.File(self.path, "r")
            except OSError as error:
                raise DataError(f"{self.path}: cannot open as a MATLAB v7.3 (HDF5) file: {error}") from error
            if "images" not in mat or "depths" not in mat:
                mat.close()
                raise DataError(f"{self.path}: no 'images' and 'depths' arrays (not the labeled NYUv2 .mat)")
            self._handle = (os.getpid(), mat)
        return self._handle[1]

    def _close(self) -> None:
        if self._handle is not None and self._handle[0] == os.getpid():
            self._handle[1].close()
        self._handle = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> EvalItem:
        n = self.indices[i]
        mat = self._file()
        rgb = np.ascontiguousarray(np.asarray(mat["images"][n]).transpose(2, 1, 0))
        depth = np.ascontiguousarray(np.asarray(mat["depths"][n], dtype=np.float32).T)
        labels = None
        if self.lut is not None:
            raw = np.asarray(mat["labels"][n]).T.astype(np.int64)
            labels = self.lut[np.clip(raw, 0, NYU_RAW_CLASSES)]
        return EvalItem(f"{n + 1:04d}", _nyu_crop(rgb, self.crop), _nyu_crop(depth, self.crop),
                        None if labels is None else _nyu_crop(labels, self.crop))


def _split_indices(splits_path: str | Path | None, split: str, count: int) -> list[int]:
    if not splits_path:
        raise DataError("nyu_mat needs the splits.mat file (data.split_file / --splits) unless split is 'all'")
    from scipy.io import loadmat

    key = {"test": "testNdxs", "train": "trainNdxs"}.get(split)
    if key is None:
        raise DataError(f"split must be test, train or all, got {split!r}")
    try:
        indices = np.asarray(loadmat(splits_path)[key]).reshape(-1).astype(np.int64) - 1  # 1-based in MATLAB
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"{splits_path}: cannot read {key}: {error}") from error
    if indices.size == 0 or indices.min() < 0 or indices.max() >= count:
        raise DataError(f"{splits_path}: {key} indices outside 1..{count}")
    return indices.tolist()


class NyuH5Set(Sequence):
    """Per-image ``.h5`` files (see the module docstring)."""

    def __init__(self, path: str | Path, split_file: str | Path | None = None, crop: bool = True) -> None:
        root = Path(path)
        if split_file:
            lines = _split_lines(split_file)
            self.files = [root / line[0] for line in lines]
        else:
            self.files = sorted(root.rglob("*.h5"))
        if not self.files:
            raise DataError(f"{root}: no .h5 file found")
        self.root, self.crop = root, crop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> EvalItem:
        import h5py

        path = self.files[i]
        try:
            with h5py.File(path, "r") as h5:
                rgb, depth = np.asarray(h5["rgb"]), np.asarray(h5["depth"], dtype=np.float32)
        except (OSError, KeyError) as error:
            raise DataError(f"{path}: cannot read rgb and depth: {error}") from error
        if rgb.ndim == 3 and rgb.shape[0] == 3:
            rgb = rgb.transpose(1, 2, 0)
        rgb = np.ascontiguousarray(rgb.astype(np.uint8))
        if rgb.shape[:2] != depth.shape:
            raise DataError(f"{path}: rgb {rgb.shape} and depth {depth.shape} differ in size")
        name = str(path.relative_to(self.root)) if path.is_relative_to(self.root) else path.name
        return EvalItem(name, _nyu_crop(rgb, self.crop), _nyu_crop(depth, self.crop))


def _split_lines(split_file: str | Path) -> list[list[str]]:
    try:
        text = Path(split_file).read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(f"{split_file}: cannot read split file: {error}") from error
    return [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


class PairListSet(Sequence):
    """``<rgb> <depth png>`` pairs of a split file (ScanNet, InteriorNet); depth in millimetres."""

    def __init__(self, split_file: str | Path, root: str | Path | None = None, depth_png_scale: float = 1000.0) -> None:
        self.root = Path(root) if root else Path(split_file).parent
        self.pairs = []
        for number, fields in enumerate(_split_lines(split_file), 1):
            if len(fields) != 2:
                raise DataError(f"{split_file}: entry {number}: expected '<rgb path> <depth png path>'")
            self.pairs.append((self.root / fields[0], self.root / fields[1]))
        if not self.pairs:
            raise DataError(f"{split_file}: no image pair listed")
        self.depth_png_scale = depth_png_scale

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> EvalItem:
        rgb_path, depth_path = self.pairs[i]
        rgb, depth = read_rgb(rgb_path), read_depth(depth_path, self.depth_png_scale)
        if rgb.shape[:2] != depth.shape:
            raise DataError(f"{rgb_path}: image {rgb.shape[1]}x{rgb.shape[0]} and depth {depth_path} "
                            f"{depth.shape[1]}x{depth.shape[0]} differ in size")
        return EvalItem(str(rgb_path.relative_to(self.root)) if rgb_path.is_relative_to(self.root) else rgb_path.name,
                        rgb, depth)


class FolderEvalSet(Sequence):
    """Frames of an image-sequence folder that have ``depth/<stem>.png|.npy``, with ground-truth labels from
    ``labels_exact/`` (the generator's exact labels beside noisy proxies) or else ``labels/`` when present."""

    def __init__(self, path: str | Path, depth_png_scale: float = 1000.0) -> None:
        self.path = Path(path)
        self.items = []
        for frame in list_frames(self.path):
            for suffix in (".png", ".npy"):
                depth = self.path / "depth" / (frame.stem + suffix)
                if depth.is_file():
                    self.items.append((frame, depth))
                    break
        if not self.items:
            raise DataError(f"{self.path}: no frame has ground-truth depth in depth/")
        self.depth_png_scale = depth_png_scale

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> EvalItem:
        frame, depth_path = self.items[i]
        rgb, depth = read_rgb(frame), read_depth(depth_path, self.depth_png_scale)
        if rgb.shape[:2] != depth.shape:
            raise DataError(f"{depth_path}: depth size {depth.shape} differs from the image {rgb.shape[:2]}")
        # A generated training folder keeps its noisy proxy labels in labels/ and the truth in labels_exact/.
        candidates = [self.path / folder / (frame.stem + ".png") for folder in ("labels_exact", "labels")]
        label_path = next((path for path in candidates if path.is_file()), None)
        labels = read_label_png(label_path) if label_path else None
        return EvalItem(frame.stem, rgb, depth, labels)


def make_eval_set(dataset: str, path: str | Path, split_file: str | Path | None = None,
                  options: dict[str, Any] | None = None) -> Sequence:
    """The evaluation set ``dataset`` (one of :data:`EVAL_SOURCES`).

    ``options``: ``nyu_mat``: ``split`` (test), ``class_mapping`` (path), ``crop`` (true); ``nyu_h5``:
    ``crop``; ``scannet``/``interiornet``: ``root``, ``depth_png_scale``; ``folder``: ``depth_png_scale``.
    """
    options = dict(options or {})
    known = {"nyu_mat": {"split", "class_mapping", "crop"}, "nyu_h5": {"crop"},
             "scannet": {"root", "depth_png_scale"}, "interiornet": {"root", "depth_png_scale"},
             "folder": {"depth_png_scale"}}
    if dataset not in known:
        raise DataError(f"unknown evaluation dataset {dataset!r}; choose one of {EVAL_SOURCES}")
    unknown = sorted(set(options) - known[dataset])
    if unknown:
        raise DataError(f"{dataset}: unknown option(s) {unknown}; known: {sorted(known[dataset])}")
    if dataset == "nyu_mat":
        return NyuMatSet(path, split_file, **options)
    if dataset == "nyu_h5":
        return NyuH5Set(path, split_file, **options)
    if dataset in ("scannet", "interiornet"):
        if not split_file:
            raise DataError(f"{dataset} needs a split file of '<rgb> <depth png>' pairs")
        return PairListSet(split_file, options.get("root") or path or None, options.get("depth_png_scale", 1000.0))
    sets = [FolderEvalSet(folder, **options) for folder in sequence_folders(path)]
    return sets[0] if len(sets) == 1 else SequenceCollection(sets)


class SequenceCollection(Sequence):
    """The frames of several :class:`FolderEvalSet` in order, named ``<sequence>/<frame>`` (read lazily)."""

    def __init__(self, sets: list[FolderEvalSet]) -> None:
        self.index = [(s, i) for s in sets for i in range(len(s))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> EvalItem:
        folder_set, j = self.index[i]
        item = folder_set[j]
        item.name = f"{folder_set.path.name}/{item.name}"
        return item
