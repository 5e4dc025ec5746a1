"""``gam-depth-precompute``: planar segments and vanishing directions per sample, cached for the loaders.

For every target frame of a data source, at the network size (the frame as the loader prepares
it, resized like the network input), writes ``<structure_dir>/<key>.npz`` with

- ``segments`` int32 ``[H,W]``: segment id per pixel, -1 = none (the planar loss fits a plane per
  segment and ignores small ones);
- ``vanishing_directions`` float32 ``[3,3]``: rows are unit dominant directions in the camera
  frame (x right, y down, z forward) for the Manhattan normal loss; zeros when none were found;
- ``size`` ``[2]`` (H, W) and ``methods`` (segments, vanishing) for the record.

The loaders (:mod:`training.data.common`) read these files into ``segments`` /
``vanishing_directions`` with ``has_structure`` true, flipping both with the image. Usage::

    python -m training.precompute --config config/train_nyu.yaml
    python -m training.precompute --source folder --path data/seq --size 288 384 --segments flat --vanishing none

Methods: ``--segments felzenszwalb`` (scikit-image's graph segmentation, ``--scale``, ``--sigma``,
``--min-size``), ``flat`` (built in: connected regions of equal quantised colour, no extra
package), ``none``; ``--vanishing lu`` (``lu-vp-detect``: Lu et al.'s 3-line RANSAC on LSD
segments, with the frame's intrinsics) or ``none``. scikit-image and lu-vp-detect (which pulls
OpenCV) are optional: ``pip install -r requirements/structure.txt``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np

from training.data.common import DataError, FrameDataset, prepare_frame

LOG = logging.getLogger("training.precompute")
SEGMENT_METHODS = ("felzenszwalb", "flat", "none")
VANISHING_METHODS = ("lu", "none")
INSTALL_HINT = "install the optional structure packages: pip install -r requirements/structure.txt"


def _require(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise DataError(f"{package} is not installed; {INSTALL_HINT} (or pick another method)")


def felzenszwalb_segments(rgb: np.ndarray, scale: float = 100.0, sigma: float = 0.8, min_size: int = 200) -> np.ndarray:
    """Felzenszwalb graph segmentation (scikit-image) of ``[H,W,3]`` uint8 -> ``[H,W]`` int32 ids."""
    _require("skimage", "scikit-image")
    from skimage.segmentation import felzenszwalb

    return felzenszwalb(rgb, scale=scale, sigma=sigma, min_size=int(min_size)).astype(np.int32)


def flat_segments(rgb: np.ndarray, levels: int = 8, min_size: int = 200) -> np.ndarray:
    """Connected 4-neighbour regions of equal colour after quantising each channel to ``levels`` steps.

    A dependency-light stand-in for Felzenszwalb: good on flat-shaded (synthetic) images, crude on
    photos. Regions smaller than ``min_size`` pixels get -1.
    """
    from scipy import ndimage

    quantised = (rgb.astype(np.int32) * levels) // 256
    code = (quantised[..., 0] * levels + quantised[..., 1]) * levels + quantised[..., 2]
    segments = np.full(code.shape, -1, np.int32)
    next_id = 0
    for value in np.unique(code):
        labels, count = ndimage.label(code == value)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        for region in np.flatnonzero(sizes[1:] >= min_size) + 1:
            segments[labels == region] = next_id
            next_id += 1
    return segments


def lu_vanishing_directions(rgb: np.ndarray, K: np.ndarray, length_thresh: float, seed: int = 2020) -> np.ndarray:
    """Three dominant directions (rows, unit, camera frame) with ``lu-vp-detect``; zeros when it fails.

    ``K`` is ``[3,3]`` in pixels of ``rgb``; the detector takes one focal length (the mean of fx, fy).
    """
    _require("lu_vp_detect", "lu-vp-detect")
    from lu_vp_detect import VPDetection

    grey = (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
    focal = float(K[0, 0] + K[1, 1]) / 2.0
    detector = VPDetection(length_thresh, (float(K[0, 2]), float(K[1, 2])), focal, seed)
    try:
        directions = np.asarray(detector.find_vps(grey), dtype=np.float64).reshape(3, 3)
    except Exception as error:  # the detector fails on frames with too few line segments
        LOG.debug("vanishing-point detection failed: %s", error)
        return np.zeros((3, 3), np.float32)
    norms = np.linalg.norm(directions, axis=1, keepdims=True)
    if not np.all(np.isfinite(directions)) or np.any(norms < 1e-9):
        return np.zeros((3, 3), np.float32)
    return (directions / norms).astype(np.float32)


def compute_structure(rgb: np.ndarray, K: np.ndarray, segments: str = "felzenszwalb", vanishing: str = "lu",
                      scale: float = 100.0, sigma: float = 0.8, min_size: int = 200,
                      length_thresh: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Segments ``[H,W]`` int32 and directions ``[3,3]`` float32 of one network-size frame."""
    if segments == "felzenszwalb":
        seg = felzenszwalb_segments(rgb, scale, sigma, min_size)
    elif segments == "flat":
        seg = flat_segments(rgb, min_size=min_size)
    elif segments == "none":
        seg = np.full(rgb.shape[:2], -1, np.int32)
    else:
        raise DataError(f"segments method must be one of {SEGMENT_METHODS}, got {segments!r}")
    if vanishing == "lu":
        thresh = length_thresh if length_thresh else max(10.0, 60.0 * rgb.shape[1] / 384.0)
        directions = lu_vanishing_directions(rgb, K, thresh)
    elif vanishing == "none":
        directions = np.zeros((3, 3), np.float32)
    else:
        raise DataError(f"vanishing method must be one of {VANISHING_METHODS}, got {vanishing!r}")
    return seg, directions


