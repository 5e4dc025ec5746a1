"""Does a model fail to learn its training rooms, or fail to carry them to new rooms?

Scores one checkpoint, with the held-out protocol of ``bench/speed_accuracy.py`` (evenly spaced
frames of every sequence, median-scaled, :func:`training.evaluate.evaluate_items`), on several
folders of generated sequences: its own training rooms beside validation rooms, each next to a
constant depth on the same frames. A model far better on its training rooms than on new ones has
learnt the rooms, not the geometry: more rooms, not more steps, is then what it lacks. Each
sequence is also scored alone, with how far its camera travelled (``poses.txt``), so rooms whose
camera only turned (no depth to learn from, docs/data.md ``min_baseline``) can be told apart. Usage::

    .venv/bin/python bench/fit_gap.py --checkpoint output/richwm/run/checkpoints/step_00005120.pt \\
        --set training=output/richwm/train --set validation=output/richwm/val --output bench/results/fit_gap.json
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.flip_average import flip_averaged  # noqa: E402
from bench.report import checkpoint_sets_parser, write_sets_report  # noqa: E402
from bench.speed_accuracy import accuracy  # noqa: E402
from gam_depth_ros.inference import create_backend  # noqa: E402
from training.data.eval_sets import FolderEvalSet  # noqa: E402
from training.data.poses import read_pose_file  # noqa: E402
from training.evaluate import (  # noqa: E402
    backend_predictor,
    constant_depth,
    evaluate_items,
    evenly_spaced_frames,
    sequence_folder_items,
)


class RememberedPredictor:
    """``predict`` run once per distinct image: the set's score and the per-sequence scores use the
    same frames, loaded twice (:meth:`forget` between sets bounds the memory)."""

    def __init__(self, predict) -> None:
        self.predict = predict
        self.outputs: dict[bytes, tuple] = {}

    def __call__(self, rgb: np.ndarray):
        key = hashlib.blake2b(rgb.tobytes(), digest_size=16).digest() + repr(rgb.shape).encode()
        if key not in self.outputs:
            self.outputs[key] = self.predict(rgb)
        return self.outputs[key]

    def forget(self) -> None:
        self.outputs.clear()


def per_sequence(model, folder: Path, count: int) -> list[dict]:
    """Model and constant AbsRel on ``count`` evenly spaced frames of each sequence (the frames the set's
    score uses), and the camera's path in metres."""
    rows = []
    for intrinsics in sorted(folder.glob("*/intrinsics.yaml")):
        frames = FolderEvalSet(intrinsics.parent)
        items = evenly_spaced_frames(frames, count)
        poses = read_pose_file(intrinsics.parent / "poses.txt", len(frames))
        rows.append({"sequence": intrinsics.parent.name,
                     "camera_path_m": float(np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1).sum()),
                     "abs_rel": evaluate_items(model, items)["depth"]["abs_rel"],
                     "constant_abs_rel": evaluate_items(constant_depth, items)["depth"]["abs_rel"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = checkpoint_sets_parser(__doc__.splitlines()[0], ".pt or .safetensors checkpoint", per_sequence=10)
    parser.add_argument("--flip-average", action="store_true",
                        help="average each frame's disparity with its mirror image's (bench/flip_average.py)")
    args = parser.parse_args(argv)
    started = time.time()
    backend = create_backend("torch", args.checkpoint, threads=args.threads)
    if args.flip_average:
        backend.run_network = flip_averaged(backend.run_network)
    model = RememberedPredictor(backend_predictor(backend, 1.0))
    results = {}
    for name, folder in args.sets:
        items = list(sequence_folder_items(folder, args.per_sequence))
        scored = accuracy(evaluate_items(model, items))
        constant = accuracy(evaluate_items(constant_depth, items))
        results[name] = {"folder": str(folder), "images": len(items), "model": scored, "constant_depth": constant,
                         "sequences": per_sequence(model, folder, args.per_sequence)}
        model.forget()
        print(f"{name}: AbsRel {scored['abs_rel']:.3f} (constant {constant['abs_rel']:.3f}), objects "
              f"{scored['object_abs_rel']:.3f} (constant {constant['object_abs_rel']:.3f}), {len(items)} frames",
              flush=True)
    write_sets_report(args, argv, time.time() - started, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
