#!/bin/bash
# Does depth learn on a room style? One small run: 64x96, 1500 steps, exact poses from the data, full
# GAM-Depth losses (mask + semantics on light label noise), one CPU thread; scored median-scaled on 4
# held-out sequences of generator seed 51 (10 frames each) against a constant depth.
#   bench/room_styles.sh STYLE TRAIN_SEED [CAMERA_HEIGHT] [WAYPOINT_MARGIN]
#     STYLE: plain | rich | rich_nonperiodic | rich_unlit; CAMERA_HEIGHT "" for the style's default; WAYPOINT_MARGIN
#     (metres, training rooms only: the held-out rooms keep the default trajectories)
# Prints one JSON line; the runs behind docs/training.md ("Rich rooms") are in
# bench/results/room_styles.json. Data and runs go to output/room_styles/.
set -euo pipefail
STYLE=$1; SEED=$2; HEIGHT=${3:-}; WAYPOINTS=${4:-}
cd "$(dirname "$0")/.."
PY=.venv/bin/python
TAG=${STYLE}_s${SEED}${HEIGHT:+_h$HEIGHT}${WAYPOINTS:+_wm$WAYPOINTS}; D=output/room_styles/$TAG
CAM=(); [ -n "$HEIGHT" ] && CAM=(--camera-height "$HEIGHT")
SS=3; [ "$STYLE" = plain ] && SS=1
GEN=(-m training.synthetic.generate --height 64 --width 96 --style "$STYLE" --supersample $SS --motion mixed "${CAM[@]}")
TRAIN_WAYPOINTS=(); [ -n "$WAYPOINTS" ] && TRAIN_WAYPOINTS=(--waypoint-margin "$WAYPOINTS")
[ -d "$D/train" ] || $PY "${GEN[@]}" "${TRAIN_WAYPOINTS[@]}" --output "$D/train" --sequences 16 --frames 80 \
  --seed "$SEED" --label-noise light >/dev/null
[ -d "$D/eval" ] || $PY "${GEN[@]}" --output "$D/eval" --sequences 4 --frames 40 --seed 51 >/dev/null
OMP_NUM_THREADS=1 $PY -m training.train --config config/learning_bench.yaml --cpu --set data.path="$D/train" \
  --set train.output_dir="$D/run" --set networks.pose_source=data --set networks.residual_pose=false \
  --set networks.initial_depth=2.5 --set loss.mask.enabled=true --set loss.semantic_weight=0.1 \
  --set train.max_steps=1500 > "$D/train.log" 2>&1
$PY - "$D" "$TAG" <<'PYEOF'
import glob, json, sys
import numpy as np
from gam_depth_ros.inference import create_backend
from training.evaluate import backend_predictor, evaluate_items, sequence_folder_items
folder, tag = sys.argv[1], sys.argv[2]
checkpoint = sorted(glob.glob(f"{folder}/run/checkpoints/*.pt"))[-1]
model = evaluate_items(backend_predictor(create_backend("torch", checkpoint, threads=1), 1.0),
                       sequence_folder_items(f"{folder}/eval", 10))
constant = evaluate_items(lambda rgb: (np.ones(rgb.shape[:2]), None), sequence_folder_items(f"{folder}/eval", 10))
print(json.dumps({"run": tag, "checkpoint": checkpoint, "abs_rel": model["depth"]["abs_rel"],
                  "constant_abs_rel": constant["depth"]["abs_rel"],
                  "object_abs_rel": model["obstacles"].get("object_abs_rel"),
                  "constant_object_abs_rel": constant["obstacles"].get("object_abs_rel")}))
PYEOF