def precompute(dataset: FrameDataset, out_dir: str | Path | None = None, overwrite: bool = False, limit: int = 0,
               **methods) -> int:
    """Write ``<out_dir>/<key>.npz`` for every target of ``dataset`` (default its ``structure_dir``).

    ``methods`` go to :func:`compute_structure`. Returns how many files were written; existing
    files are kept unless ``overwrite``.
    """
    folder = Path(out_dir) if out_dir else dataset.structure_dir
    if folder is None:
        raise DataError("no output folder: give --out-dir")
    for name, choices in (("segments", SEGMENT_METHODS), ("vanishing", VANISHING_METHODS)):
        if methods.get(name, choices[0]) not in choices:
            raise DataError(f"{name} method must be one of {choices}, got {methods[name]!r}")
    if methods.get("segments", "felzenszwalb") == "felzenszwalb":
        _require("skimage", "scikit-image")
    if methods.get("vanishing", "lu") == "lu":
        _require("lu_vp_detect", "lu-vp-detect")
    written, failed = 0, 0
    for index, path in dataset.side_files_to_write(folder, ".npz", overwrite):
        if limit and written >= limit:
            break
        rgb, K = dataset.target_frame(index)
        h, w = rgb.shape[:2]
        frame = prepare_frame(rgb, dataset.height, dataset.width)
        K_net = np.diag([dataset.width / w, dataset.height / h, 1.0]) @ K
        segments, directions = compute_structure(frame, K_net, **methods)
        failed += int(not directions.any())
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, segments=segments, vanishing_directions=directions,
                            size=np.array([dataset.height, dataset.width]),
                            methods=np.array([methods.get("segments", "felzenszwalb"), methods.get("vanishing", "lu")]))
        written += 1
        if written % 500 == 0:
            LOG.info("%d structure files written (%d/%d samples)", written, index + 1, len(dataset))
    if failed:
        LOG.info("%d of %d frames have no vanishing directions (zeros: no Manhattan term)", failed, written)
    return written


def main(argv: list[str] | None = None) -> int:
    from training.data.cli_args import add_dataset_arguments, check_out_dir, dataset_from_args

    parser = argparse.ArgumentParser(prog="gam-depth-precompute", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", choices=SEGMENT_METHODS, default="felzenszwalb")
    parser.add_argument("--vanishing", choices=VANISHING_METHODS, default="lu")
    parser.add_argument("--scale", type=float, default=100.0, help="Felzenszwalb scale (larger: bigger segments)")
    parser.add_argument("--sigma", type=float, default=0.8, help="Felzenszwalb pre-smoothing")
    parser.add_argument("--min-size", type=int, default=200, help="smallest segment in pixels (network size)")
    parser.add_argument("--length-thresh", type=float, default=0.0,
                        help="shortest line segment for vanishing points, pixels (0: 60 x W / 384)")
    parser.add_argument("--out-dir", help="output folder (default: the source's structure folder)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--limit", type=int, default=0, help="stop after N files (0 = all)")
    add_dataset_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        parts = dataset_from_args(args)
        check_out_dir(parts, args.out_dir)
        count = sum(precompute(part, args.out_dir, args.overwrite, args.limit, segments=args.segments,
                               vanishing=args.vanishing, scale=args.scale, sigma=args.sigma, min_size=args.min_size,
                               length_thresh=args.length_thresh or None) for part in parts)
    except DataError as error:
        LOG.error("error: %s", error)
        return 2
    LOG.info("wrote %d structure files to %s", count, args.out_dir or ", ".join(str(p.structure_dir) for p in parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
