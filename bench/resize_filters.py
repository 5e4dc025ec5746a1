"""OpenCV against Pillow for the runtime's image work: the shipped model's accuracy and the CPU cost.

The runtime resizes camera frames with OpenCV (``gam_depth_ros/image_resize.py``: area filter when
shrinking); before, it used Pillow's anti-aliased bilinear filter. The shipped model was trained on
frames rendered at its input size (no resize), so neither filter is "its" filter: this measures
which one the model reads better on frames rendered at camera sizes, and what each costs.

- accuracy: the shipped ONNX model on held-out rooms rendered at 640x480 and 256x192, each frame
  resized to the network input by one filter, the prediction scored by the evaluation protocol
  (``training.evaluate.evaluate_items``: median-scaled AbsRel, delta1, object-pixel AbsRel);
- speed, interleaved in one run, OpenCV on one thread as the node runs it: resize 640x480 -> network
  input, JPEG decode of a 640x480 frame, bgr8 -> rgb8 (before: a strided numpy view copied by
  Pillow's ``fromarray``); the ratio Pillow / OpenCV (above 1: OpenCV is faster).

Seeds: generator seed 23 (the plain held-out rooms, docs/training.md) and seed 22 (the rich held-out
rooms); neither was used to choose the filter (OpenCV's documented choice for decimation, taken
before this measurement).

Usage::

    .venv/bin/python bench/resize_filters.py --output bench/results/resize_filters.json
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench.report import report_header, write_report  # noqa: E402
from gam_depth_ros.image_codec import decode_compressed  # noqa: E402
from gam_depth_ros.image_resize import limit_opencv_threads  # noqa: E402
from gam_depth_ros.inference import create_backend  # noqa: E402
from gam_depth_ros.inference.preprocessing import resize_rgb  # noqa: E402
from training.evaluate import evaluate_items, sequence_folder_items  # noqa: E402

MODEL = REPO / "models" / "demo" / "gam_depth_demo.onnx"
SETS = {"plain_640x480": (23, "plain", 480, 640), "plain_256x192": (23, "plain", 192, 256),
        "rich_640x480": (22, "rich", 480, 640)}


def pillow_resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """The runtime's previous filter: Pillow's bilinear, widened when shrinking (anti-aliased)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height), Image.BILINEAR))


FILTERS = {"opencv": resize_rgb, "pillow": pillow_resize}


def render(folder: Path, seed: int, style: str, height: int, width: int, sequences: int, frames: int) -> Path:
    if not any(folder.glob("*/intrinsics.yaml")):
        subprocess.run([sys.executable, "-m", "training.synthetic.generate", "--output", str(folder),
                        "--sequences", str(sequences), "--frames", str(frames), "--height", str(height),
                        "--width", str(width), "--seed", str(seed), "--style", style, "--motion", "mixed"],
                       check=True, cwd=REPO)
    return folder


def accuracy(folder: Path, per_sequence: int) -> dict:
    runner = create_backend("onnxruntime", MODEL, threads=2)
    height, width = runner.input_size
    items = list(sequence_folder_items(folder, per_sequence))
    scores = {}
    for name, resize in FILTERS.items():
        def predict(rgb, resize=resize):
            prediction = runner.infer(resize(rgb, height, width), output_size=rgb.shape[:2])
            return prediction.depth.astype(np.float64), prediction.labels

        result = evaluate_items(predict, items)
        scores[name] = {"abs_rel": result["depth"]["abs_rel"], "delta1": result["depth"]["delta1"],
                        "object_abs_rel": result["obstacles"].get("object_abs_rel"), "images": result["images"],
                        "miou": result.get("semantic", {}).get("miou")}
    return scores


def speed(repeats: int) -> dict:
    limit_opencv_threads(1)  # as the node runs it (Pillow is single-threaded too)
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 2.0)
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=90)
    jpeg = buffer.getvalue()
    bgr = np.ascontiguousarray(frame[:, :, ::-1])
    cases = {
        "resize_640x480_to_96x128": (lambda: resize_rgb(frame, 96, 128), lambda: pillow_resize(frame, 96, 128)),
        "resize_640x480_to_288x384": (lambda: resize_rgb(frame, 288, 384), lambda: pillow_resize(frame, 288, 384)),
        "jpeg_decode_640x480": (lambda: decode_compressed(jpeg, "jpeg"),
                                lambda: np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))),
        "bgr8_to_rgb8_640x480": (lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                                 lambda: np.asarray(Image.fromarray(bgr[:, :, ::-1]))),
    }
    results = {}
    for name, (opencv, pillow) in cases.items():
        times = {"opencv": [], "pillow": []}
        for _ in range(repeats):  # interleaved, so load changes hit both alike
            for label, call in (("opencv", opencv), ("pillow", pillow)):
                start = time.perf_counter()
                call()
                times[label].append(time.perf_counter() - start)
        medians = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
        results[name] = {"opencv_ms": medians["opencv"], "pillow_ms": medians["pillow"],
                         "pillow_over_opencv": medians["pillow"] / medians["opencv"]}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "output" / "bench_resize_filters")
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=40, help="frames rendered per sequence")
    parser.add_argument("--per-sequence", type=int, default=10, help="frames scored per sequence")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    report = {"opencv": cv2.__version__,
              "pillow": Image.__version__ if hasattr(Image, "__version__") else None, "model": MODEL.name,
              "accuracy": {}, "speed": speed(args.repeats)}
    for name, (seed, style, height, width) in SETS.items():
        folder = render(args.data / name, seed, style, height, width, args.sequences, args.frames)
        report["accuracy"][name] = {"seed": seed, **accuracy(folder, args.per_sequence)}
    report = {**report_header(argv, load_avg_before=load_before, load_avg_after=os.getloadavg()), **report}
    for name, case in report["speed"].items():
        print(f"{name:28s} OpenCV {case['opencv_ms']:7.3f} ms  Pillow {case['pillow_ms']:7.3f} ms  "
              f"Pillow/OpenCV {case['pillow_over_opencv']:.2f}")
    for name, scores in report["accuracy"].items():
        line = "  ".join(f"{f}: AbsRel {s['abs_rel']:.4f} objects {s['object_abs_rel']:.4f} delta1 {s['delta1']:.3f}"
                         for f, s in scores.items() if isinstance(s, dict))
        print(f"{name:16s} {line}")
    write_report(args.output, report)
    if args.output:
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
