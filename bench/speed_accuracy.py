"""The speed/accuracy curve: trained models at several sizes, held-out accuracy beside CPU speed.

Each ``--model NAME=CHECKPOINT@HxW`` is exported at ``HxW`` with float16 weight storage (what
``scripts/package_demo_model.py`` ships) to a temporary folder and measured through the same code
the node runs (:func:`gam_depth_ros.inference.create_backend`, ONNX Runtime, CPU provider):

- held-out accuracy on ``--heldout`` (generated sequence folders; ``--per-sequence`` evenly spaced
  frames each, :func:`training.evaluate.sequence_folder_items`), median-scaled, with
  :func:`training.evaluate.evaluate_items`: overall AbsRel / delta1, object-pixel AbsRel, obstacle
  recall, depth-boundary F1; a constant depth (median-scaled) on the same frames is the floor;
- ONNX Runtime network time at 1 and 2 intra-op threads: all models in interleaved rounds
  (:func:`inference.interleaved_times`), median ms, so every figure comes from one run under one load;
- FLOPs (:func:`gam_depth_ros.networks.flops.count_flops`, depth + semantics), ONNX file size;
- the Jetson Orin Nano 8GB (15W, FP16 TensorRT) estimate of docs/jetson.md: network time =
  GFLOP / (10.2 TFLOPS x 0.20 utilisation), plus 1 ms of pre/post-processing -- an ESTIMATE.

The same weights can be listed at several sizes (the network is fully convolutional); the table
says which rows share weights. Usage::

    .venv/bin/python bench/speed_accuracy.py --heldout output/rich/heldout \\
        --model demo_192x256=models/demo/gam_depth_demo.safetensors@192x256 ... \\
        --output bench/results/speed_accuracy.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inference import interleaved_times  # noqa: E402

from bench.report import report_header, write_report  # noqa: E402
from gam_depth_ros.checkpoint import build_model, load_checkpoint  # noqa: E402
from gam_depth_ros.export import export_checkpoint  # noqa: E402
from gam_depth_ros.inference import create_backend  # noqa: E402
from gam_depth_ros.networks.flops import count_flops, gflop  # noqa: E402
from training.evaluate import backend_predictor, constant_depth, evaluate_items, sequence_folder_items  # noqa: E402

#: docs/jetson.md, "Performance estimate": Orin Nano 8GB at 15W, dense FP16 peak and utilisation.
ORIN_NANO_8GB_FP16_TFLOPS = 10.2
ORIN_UTILISATION = 0.20
ORIN_PIPELINE_MS = 1.0


def parse_model(text: str) -> tuple[str, Path, tuple[int, int]]:
    """``NAME=CHECKPOINT@HxW`` -> (name, checkpoint, (height, width))."""
    try:
        name, rest = text.split("=", 1)
        path, size = rest.rsplit("@", 1)
        height, width = (int(v) for v in size.split("x"))
        return name, Path(path), (height, width)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--model {text!r}: expected NAME=CHECKPOINT@HxW ({error})") from error


def accuracy(result: dict) -> dict:
    obstacles = result["obstacles"]
    return {"abs_rel": result["depth"]["abs_rel"], "delta1": result["depth"]["delta1"],
            "rmse": result["depth"]["rmse"], "object_abs_rel": obstacles.get("object_abs_rel"),
            "obstacle_recall": obstacles.get("obstacle_recall"), "boundary_f1": obstacles.get("boundary_f1"),
            **({"miou": result["semantic"]["miou"]} if "semantic" in result else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=parse_model, required=True,
                        help="NAME=CHECKPOINT@HxW (a .pt or .safetensors checkpoint and the input size)")
    parser.add_argument("--heldout", required=True, type=Path, help="folder of held-out sequence folders")
    parser.add_argument("--per-sequence", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20, help="timed rounds per thread count")
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    started = time.time()
    items = list(sequence_folder_items(args.heldout, args.per_sequence))
    constant = evaluate_items(constant_depth, items)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, checkpoint, (height, width) in args.model:
            onnx_path = Path(folder) / f"{name}.onnx"
            export_checkpoint(checkpoint, onnx_path, height, width, fp16_weights=True)
            flops = gflop(count_flops(build_model(load_checkpoint(checkpoint)), height, width)["total"])
            runner = create_backend("onnxruntime", onnx_path, threads=2)
            scored = evaluate_items(backend_predictor(runner, 1.0), items)
            jetson_ms = 1e3 * flops / (ORIN_NANO_8GB_FP16_TFLOPS * 1e3 * ORIN_UTILISATION) + ORIN_PIPELINE_MS
            rows[name] = {"checkpoint": str(checkpoint), "input": f"{height}x{width}", "gflop": flops,
                          "onnx_mb": onnx_path.stat().st_size / 1e6, **accuracy(scored),
                          "jetson_orin_nano_8gb_fp16_fps_estimate": 1e3 / jetson_ms}
            print(f"{name}: AbsRel {rows[name]['abs_rel']:.4f}, objects {rows[name]['object_abs_rel']:.4f}", flush=True)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runners = {}
            for name, _, (height, width) in args.model:
                backend = create_backend("onnxruntime", Path(folder) / f"{name}.onnx", threads=threads)
                batch = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
                runners[name] = (lambda b=backend, x=batch: b.run_network(x))
            times = interleaved_times(runners, warmup=3, runs=args.runs, gap_s=0.02)
            for name, samples in times.items():
                rows[name][f"ort_ms_{threads}_threads"] = 1e3 * statistics.median(samples)
    for row in rows.values():
        row["fps_2_threads"] = 1e3 / row["ort_ms_2_threads"]
    print("| model | input | AbsRel | object AbsRel | obstacle recall | boundary F1 | GFLOP | ORT ms 1 thr | "
          "ORT ms 2 thr | frames/s 2 thr | ONNX MB | Orin Nano FP16 FPS (estimate) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    c = accuracy(constant)
    print(f"| constant depth | - | {c['abs_rel']:.3f} | {c['object_abs_rel']:.3f} | {c['obstacle_recall']:.3f} | "
          f"{c['boundary_f1']:.3f} | | | | | | |")
    for name, r in rows.items():
        print(f"| {name} | {r['input']} | {r['abs_rel']:.3f} | {r['object_abs_rel']:.3f} | {r['obstacle_recall']:.3f} "
              f"| {r['boundary_f1']:.3f} | {r['gflop']:.2f} | {r['ort_ms_1_threads']:.1f} "
              f"| {r['ort_ms_2_threads']:.1f} "
              f"| {r['fps_2_threads']:.1f} | {r['onnx_mb']:.1f} | {r['jetson_orin_nano_8gb_fp16_fps_estimate']:.0f} |")
    write_report(args.output, {
        **report_header(argv, platform=platform.platform()),
        "heldout": {"folder": str(args.heldout), "frames": len(items), "per_sequence": args.per_sequence},
        "seconds": round(time.time() - started, 1), "constant_depth": accuracy(constant), "models": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
