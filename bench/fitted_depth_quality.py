"""How good are the maps ``gam-depth-fit-depth`` wrote? Scores them against the ground truth.

The fitted maps (:mod:`training.fitted_depth`) are what a distilling run learns from; this reads
every target of the given folders that has one (as the trainer reads them: the config's size,
frame spacing and ``min_baseline``), and scores the map like a model on the held-out protocol
(median-scaled AbsRel, object pixels, obstacle recall, boundary F1; object pixels from the
folders' ``labels/``, the generator's proxy labels) beside a constant depth, and once without
median scaling (the maps are metric: the data's poses give them the scale). Only the pinned
pixels of a map are scored (the others are given as NaN, which the metrics skip), the constant on
the same pixels; ``pinned_fraction`` says how much of a frame that is. Ground truth is read here
only to score; the maps never saw it. Usage::

    .venv/bin/python bench/fitted_depth_quality.py --config config/train_rich192.yaml \\
        --data output/richwm/train --data output/rich24/train --output bench/results/fitted_depth_quality.json
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import report_header, write_report  # noqa: E402
from bench.speed_accuracy import accuracy  # noqa: E402
from gam_depth_ros.evaluation.figures import sample_montage  # noqa: E402
from training.config import load_training_config  # noqa: E402
from training.data.eval_sets import EvalItem  # noqa: E402
from training.evaluate import evaluate_items, sample_eval_item  # noqa: E402
from training.trainer import make_dataset  # noqa: E402


def draw(items: list[EvalItem], maps: dict[bytes, np.ndarray], count: int, path: Path) -> None:
    """``count`` evenly spaced items as rows of image | fitted map (not pinned: black) | truth | error."""
    rows = [items[int(i)] for i in np.linspace(0, len(items) - 1, count)]
    sample_montage([(item.rgb, np.nan_to_num(maps[item.rgb.tobytes()], nan=0.0), item.depth_m) for item in rows], path)


def fitted_items(config, folder: str) -> tuple[list[EvalItem], dict[bytes, np.ndarray]]:
    """Evaluation items of the targets with a fitted map in ``folder``, and each map by its image's bytes."""
    data = replace(config.data, path=folder, augment=None,
                   options={**config.data.options, "require_fitted_depth": True})
    dataset = make_dataset(data, config, train=True)
    items, maps = [], {}
    for index in range(len(dataset)):
        sample = dataset[index]
        items.append(sample_eval_item(sample, f"{folder}:{index}"))
        depth = sample["depth_fitted"][0].numpy().astype(np.float64)
        maps[items[-1].rgb.tobytes()] = np.where(depth > 0, depth, np.nan)  # not pinned: not scored
    return items, maps


def score_folder(config, folder: str, montage: Path | None = None, rows: int = 4) -> dict:
    """Scores of the maps of one folder, median-scaled and metric, beside a constant depth's on the same pixels
    (and a picture of ``rows`` of them in ``montage``)."""
    items, maps = fitted_items(config, folder)
    if montage is not None:
        draw(items, maps, rows, montage)

    def fitted(rgb: np.ndarray) -> tuple[np.ndarray, None]:
        return maps[rgb.tobytes()], None

    return {
        "maps": len(items),
        "pinned_fraction": float(np.mean([np.isfinite(depth).mean() for depth in maps.values()])),
        "fitted": accuracy(evaluate_items(fitted, items)),
        "constant": accuracy(evaluate_items(lambda rgb: (np.where(np.isfinite(maps[rgb.tobytes()]), 1.0, np.nan),
                                                         None), items)),
        "fitted_metric": accuracy(evaluate_items(fitted, items, median_scaling=False)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="the config the maps were fitted with")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--data", action="append", required=True, help="folder of sequence folders with fitted maps")
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    parser.add_argument("--montage", type=Path, default=None,
                        help="PNG of evenly spaced maps of the first folder (image, map, truth, error)")
    parser.add_argument("--rows", type=int, default=4, help="rows of the montage")
    args = parser.parse_args(argv)
    started = time.time()
    config = load_training_config(args.config, args.overrides)
    report = {**report_header(argv), "folders": {}}
    for number, folder in enumerate(args.data):
        scores = score_folder(config, folder, args.montage if number == 0 else None, args.rows)
        report["folders"][folder] = scores
        print(f"{folder}: {scores['maps']} maps: AbsRel {scores['fitted']['abs_rel']:.3f} (constant "
              f"{scores['constant']['abs_rel']:.3f}), objects {scores['fitted']['object_abs_rel']:.3f} "
              f"({scores['constant']['object_abs_rel']:.3f}), boundary F1 {scores['fitted']['boundary_f1']:.3f}; "
              f"without median scaling {scores['fitted_metric']['abs_rel']:.3f}; "
              f"{100 * scores['pinned_fraction']:.0f} % of the pixels pinned", flush=True)
    report["seconds"] = round(time.time() - started, 1)
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
