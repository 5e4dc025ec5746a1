"""What depth does the training loss itself prefer? Per-frame optimisation without a network.

For evenly spaced training samples of a folder of generated sequences (their target frame, the
sources of the config's ``frame_ids`` and the data's poses), a free depth map is optimised to
minimise the run's own objective (:func:`training.objective.compute_objective`: photometric term
with the minimum reprojection and automask, the gradient-aware mask when enabled, smoothness at the
config's scales; no semantic term, no network). The depth is a coarse-to-fine pyramid of logits
(levels of 1/1 ... 1/32 of the image, summed after bilinear upsampling, through the network's
sigmoid disparity; :mod:`training.fitted_depth`, which also writes such maps for distillation), so
that textureless regions are filled from their surroundings as a network would rather than left at
the start value.

The optimised depth is scored like a model on the held-out protocol (median-scaled AbsRel, object
pixels, obstacle recall, boundary F1; :func:`training.evaluate.evaluate_items`) beside a constant
depth, and its loss is compared with the loss of the true depth on the same samples:

- optimised AbsRel near 0 and loss near the truth's: the loss pins the geometry; what a network
  trained on it lacks is capacity, steps or rooms;
- optimised loss *below* the truth's with a large AbsRel: the loss alone prefers a wrong depth;
  what keeps a network nearer the truth is then its own structure (``--depth network``) or the
  loss's settings (``--set loss....``).

``--depth network`` replaces the free map by one fresh depth network of the config, trained on all
the samples at once (``--steps`` Adam steps on one batch): how close a network's own structure
brings the same loss to the truth on frames it fits (a network is not a free map: it smooths by
itself), not how it carries to new rooms.

Seeds: run it on validation rooms (seed 21 in docs/data.md) only: settings chosen with it are
choices. Usage::

    .venv/bin/python bench/loss_ceiling.py --config config/train_rich192.yaml --data output/richwm/val \\
        --samples 24 --steps 300 --set loss.smoothness_weight=1e-2 --output bench/results/loss_ceiling.json
    .venv/bin/python bench/loss_ceiling.py --config config/train_rich192.yaml --data output/richwm/val \\
        --samples 6 --steps 400 --depth network --lr 5e-4 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import report_header, write_report  # noqa: E402
from bench.speed_accuracy import accuracy  # noqa: E402
from gam_depth_ros.inference.postprocessing import disparity_to_depth  # noqa: E402
from training.config import load_training_config  # noqa: E402
from training.evaluate import constant_depth, evaluate_items, sample_eval_item  # noqa: E402
from training.fitted_depth import disparity_inside, fit_depth, objective_of  # noqa: E402
from training.mask_calibration import resolve_mask  # noqa: E402
from training.objective import compute_objective  # noqa: E402
from training.trainer import build_model, make_dataset  # noqa: E402

REPORTED_TERMS = ("total", "photometric", "smoothness", "planar", "normal")


def optimise(batch: dict, config, mask, steps: int, lr: float, from_truth: bool = False,
             ) -> tuple[np.ndarray, dict[str, float]]:
    """Depth ``[H,W]`` minimising the objective of one sample (:func:`training.fitted_depth.fit_depth`),
    and its final loss terms.

    The start is a constant ``networks.initial_depth`` (what a network starts from), or with
    ``from_truth`` the ground-truth depth: a diagnostic of whether the loss keeps the truth.
    """
    depth, terms = fit_depth(batch, config, mask, steps, lr, batch["depth_gt"] if from_truth else None)
    return depth[0, 0].numpy().astype(np.float64), {name: float(terms[name]) for name in REPORTED_TERMS}


def fit_network(batches: list[dict], config, mask, steps: int, lr: float) -> list[tuple[np.ndarray, dict[str, float]]]:
    """A fresh depth network of the config trained on these samples alone (one batch of all of them, the
    trainer's forward and objective, Adam): each sample's depth ``[H,W]`` and loss terms at the end.

    Beside the free pyramid this asks whether the network reaches what the loss allows on frames it
    is trained on (a fit, not generalisation)."""
    batch = {key: torch.cat([b[key] for b in batches]) for key in batches[0]}
    model = build_model(config)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def forward() -> dict:
        return model(batch["images"], batch["K"][:, 0], batch["inv_K"][:, 0], with_semantics=False,
                     poses=batch["poses"][:, 1:])

    for _ in range(steps):
        total, _ = compute_objective(batch, forward(), config, semantic_active=False, mask_config=mask)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    results = []
    with torch.no_grad():
        outputs = forward()  # still in training mode: the batch statistics the steps used
        for i in range(len(batches)):
            one = {key: value[i:i + 1] for key, value in batch.items()}
            _, terms = compute_objective(one, {"disparities": [d[i:i + 1] for d in outputs["disparities"]],
                                               "T_source_target": outputs["T_source_target"][i:i + 1]},
                                         config, semantic_active=False, mask_config=mask)
            depth = disparity_to_depth(outputs["disparities"][0][i, 0], config.model.min_depth, config.model.max_depth)
            results.append((depth.numpy().astype(np.float64), {name: float(terms[name]) for name in REPORTED_TERMS}))
    return results


def loss_at_depth(depth: torch.Tensor, batch: dict, config, mask) -> dict[str, float]:
    """The objective's terms for one sample at a given depth ``[1,1,H,W]`` in metres (clamped just inside
    the model's range, as a network's sigmoid would give it)."""
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(0)  # the automask's tie-breaking noise: the same draw whatever ran before
        disparity = disparity_inside(depth.float(), config.model.min_depth, config.model.max_depth)
        terms = objective_of(disparity, batch, config, mask)[1]
    return {name: float(terms[name]) for name in REPORTED_TERMS}


def true_depth_loss(batch: dict, config, mask) -> dict[str, float]:
    """The objective's terms at the ground-truth depth (the loss a perfect network would have)."""
    return loss_at_depth(batch["depth_gt"], batch, config, mask)


