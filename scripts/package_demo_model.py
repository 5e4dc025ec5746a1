"""Package a trained checkpoint as the shipped demo model (``models/demo/``), within 20 MB.

Writes, from a training checkpoint:

- ``gam_depth_demo.safetensors``: the depth + semantic network's weights in float16 (the start
  point for fine-tuning, ``networks.init_checkpoint``), its ``ModelConfig`` and training config;
- ``gam_depth_demo.onnx`` + ``gam_depth_demo.json``: exported from those float16-rounded weights
  with ``--fp16-weights`` (float16 storage, float32 compute), verified against torch.

With ``--heldout DIR`` (a folder of generated sequence folders) it scores the float32 checkpoint
and the shipped ONNX model on the same held-out frames, so the cost of the compression is a
measured number, and draws ``docs/images/demo_model_heldout.png`` (per row: image | predicted
depth | ground-truth depth | predicted labels | ground-truth labels; depth colours share one
range per row, the prediction median-scaled to the ground truth). Usage::

    .venv/bin/python scripts/package_demo_model.py --checkpoint runs/demo/checkpoints/step_N.pt \\
        --heldout output/demo_training/heldout
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from gam_depth_ros.checkpoint import build_model, load_checkpoint, save_checkpoint  # noqa: E402
from gam_depth_ros.colorize import colorize_depth, colorize_labels  # noqa: E402
from gam_depth_ros.export import export_checkpoint  # noqa: E402
from gam_depth_ros.inference import create_backend  # noqa: E402
from training.evaluate import backend_predictor, constant_depth, evaluate_items, sequence_folder_items  # noqa: E402

MAX_TOTAL_BYTES = 20 * 1024 * 1024
STEM = "gam_depth_demo"


def score(model_path: Path, backend: str, heldout: Path, per_sequence: int) -> dict:
    runner = create_backend(backend, model_path, threads=2)
    return evaluate_items(backend_predictor(runner, 1.0), sequence_folder_items(heldout, per_sequence))


def draw_heldout_figure(model_path: Path, heldout: Path, output: Path, rows: int = 4) -> None:
    """Montage of the shipped model on ``rows`` held-out frames, one from each sequence."""
    runner = create_backend("onnxruntime", model_path, threads=2)
    lines = []
    for item in list(sequence_folder_items(heldout, 1))[:rows]:
        prediction = runner.infer(item.rgb, output_size=item.rgb.shape[:2])
        valid = np.isfinite(item.depth_m) & (item.depth_m > 0)
        depth = prediction.depth * np.median(item.depth_m[valid]) / np.median(prediction.depth[valid])
        lo, hi = np.percentile(item.depth_m[valid], [1, 99])
        panels = [item.rgb, colorize_depth(depth, lo, hi), colorize_depth(item.depth_m, lo, hi),
                  colorize_labels(prediction.labels)]
        if item.labels is not None:
            panels.append(colorize_labels(item.labels))
        lines.append(np.concatenate(panels, axis=1))
    output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(lines, axis=0)).save(output)
    print(f"wrote {output}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="training checkpoint (.pt)")
    parser.add_argument("--output-dir", type=Path, default=REPO / "models" / "demo")
    parser.add_argument("--heldout", type=Path, help="folder of held-out sequence folders to score on")
    parser.add_argument("--per-sequence", type=int, default=10, help="held-out frames per sequence")
    args = parser.parse_args(argv)

    checkpoint = load_checkpoint(args.checkpoint)
    net = build_model(checkpoint)  # single-scale network: the extra training heads are dropped
    half = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    weights = save_checkpoint(args.output_dir / f"{STEM}.safetensors", half, checkpoint.model_config,
                              checkpoint.training_config)
    onnx_path = args.output_dir / f"{STEM}.onnx"
    _, report = export_checkpoint(weights, onnx_path, fp16_weights=True)
    files = [weights, onnx_path, onnx_path.with_suffix(".json")]
    total = sum(f.stat().st_size for f in files)
    for f in files:
        print(f"{f.relative_to(REPO) if f.is_relative_to(REPO) else f}: {f.stat().st_size / 1e6:.2f} MB")
    print(f"total {total / 1e6:.2f} MB; ONNX vs torch: max disparity diff {report.max_disparity_diff:.2e}, "
          f"labels agree {100 * report.label_agreement:.3f} %")
    if total > MAX_TOTAL_BYTES:
        print(f"error: the demo model is {total / 2**20:.1f} MiB, over the 20 MiB budget", file=sys.stderr)
        return 1
    if args.heldout:
        full = score(args.checkpoint, "torch", args.heldout, args.per_sequence)
        shipped = score(onnx_path, "onnxruntime", args.heldout, args.per_sequence)
        constant = evaluate_items(constant_depth, sequence_folder_items(args.heldout, args.per_sequence))  # the floor
        summary = {name: {"images": r["images"], **r["depth"], **r["obstacles"], **r.get("semantic", {})}
                   for name, r in (("float32 checkpoint (torch)", full), ("shipped fp16-weight ONNX", shipped),
                                   ("constant depth (median-scaled)", constant))}
        print(json.dumps(summary, indent=2))
        cost = shipped["depth"]["abs_rel"] - full["depth"]["abs_rel"]
        print(f"compression cost: AbsRel {full['depth']['abs_rel']:.4f} -> {shipped['depth']['abs_rel']:.4f} "
              f"({cost:+.4f}); delta1 {full['depth']['delta1']:.4f} -> {shipped['depth']['delta1']:.4f}")
        ratio = shipped["obstacles"]["object_abs_rel"] / constant["obstacles"]["object_abs_rel"]
        print(f"object-pixel AbsRel {shipped['obstacles']['object_abs_rel']:.4f} = {ratio:.3f} x the constant "
              f"depth's {constant['obstacles']['object_abs_rel']:.4f}")
        summary["heldout"] = {"folder": str(args.heldout), "frames_per_sequence": args.per_sequence,
                              "object_abs_rel_vs_constant": ratio}
        (args.output_dir / "heldout_scores.json").write_text(json.dumps(summary, indent=2) + "\n")
        draw_heldout_figure(onnx_path, args.heldout, REPO / "docs" / "images" / "demo_model_heldout.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
