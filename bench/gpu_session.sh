#!/bin/bash
# One lease of a CUDA machine, all in one command (docs/benchmarks.md, "On a lent GPU"). From the repo root:
#   OUT=folder bash bench/gpu_session.sh [budget_s] [stage1_weights]
# Budget (default 500 s) is wall time for everything; the trainings stop by train.max_minutes so the
# script ends inside it. In order, the CPU cores rendering the training rooms meanwhile:
#  1. test/test_cuda.py: torch backend and GPU pre/post-processing vs the CPU, AMP steps vs fp32;
#  2. bench/training_throughput.py --device cuda at the paper's 288x384 (fp32, amp, amp-cl);
#  3. the paper's setting: the pose network from video alone at 288x384 on rich rooms of seed 45
#     (sequences 2-7 train, 0-1 scored by bench/pose_accuracy.py and training.evaluate);
#  4. depth at 192x256 on the rich training rooms of seed 20 (waypoints 0.8 m, as the CPU stage 1),
#     from stage-1 weights when given (config/train_rich_stage2.yaml, batch 12, poses from the data),
#     three runs side by side: "sources4" as the config (frames 0,-2,-1,1,2 at stride 5) and "sources2"
#     (frames 0,-1,1 at stride 10, as stage 1) from the stage-1 weights, "scratch" (stage 1's recipe at
#     192x256 from random weights: on the CPU it learnt where the fine-tunings drifted, docs/training.md).
# $OUT gets results.tgz (every log and JSON, packed again after each phase, so a run cut short still
# returns what it finished) and each depth run's weights in float16. GEN_SCALE=small and
# TRAIN_FLAGS=--cpu make a dry run on a CPU machine (tiny data, seconds of training).
set -u
BUDGET=${1:-500}
STAGE1=${2:-}
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
  RICH_SEQ=2 RICH_FRAMES=30 RICH_PROCS=2 POSE_FRAMES=30 EVAL_FRAMES=30 POSE_SIZE="96 128" BATCH=2 WORKERS=0 ROUNDS=1
else
  RICH_SEQ=32 RICH_FRAMES=100 RICH_PROCS=8 POSE_FRAMES=60 EVAL_FRAMES=40 POSE_SIZE="288 384" BATCH=12 WORKERS=4 ROUNDS=10
fi
read -r PH PW <<<"$POSE_SIZE"
DEPTH_RUNS=(sources4 sources2 scratch)
# shellcheck disable=SC2206
GEN=(nice -n 10 $PY -m training.synthetic.generate --style rich --supersample 3 --motion mixed)

log "start: budget ${BUDGET} s; $($PY -c 'import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$RES/session.log" 2>&1

# --- data, in the background: 12 processes, leaving 4 of the 16 cores to the GPU work and the machine --
per=$((RICH_SEQ / RICH_PROCS))
for i in $(seq 0 $((RICH_PROCS - 1))); do
  "${GEN[@]}" --height 192 --width 256 --waypoint-margin 0.8 --label-noise light --seed 20 --output "$WORK/rich" \
    --sequences $per --first-index $((i * per)) --frames $RICH_FRAMES >"$WORK/gen_rich_$i.log" 2>&1 &
  RICH_PIDS+=($!)
done
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
DEPTH_MIN=$(awk -v b="$BUDGET" -v e="$(elapsed)" 'BEGIN { m = (b - e - 70) / 60; print (m < 0.2 ? 0.2 : m) }')
INIT="--set networks.init_checkpoint=''"; [ -n "$STAGE1" ] && INIT="--set networks.init_checkpoint=$STAGE1"
STAGE1_RECIPE="--set frame_ids=[0,-1,1] --set data.options.stride=10"
declare -A RUN_ARGS=([sources4]="$INIT" [sources2]="$INIT $STAGE1_RECIPE"
                     [scratch]="--set networks.init_checkpoint='' $STAGE1_RECIPE --set optim.lr=2e-4")
declare -A DEPTH_PIDS
for run in "${DEPTH_RUNS[@]}"; do
  # shellcheck disable=SC2086
  $PY -m training.train --config config/train_rich_stage2.yaml $TRAIN_FLAGS ${RUN_ARGS[$run]} \
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
done
tail -n 2 "$RES"/depth_*.log "$RES/pose_train.log"
log "end"