def evenly_spaced(count: int, total: int) -> list[int]:
    return sorted({int(i) for i in np.linspace(0, total - 1, count)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="training config (its loss, frame_ids, sizes)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--data", required=True, type=Path, help="folder of generated sequence folders")
    parser.add_argument("--samples", type=int, default=24, help="evenly spaced samples of the folder")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps (per sample for the pyramid)")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--start", choices=("constant", "true"), default="constant",
                        help="start from networks.initial_depth, or from the true depth (does the loss keep it?)")
    parser.add_argument("--depth", choices=("pyramid", "network"), default="pyramid",
                        help="a free depth map per sample, or the config's depth network trained on the samples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    if args.depth == "network" and args.start == "true":
        parser.error("--start true needs --depth pyramid (a network starts from its initialisation)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # the automask's tie-breaking noise: the same figures on every run
    started = time.time()
    config = load_training_config(args.config, args.overrides)
    data = replace(config.data, path=str(args.data), augment=None)
    dataset = make_dataset(data, config, train=True)
    mask = resolve_mask(config.loss.mask, dataset, config.train.seed)
    indices = evenly_spaced(args.samples, len(dataset))
    batches = [{key: value.unsqueeze(0) for key, value in dataset[index].items()} for index in indices]
    if args.depth == "network":
        fitted = fit_network(batches, config, mask, args.steps, args.lr)
    else:
        fitted = [optimise(batch, config, mask, args.steps, args.lr, args.start == "true") for batch in batches]
    items, predicted, losses = [], {}, {"optimised": [], "true_depth": []}
    for index, batch, (depth, terms) in zip(indices, batches, fitted):
        items.append(sample_eval_item({key: value[0] for key, value in batch.items()}, f"sample_{index}"))
        predicted[items[-1].rgb.tobytes()] = depth
        losses["optimised"].append(terms)
        losses["true_depth"].append(true_depth_loss(batch, config, mask))
        print(f"sample {index}: loss {terms['total']:.4f} (true depth {losses['true_depth'][-1]['total']:.4f}), "
              f"photometric {terms['photometric']:.4f} ({losses['true_depth'][-1]['photometric']:.4f})", flush=True)
    scored = accuracy(evaluate_items(lambda rgb: (predicted[rgb.tobytes()], None), items))
    constant = accuracy(evaluate_items(constant_depth, items))
    report = {
        **report_header(argv, threads=args.threads),
        "samples": len(items), "depth": args.depth, "steps": args.steps, "lr": args.lr, "start": args.start,
        "optimised_depth": scored, "constant_depth": constant,
        "loss": {name: {term: float(np.mean([v[term] for v in values])) for term in REPORTED_TERMS}
                 for name, values in losses.items()},
        "loss_below_true_fraction": float(np.mean([o["total"] < t["total"] for o, t in
                                                   zip(losses["optimised"], losses["true_depth"])])),
        "seconds": round(time.time() - started, 1),
    }
    print(f"optimised depth: AbsRel {scored['abs_rel']:.3f} (constant {constant['abs_rel']:.3f}), objects "
          f"{scored['object_abs_rel']:.3f} (constant {constant['object_abs_rel']:.3f}), boundary F1 "
          f"{scored['boundary_f1']:.3f}; loss {report['loss']['optimised']['total']:.4f} vs true depth "
          f"{report['loss']['true_depth']['total']:.4f}", flush=True)
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
