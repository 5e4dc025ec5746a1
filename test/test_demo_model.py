"""The shipped demo model (models/demo/): within its size budget, complete metadata, and it has learnt.

Held-out frames are rich rooms (the model's training style) rendered here from a generator seed used
for nothing else (58; training used 20, 24 and 25, validation 27, the held-out scores 22: docs/data.md); the
model must beat a constant depth clearly (median scaling, the self-supervised protocol), predict
depth of the right size without any scaling (it was trained with metric camera poses; its scale is still off
by up to 2x from room to room, so a robot uses floor mode for metres), and label most pixels right.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import node_log, start_node, stop_node

from gam_depth_ros.demo_model import SOURCE_TREE_DEMO_MODEL, shipped_demo_model
from gam_depth_ros.evaluation.metrics import SemanticAccumulator, single_image_depth_metrics
from gam_depth_ros.inference import create_backend
from training.synthetic.generate import render_sequence

DEMO = SOURCE_TREE_DEMO_MODEL.parent
HELDOUT_SEED = 58
SUPERSAMPLE = 1  # one ray per pixel: 6 s for the 124 frames; 3x3 (the training data's) scored the same within 0.002


@pytest.fixture(scope="module")
def heldout_frames():
    """(rgb, depth, labels) of every 10th frame of two robot and two hand-held rich-room sequences at 192x256."""
    frames = []
    for index, motion in enumerate(("robot", "handheld", "robot", "handheld")):
        sequence = render_sequence(HELDOUT_SEED, index, 31, 192, 256, motion, style="rich", supersample=SUPERSAMPLE)
        frames += [(sequence.images[i], sequence.depth[i], sequence.labels[i]) for i in range(0, 31, 10)]
    return frames


@pytest.fixture(scope="module")
def scores(heldout_frames):
    backend = create_backend("onnxruntime", DEMO / "gam_depth_demo.onnx", threads=2)
    rows = {"model": [], "model_metric": [], "constant": []}
    semantic = SemanticAccumulator()
    for rgb, depth, labels in heldout_frames:
        prediction = backend.infer(rgb, output_size=rgb.shape[:2])
        pred = prediction.depth.astype(np.float64) * backend.metadata.depth_scale
        gt = depth.astype(np.float64)
        rows["model"].append(single_image_depth_metrics(pred, gt, True, 0.1, 10.0))
        rows["model_metric"].append(single_image_depth_metrics(pred, gt, False, 0.1, 10.0))
        rows["constant"].append(single_image_depth_metrics(np.ones_like(gt), gt, True, 0.1, 10.0))
        semantic.add(prediction.labels, labels)
    means = {name: {k: float(np.mean([r[k] for r in values])) for k in ("abs_rel", "delta1")}
             for name, values in rows.items()}
    scale_to_truth = float(np.median([r["scale"] for r in rows["model"]]))  # the median-scaling factors
    return means | {"semantic": semantic.result(), "scale_to_truth": scale_to_truth}


def test_files_fit_the_budget_and_carry_their_metadata():
    files = sorted(DEMO.iterdir())
    assert {p.name for p in files} >= {"gam_depth_demo.onnx", "gam_depth_demo.json", "gam_depth_demo.safetensors"}
    assert sum(p.stat().st_size for p in files) <= 20 * 1024 * 1024
    metadata = json.loads((DEMO / "gam_depth_demo.json").read_text())
    assert (metadata["input_height"], metadata["input_width"]) == (192, 256)
    assert metadata["weights_dtype"] == "float16" and len(metadata["class_names"]) == 40
    assert metadata["training_config"]["networks"]["pose_source"] == "data"
    assert shipped_demo_model() is not None and Path(shipped_demo_model()).name == "gam_depth_demo.onnx"


def test_depth_beats_a_constant_depth_clearly(scores):
    # Measured (2026-12-07, the model shipped at 10:00 UTC): AbsRel 0.216 vs constant 0.331 on these 16 frames (0.65x;
    # the model before it 0.209, the 160-room model 0.197); delta1 0.734 vs 0.535.
    assert scores["model"]["abs_rel"] < 0.7 * scores["constant"]["abs_rel"], scores
    assert scores["model"]["delta1"] > scores["constant"]["delta1"] + 0.1, scores


def test_depth_without_scaling_is_near_the_truths_size_but_not_metres(scores):
    # Trained with metric poses, the depth needs no rescaling to be of the right size, but it is too far here:
    # the truth is 0.76x the prediction (median over the frames; the 160-room model 0.63x), metric AbsRel 0.47
    # against the median-scaled 0.22. Floor mode (README) gives a robot its metres where the floor fits.
    assert 0.65 < scores["scale_to_truth"] < 0.85, scores


def test_labels_are_mostly_right(scores):
    # Measured (2026-12-07, the model shipped at 10:00 UTC): pixel accuracy 0.790, mIoU 0.165 (22 classes present).
    assert scores["semantic"]["pixel_acc"] > 0.73, scores["semantic"]


def test_node_without_model_path_runs_the_demo_model(tmp_path):
    process = start_node({"threads": 1}, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "network input" not in node_log(process) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        log = node_log(process)
    finally:
        code = stop_node(process)
    assert "model_path not set: using the shipped demo model" in log and "gam_depth_demo.onnx" in log, log
    assert "gam_depth_demo.onnx on onnxruntime" in log and "network input 256x192" in log and code == 0, log
