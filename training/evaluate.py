"""``gam-depth-eval``: depth (and semantic) accuracy of a model on a test set, as JSON.

Usage::

    python -m training.evaluate --model model.onnx --dataset nyu_mat \\
        --path data/nyu_depth_v2_labeled.mat --split-file data/splits.mat --output nyu.json
    python -m training.evaluate --model runs/nyu/checkpoints/step_00100000.pt --dataset scannet \\
        --split-file data/scannet_test.txt --path data/scannet

``--model`` is an exported ``.onnx`` (with its metadata JSON, run by ONNX Runtime) or a checkpoint
(``.pt`` / ``.safetensors``, run by torch), both through :func:`gam_depth_ros.inference.create_backend`,
exactly as the node runs them. Data sets and their layouts: :mod:`training.data.eval_sets`.

Protocol: each image (NYUv2: rows 44:471, cols 40:601 of image and ground truth) goes through the
backend at the model's input size, the prediction is resized to the ground truth (bilinear in
disparity), multiplied by the model's ``depth_scale`` (``--depth-scale`` overrides), median-scaled
per image unless ``--no-median-scaling``, clamped to [``--min-depth``, ``--max-depth``], and
scored by :func:`gam_depth_ros.evaluation.metrics.depth_metrics` on ground truth inside that range; the mean over
images is reported. With ground-truth labels (``nyu_mat`` with ``--class-mapping``, ``folder`` with
``labels/``) mIoU and pixel accuracy over the pooled confusion matrix are reported too.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from gam_depth_ros.evaluation.metrics import (
    DepthMetricsAccumulator,
    ObstacleAccumulator,
    SemanticAccumulator,
    obstacle_metrics,
    single_image_depth_metrics,
)
from training.data.common import DataError
from training.data.eval_sets import EVAL_SOURCES, NYU_EVAL_CROP, EvalItem, FolderEvalSet, make_eval_set

LOG = logging.getLogger("training.evaluate")

#: ``predict(rgb [H,W,3] uint8) -> (depth [H,W] metres or relative, labels [H,W] uint8 or None)``
Predictor = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray | None]"]
#: ``regions(item) -> {name: bool [H,W] mask}``: image regions scored apart (e.g. textureless pixels)
RegionMasks = Callable[[EvalItem], "dict[str, np.ndarray]"]


def evaluate_items(
    predict: Predictor, items: Iterable[EvalItem], median_scaling: bool = True, min_depth: float = 0.1,
    max_depth: float = 10.0, num_classes: int = 40, max_images: int = 0, regions: RegionMasks | None = None,
) -> dict[str, Any]:
    """Score ``predict`` on evaluation items (the protocol of the module docstring).

    Returns
    -------
    dict
        ``images`` (scored), ``skipped`` (no valid ground truth), ``depth`` (mean metrics),
        ``scale`` (median / std of the per-image median-scaling factors), ``obstacles`` (object-pixel
        AbsRel/RMSE/delta1, obstacle recall and depth-boundary scores of
        :func:`~gam_depth_ros.evaluation.metrics.obstacle_metrics`; object scores only where the
        items carry ground-truth labels) and ``semantic`` (mIoU, pixel accuracy) when any item has
        labels and the predictor gives labels. With ``regions``, also ``regions``: per region name the
        mean AbsRel over the images where it has valid pixels (``images``), with each image's
        whole-image scale (the region is not median-scaled on its own).
    """
    depth_acc = DepthMetricsAccumulator()
    region_abs_rel: dict[str, list[float]] = {}
    obstacle_acc = ObstacleAccumulator()
    semantic_acc = SemanticAccumulator(num_classes)
    seen = 0
    for item in items:
        if max_images and seen >= max_images:
            break
        seen += 1
        depth, labels = predict(item.rgb)
        if depth.shape != item.depth_m.shape:
            raise ValueError(f"{item.name}: prediction {depth.shape} and ground truth {item.depth_m.shape} differ")
        pred, gt = depth.astype(np.float64), item.depth_m.astype(np.float64)
        whole = single_image_depth_metrics(pred, gt, median_scaling, min_depth, max_depth)
        depth_acc.add(whole)
        for name, mask in (regions(item) if regions and whole else {}).items():
            region = single_image_depth_metrics(pred * whole["scale"], gt, False, min_depth, max_depth, mask=mask)
            region_abs_rel.setdefault(name, [])
            if region is not None:
                region_abs_rel[name].append(region["abs_rel"])
        obstacle_acc.add(obstacle_metrics(pred, gt, item.labels, median_scaling, min_depth, max_depth))
        if item.labels is not None and labels is not None:
            semantic_acc.add(labels, item.labels)
    if depth_acc.count == 0:
        raise DataError(f"no image with ground-truth depth inside ({min_depth}, {max_depth}) m among {seen}")
    mean = depth_acc.mean()
    result: dict[str, Any] = {
        "images": depth_acc.count,
        "skipped": depth_acc.skipped,
        "depth": {key: mean[key] for key in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10",
                                             "delta1", "delta2", "delta3")},
        "scale": depth_acc.scale_stats(),
        "obstacles": obstacle_acc.result(),
    }
    if semantic_acc.images:
        result["semantic"] = semantic_acc.result()
    if regions:
        result["regions"] = {name: {"abs_rel": float(np.mean(values)) if values else float("nan"),
                                    "images": len(values)} for name, values in region_abs_rel.items()}
    return result


def sample_eval_item(sample: dict, name: str) -> EvalItem:
    """The target of a training sample (the schema of :mod:`training.data.sample`, unbatched) as an
    evaluation item: its un-augmented image as uint8, ground-truth depth and labels (None without)."""
    rgb = (sample["images"][0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    labels = sample["labels"].numpy().astype(np.uint8) if bool(sample["has_labels"]) else None
    return EvalItem(name, rgb, sample["depth_gt"][0].numpy(), labels)


def sequence_folder_items(folder: str | Path, per_sequence: int) -> Iterable[EvalItem]:
    """``per_sequence`` evenly spaced frames with depth (and labels) of every sequence folder under
    ``folder`` (the generator's layout: ``<folder>/<sequence>/intrinsics.yaml``), in name order."""
    for intrinsics in sorted(Path(folder).glob("*/intrinsics.yaml")):
        yield from evenly_spaced_frames(FolderEvalSet(intrinsics.parent), per_sequence)


def evenly_spaced_frames(frames: FolderEvalSet, count: int) -> list[EvalItem]:
    """``count`` evenly spaced frames of one sequence, from its first (the held-out protocol's choice)."""
    step = max(1, len(frames) // count)
    return [frames[index] for index in range(0, len(frames), step)[:count]]


def constant_depth(rgb: np.ndarray) -> tuple[np.ndarray, None]:
    """The :data:`Predictor` every model is compared with: one depth for every pixel (median scaling
    makes it the frame's median true depth), no labels."""
    return np.ones(rgb.shape[:2]), None


def backend_predictor(backend, depth_scale: float) -> Predictor:
    """A :data:`Predictor` running an inference backend; depth in metres via ``depth_scale``."""

    def predict(rgb: np.ndarray):
        prediction = backend.infer(rgb, output_size=rgb.shape[:2])
        return prediction.depth.astype(np.float64) * depth_scale, prediction.labels

    return predict


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gam-depth-eval", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="exported .onnx (metadata beside it) or a checkpoint")
    parser.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "torch"))
    parser.add_argument("--dataset", required=True, choices=EVAL_SOURCES)
    parser.add_argument("--path", default="", help="the .mat file, the .h5 / image folder, or the data root")
    parser.add_argument("--split-file", default="",
                        help="nyu_mat: splits.mat; nyu_h5: optional list of .h5 files; scannet/interiornet: pairs")
    parser.add_argument("--split", default="test", choices=("test", "train", "all"), help="nyu_mat split")
    parser.add_argument("--class-mapping", default="", help="nyu_mat: 894 -> NYU-40 mapping file (labels scored)")
    parser.add_argument("--no-crop", action="store_true", help="NYUv2: evaluate whole images (non-standard)")
    parser.add_argument("--no-median-scaling", action="store_true", help="score the depth as metres")
    parser.add_argument("--depth-scale", type=float, default=0.0, help="metres per model unit (0: metadata)")
    parser.add_argument("--min-depth", type=float, default=0.1)
    parser.add_argument("--max-depth", type=float, default=10.0)
    parser.add_argument("--max-images", type=int, default=0, help="first N images only (0 = all)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of the backend (0 = default)")
    parser.add_argument("--output", default="", help="JSON file (default: print only)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from gam_depth_ros.inference import ModelLoadError, create_backend

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options: dict[str, Any] = {}
    if args.dataset == "nyu_mat":
        options = {"split": args.split, "crop": not args.no_crop}
        if args.class_mapping:
            options["class_mapping"] = args.class_mapping
    elif args.dataset == "nyu_h5":
        options = {"crop": not args.no_crop}
    try:
        items = make_eval_set(args.dataset, args.path, args.split_file or None, options)
        backend = create_backend(args.backend, args.model, threads=args.threads)
    except (DataError, ModelLoadError) as error:
        LOG.error("error: %s", error)
        return 2
    depth_scale = args.depth_scale or backend.metadata.depth_scale
    start = time.perf_counter()
    try:
        scores = evaluate_items(backend_predictor(backend, depth_scale), items, not args.no_median_scaling,
                                args.min_depth, args.max_depth, backend.metadata.num_classes, args.max_images)
    except (DataError, ValueError) as error:
        LOG.error("error: %s", error)
        return 2
    nyu = args.dataset in ("nyu_mat", "nyu_h5") and not args.no_crop
    result = {
        "model": str(args.model), "backend": backend.name, "device": backend.device,
        "dataset": args.dataset, "path": args.path, "split_file": args.split_file,
        "options": {
            "median_scaling": not args.no_median_scaling, "min_depth": args.min_depth, "max_depth": args.max_depth,
            "depth_scale": depth_scale, "input_size": list(backend.input_size), "max_images": args.max_images,
            "crop": "rows {}:{}, cols {}:{}".format(*NYU_EVAL_CROP) if nyu else "none",
            **({"split": args.split} if args.dataset == "nyu_mat" else {}),
            **({"class_mapping": args.class_mapping} if args.class_mapping else {}),
        },
        **scores,
        "seconds": round(time.perf_counter() - start, 3),
    }
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    depth = scores["depth"]
    LOG.info("%d images: abs_rel %.4f  sq_rel %.4f  rmse %.4f  rmse_log %.4f  log10 %.4f  "
             "d1 %.4f  d2 %.4f  d3 %.4f", scores["images"], *(depth[k] for k in depth))
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
