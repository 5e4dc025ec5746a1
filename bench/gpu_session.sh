#!/bin/bash
# One lease of a CUDA machine, all in one command (docs/benchmarks.md, "On a lent GPU"). From the repo root:
#   OUT=folder bash bench/gpu_session.sh [budget_s]
# Budget (default 500 s) is wall time for everything; the trainings stop by train.max_minutes so the
# script ends inside it. In order, the CPU cores rendering the training rooms meanwhile:
#  1. test/test_cuda.py: torch backend and GPU pre/post-processing vs the CPU, AMP steps vs fp32;
#  2. bench/training_throughput.py --device cuda at the paper's 288x384 (fp32, amp, amp-cl);
#  3. the paper's setting: the pose network from video alone at 288x384 on rich rooms of seed 45
#     (sequences 2-7 train, 0-1 scored by bench/pose_accuracy.py and training.evaluate);
#  4. depth at 192x256 on new training rooms of seed 33 (the training rooms' command of docs/data.md), what
#     the CPU cannot do: many passes over many rooms. Three runs side by side (config/train_rich192.yaml,
#     poses from the data): "shipped" continues the shipped model (scale 0, lr 5e-5, the CPU's fast recipe),
#     "scratch" and "scratch_pyramid" (loss.photometric_pyramid 3) start from random weights. Each run's
#     last checkpoint, and the shipped model, are then placed on their own loss by bench/loss_gap.py on the
#     rooms trained on and on the first validation rooms of seed 27 (docs/training.md, "Where the models sit
#     on their own loss": the CPU runs fit their rooms and carry nothing to new ones).
# $OUT gets results.tgz (every log and JSON, packed again after each phase, so a run cut short still
# returns what it finished) and each depth run's weights in float16. GEN_SCALE=small and
# TRAIN_FLAGS=--cpu make a dry run on a CPU machine (tiny data, seconds of training).
set -u
BUDGET=${1:-500}
OUT=${OUT:-output/gpu_session}
WORK=${WORK:-/tmp/gpu_session}
TRAIN_FLAGS=${TRAIN_FLAGS:-}
PY=${PY:-python3}
RES=$WORK/results
mkdir -p "$OUT" "$RES"
export PYTHONPATH=$PWD:$PWD/test PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
elapsed() { echo $SECONDS; }
log() { echo "[$(elapsed) s] $*" | tee -a "$RES/session.log"; tar czf "$OUT/results.tgz" -C "$RES" .; }
if [ "${GEN_SCALE:-full}" = small ]; then
  RICH_SEQ=2 RICH_PROCS=2 VAL_SEQ=1 POSE_FRAMES=30 EVAL_FRAMES=30 POSE_SIZE="96 128" BATCH=2 WORKERS=0 ROUNDS=1
  LOSS_GAP_SAMPLES=4
else
  RICH_SEQ=96 RICH_PROCS=8 VAL_SEQ=6 POSE_FRAMES=60 EVAL_FRAMES=40 POSE_SIZE="288 384" BATCH=12 WORKERS=4 ROUNDS=10
  LOSS_GAP_SAMPLES=48
fi
read -r PH PW <<<"$POSE_SIZE"
DEPTH_RUNS=(shipped scratch scratch_pyramid)
# shellcheck disable=SC2206
GEN=(nice -n 10 $PY -m training.synthetic.generate --style rich --supersample 3 --motion mixed)

log "start: budget ${BUDGET} s; $($PY -c 'import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$RES/session.log" 2>&1

# --- data, in the background: 13 processes (the validation rooms' one ends early), 3 of the 16 cores left to the GPU work --
per=$((RICH_SEQ / RICH_PROCS))
for i in $(seq 0 $((RICH_PROCS - 1))); do
  "${GEN[@]}" --height 192 --width 256 --waypoint-margin 0.8 --robot-start-turn 15 --label-noise light --seed 33 \
    --output "$WORK/rich" --sequences $per --first-index $((i * per)) --frames 48 >"$WORK/gen_rich_$i.log" 2>&1 &
  RICH_PIDS+=($!)
done
"${GEN[@]}" --height 192 --width 256 --seed 27 --output "$WORK/val" --sequences $VAL_SEQ --frames 60 \
  >"$WORK/gen_val.log" 2>&1 &
RICH_PIDS+=($!)
for i in 2 4 6; do
  "${GEN[@]}" --height "$PH" --width "$PW" --seed 45 --output "$WORK/pose_train" --sequences 2 --first-index $i \
    --frames $POSE_FRAMES >"$WORK/gen_pose_$i.log" 2>&1 &
  POSE_PIDS+=($!)
done
"${GEN[@]}" --height "$PH" --width "$PW" --seed 45 --output "$WORK/pose_eval" --sequences 2 \
  --frames $EVAL_FRAMES >"$WORK/gen_eval.log" 2>&1 &
POSE_PIDS+=($!)

# --- 1, 2: checks and throughput (GPU) ------------------------------------------------------------
timeout 150 $PY -m pytest -q -p no:cacheprovider test/test_cuda.py >"$RES/test_cuda.log" 2>&1
log "test_cuda.py exit $? ($(tail -1 "$RES/test_cuda.log"))"
DEVICE=cuda; [ -n "$TRAIN_FLAGS" ] && DEVICE=cpu
VARIANTS="fp32 amp amp-cl"; [ "$DEVICE" = cpu ] && VARIANTS="fp32"
# shellcheck disable=SC2086
timeout 150 $PY bench/training_throughput.py --device $DEVICE --variants $VARIANTS --rounds $ROUNDS --warmup 2 --threads 4 \
  --json "$RES/training_throughput_cuda.json" --output "$WORK/throughput" >"$RES/throughput.log" 2>&1
