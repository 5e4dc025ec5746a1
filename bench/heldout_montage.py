"""Pictures of a checkpoint on held-out frames: image | predicted depth | true depth | relative error.

One row per sequence (its ``--frame``-th frame), the prediction median-scaled to the ground truth,
drawn by :func:`gam_depth_ros.evaluation.figures.sample_montage` (error from 0, dark, to 50 %,
bright). Usage::

    .venv/bin/python bench/heldout_montage.py --checkpoint output/baseline/r192/checkpoints/step_00005789.pt \\
        --heldout output/richwm/heldout --sequences 4 --width 640 --output docs/images/rich192_heldout.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gam_depth_ros.evaluation.figures import sample_montage, save_png  # noqa: E402
from gam_depth_ros.image_resize import resize_image  # noqa: E402
from gam_depth_ros.inference import create_backend  # noqa: E402
from training.data.eval_sets import FolderEvalSet  # noqa: E402
from training.evaluate import backend_predictor  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--heldout", required=True, type=Path, help="folder of generated sequence folders")
    parser.add_argument("--sequences", type=int, default=4, help="the first N sequences, one row each")
    parser.add_argument("--frame", type=int, default=0, help="which frame of each sequence")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--width", type=int, default=0, help="shrink the picture to this width (0: as drawn)")
    args = parser.parse_args(argv)
    predict = backend_predictor(create_backend("torch", args.checkpoint, threads=2), 1.0)
    rows = []
    for intrinsics in sorted(args.heldout.glob("*/intrinsics.yaml"))[:args.sequences]:
        item = FolderEvalSet(intrinsics.parent)[args.frame]
        depth, _ = predict(item.rgb)
        valid = item.depth_m > 0
        depth = depth * np.median(item.depth_m[valid]) / np.median(depth[valid])
        rows.append((item.rgb, depth, item.depth_m))
    sample_montage(rows, args.output)
    if args.width:
        drawn = cv2.cvtColor(cv2.imread(str(args.output)), cv2.COLOR_BGR2RGB)
        save_png(args.output, resize_image(drawn, round(drawn.shape[0] * args.width / drawn.shape[1]), args.width))
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