log "throughput exit $?"

# --- 3: the pose network at 288x384 -----------------------------------------------------------------
wait "${POSE_PIDS[@]}"
log "pose data ready"
POSE_MIN=$(awk -v b="$BUDGET" -v e="$(elapsed)" 'BEGIN { m = (b - e - 200) / 60; print (m < 0.2 ? 0.2 : m) }')
$PY -m training.train --config config/learning_bench.yaml $TRAIN_FLAGS --set model.height=$PH --set model.width=$PW \
  --set data.path="$WORK/pose_train" --set train.output_dir="$WORK/pose_run" --set train.seed=45 \
  --set train.max_steps=0 --set train.max_minutes="$POSE_MIN" --set train.batch_size=8 --set train.num_workers=4 \
  --set train.log_every_steps=25 >"$RES/pose_train.log" 2>&1 &
POSE_TRAIN=$!

# --- 4: depth at 192x256 --------------------------------------------------------------------------
wait "${RICH_PIDS[@]}"
log "rich data ready: $(find "$WORK/rich" -name '*.png' -path '*images*' | wc -l) frames"
DEPTH_MIN=$(awk -v b="$BUDGET" -v e="$(elapsed)" 'BEGIN { m = (b - e - 180) / 60; print (m < 0.2 ? 0.2 : m) }')
declare -A RUN_ARGS=([shipped]="--set networks.init_checkpoint=models/demo/gam_depth_demo.safetensors
                                 --set networks.depth_scales=[0] --set optim.lr=5e-5"
                     [scratch]="" [scratch_pyramid]="--set loss.photometric_pyramid=3")
declare -A DEPTH_PIDS
for run in "${DEPTH_RUNS[@]}"; do
  # shellcheck disable=SC2086
  $PY -m training.train --config config/train_rich192.yaml $TRAIN_FLAGS ${RUN_ARGS[$run]} \
    --set data.path="$WORK/rich" --set validation=null --set train.output_dir="$WORK/depth_$run" \
    --set train.batch_size=$BATCH --set train.num_workers=$WORKERS --set train.max_steps=0 --set train.epochs=1000 \
    --set "optim.milestones=[1000]" --set loss.semantic_epochs=1000 --set train.max_minutes="$DEPTH_MIN" \
    --set train.checkpoint_every_steps=1000 --set train.keep_checkpoints=1 --set train.log_every_steps=50 \
    >"$RES/depth_$run.log" 2>&1 &
  DEPTH_PIDS[$run]=$!
done

wait $POSE_TRAIN
log "pose training exit $?: $(grep -o 'max_minutes.*' "$RES/pose_train.log" | tail -1)"
POSE_CKPT=$(ls "$WORK"/pose_run/checkpoints/step_*.pt 2>/dev/null | tail -1)
if [ -n "$POSE_CKPT" ]; then
  $PY bench/pose_accuracy.py --data "$WORK/pose_eval" --config "$WORK/pose_run/config.yaml" --size $PH $PW \
    --stride 10 --alphas 0 1 --threads 4 --checkpoint "$POSE_CKPT" --output "$RES/pose_288x384.json" \
    >"$RES/pose_accuracy.log" 2>&1
  log "pose accuracy exit $?"
  $PY -m training.evaluate --model "$POSE_CKPT" --backend torch --dataset folder --path "$WORK/pose_eval" \
    --output "$RES/pose_288x384_depth.json" >"$RES/pose_eval.log" 2>&1
  log "pose-run depth evaluation exit $?"
fi

# where each model sits on its own loss, on the rooms trained on and on new ones (CPU, 4 threads)
loss_gap() {
  $PY bench/loss_gap.py --config config/train_rich192.yaml --override "networks.depth_scales=[0]" --checkpoint "$2" \
    --set training33="$WORK/rich" --set validation27="$WORK/val" --samples $LOSS_GAP_SAMPLES --threads 4 \
    --output "$RES/loss_gap_$1.json" >"$RES/loss_gap_$1.log" 2>&1
  log "loss gap $1 exit $?: $(grep -v 'give no sample' "$RES/loss_gap_$1.log" | tail -2 | tr '\n' ' ')"
}
loss_gap shipped_model models/demo/gam_depth_demo.safetensors
for run in "${DEPTH_RUNS[@]}"; do
  wait "${DEPTH_PIDS[$run]}"
  log "depth $run exit $?: $(grep -o 'max_minutes.*' "$RES/depth_$run.log" | tail -1)"
  DEPTH_CKPT=$(ls "$WORK"/depth_$run/checkpoints/step_*.pt 2>/dev/null | tail -1)
  [ -n "$DEPTH_CKPT" ] || continue
  $PY - "$DEPTH_CKPT" "$OUT/depth_$run.safetensors" <<'EOF'
import sys

from gam_depth_ros.checkpoint import load_checkpoint, save_checkpoint

checkpoint = load_checkpoint(sys.argv[1])
half = {k: v.half() if v.is_floating_point() else v for k, v in checkpoint.state_dict.items()}
save_checkpoint(sys.argv[2], half, checkpoint.model_config, checkpoint.training_config)
EOF
  log "depth $run weights saved from $DEPTH_CKPT"
  loss_gap "$run" "$DEPTH_CKPT"
done
tail -n 2 "$RES"/depth_*.log "$RES/pose_train.log"
log "end"
