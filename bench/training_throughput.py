"""Training-step benchmark at the paper's setting: 288x384, batch 4, frames [0,-2,-1,1,2], residual pose.

Each variant is a full training step of :mod:`training` (the same model, objective and Adam as
``python -m training.train``, config ``config/train_nyu.yaml``), timed in four parts:

- ``data``: taking the next batch from the ``DataLoader`` (in-memory synthetic clips, rendered
  before timing, ``num_workers=0``: collate and copies only, no image decoding) and moving it to
  the device;
- ``forward``: networks (depth, semantics, both pose passes, the residual warp) plus the losses
  (and ``zero_grad``);
- ``backward``: ``loss.backward()``;
- ``optimiser``: ``Adam.step`` (through the AMP scaler).

The step is the trainer's own (``Trainer._train_step``, timed through its ``mark`` hook), so
the benchmark cannot drift from what ``python -m training.train`` runs.

Variants: ``fp32`` (NCHW, what the reference does), ``fp32-cl`` (networks in channels-last),
``fp32-cl-compiled`` (also ``train.compile_loss``: the photometric error through ``torch.compile``;
compiled during the warm-up round), ``bf16-cl`` (channels-last with CPU bfloat16 autocast on the
networks, ``train.cpu_amp_bf16``; the losses stay fp32); the default runs all but the compiled one.
Planar and Manhattan-normal losses are off by default, as in the reference anchor (9.3 s/step);
``--structure`` turns them on (anchor 11.5 s/step).

The machine is shared and noisy, so the variants and an fp32 matmul take turns (one step of each per
round) and every figure is a median over rounds. Two comparisons with the reference anchor are
printed: the plain ratio of images/s (0.43 images/s), and a machine-normalised one, in which each
side's achieved training GFLOP/s is divided by its machine's fp32 matmul GFLOP/s (145 for the anchor's
machine per design.md section 5; measured in this run for ours). The step's FLOPs are counted with
``torch.utils.flop_counter`` (convolutions and matmuls, forward and backward).

Usage::

    .venv/bin/python bench/training_throughput.py [--rounds 5] [--variants fp32 fp32-cl bf16-cl]
        [--structure] [--threads 2] [--memory] [--json out.json]

``--config`` times another recipe (its size, frames, pose source and losses; the data stay the in-memory
synthetic clips, rendered at the config's size), ``--set key=value`` overrides it for every variant; the
variants ``fp32-scale0`` and ``bf16-scale0`` train the full-resolution disparity only
(``networks.depth_scales=[0]``, the reference's choice), ``bf16-scale0-pyramid3`` adds the photometric
pyramid (``loss.photometric_pyramid=3``), ``bf16`` is autocast without channels-last. The
anchor's ratios are printed for ``config/train_nyu.yaml`` only (its figures are for that recipe).

``--device cuda`` runs the steps on the GPU (each phase ends with a device synchronisation so that
its time is the GPU's), the matmul there too; its variants ``amp`` and ``amp-cl`` add autocast
(``train.amp``); ``--batch`` changes the batch size (the reference figures stay at batch 4).

``--memory`` adds each variant's peak resident memory (VmHWM of a fresh process running two steps).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import report_header, write_report  # noqa: E402
from training.config import load_training_config  # noqa: E402
from training.distributed import DistInfo  # noqa: E402
from training.trainer import Trainer  # noqa: E402

REFERENCE_SECONDS_PER_STEP = 9.3  # design.md section 5: batch 4, all losses except planar/normal
REFERENCE_SECONDS_WITH_STRUCTURE = 11.5
REFERENCE_MATMUL_GFLOPS = 145.0
REFERENCE_CONFIG = REPO / "config" / "train_nyu.yaml"  # the recipe the anchor's figures are for
BATCH = 4
VARIANTS = {
    "fp32": ["train.amp=false"],
    "fp32-cl": ["networks.channels_last=true", "train.amp=false"],
    "fp32-cl-compiled": ["networks.channels_last=true", "train.compile_loss=true", "train.amp=false"],
    "bf16-cl": ["networks.channels_last=true", "train.cpu_amp_bf16=true"],
    "bf16": ["train.cpu_amp_bf16=true"],
    "fp32-scale0": ["networks.depth_scales=[0]", "train.amp=false"],
    "bf16-scale0": ["networks.depth_scales=[0]", "train.cpu_amp_bf16=true"],
    "bf16-scale0-pyramid3": ["networks.depth_scales=[0]", "train.cpu_amp_bf16=true", "loss.photometric_pyramid=3"],
    # CUDA only (--device cuda): autocast on the networks (bf16 on Ampere and later), losses fp32
    "amp": ["train.amp=true"],
    "amp-cl": ["networks.channels_last=true", "train.amp=true"],
}


class Runner:
    """One variant: a Trainer's model, optimiser and loader, stepped by hand with timers."""

    def __init__(self, name: str, structure: bool, output: Path, device: str = "cpu", batch: int = BATCH,
                 config: Path = REFERENCE_CONFIG, extra: tuple[str, ...] = ()) -> None:
        overrides = [
            "data.source=synthetic", "data.path=''", f"data.options={{num_samples: {batch}, seed: 0}}",
            "data.augment=null", "validation=null", f"train.batch_size={batch}", "train.num_workers=0",
            "train.progress_bar=false",
            f"train.output_dir={output / name}", f"loss.planar.enabled={str(structure).lower()}",
            f"loss.normal.enabled={str(structure).lower()}", *extra, *VARIANTS[name],
        ]
        self.config = load_training_config(config, overrides)
        self.device = torch.device(device)
        self.trainer = Trainer(self.config, DistInfo(device=self.device))
        self.loader = self.trainer.loader
        for _ in self.loader:  # render and cache the clips before any timing
            pass
        self.iterator = iter(self.loader)
        self.times: dict[str, list[float]] = {"data": [], "forward": [], "backward": [], "optimiser": [], "step": []}

    def _next(self) -> dict:
        try:
            return next(self.iterator)
        except StopIteration:
            self.iterator = iter(self.loader)
            return next(self.iterator)

    def step(self, record: bool = True) -> None:
        """One step of the trainer's own ``_train_step``, each phase timed through its ``mark`` hook."""
        trainer = self.trainer
        cuda = self.device.type == "cuda"

        def mark(phase: str) -> None:
            if cuda:  # kernels run asynchronously: a phase ends when its work has
                torch.cuda.synchronize(self.device)
            marks.append((phase, time.perf_counter()))

        marks = [("start", time.perf_counter())]
        batch = self._next()  # the data phase: taking the batch, then (in the step) moving it to the device
        terms, _, _ = trainer._train_step(trainer.model, batch, True, mark)
        if terms is None:
            raise RuntimeError(f"{self.config.train.output_dir}: non-finite loss in the benchmark step")
        if record:
            times = dict(marks)
            self.times["data"].append(times["data"] - times["start"])
            self.times["forward"].append(times["forward"] - times["data"])
            self.times["backward"].append(times["backward"] - times["forward"])
            self.times["optimiser"].append(times["optimiser"] - times["backward"])
            self.times["step"].append(times["optimiser"] - times["start"])


def step_flops(runner: Runner) -> float:
    """FLOPs (conv, matmul; forward and backward) of one of the variant's training steps: the trainer's own step,
    so the count follows whatever the step runs (pose source, scales, losses)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        runner.trainer._train_step(runner.trainer.model, runner._next(), True)
    return float(counter.get_total_flops())


def matmul_gflops(size: int = 4096, device: str = "cpu") -> float:
    """fp32 matmul throughput (on CUDA: whatever precision torch's matmul settings allow, TF32 or not)."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    if device == "cuda":
        torch.mm(a, b)  # the first product pays cuBLAS's start-up
        torch.cuda.synchronize()
    start = time.perf_counter()
    torch.mm(a, b)
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 / (time.perf_counter() - start) / 1e9


def peak_rss_mb(field: str = "VmHWM") -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process in MB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (one step of every variant each)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--variants", nargs="+", default=["fp32", "fp32-cl", "bf16-cl"], choices=list(VARIANTS))
    parser.add_argument("--structure", action="store_true", help="planar and Manhattan-normal losses on")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the variants amp and amp-cl need cuda)")
    parser.add_argument("--batch", type=int, default=BATCH, help="batch size (the reference anchor is 4)")
    parser.add_argument("--config", type=Path, default=REFERENCE_CONFIG, help="the recipe to time")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="config override for every variant (repeatable)")
    parser.add_argument("--json", type=Path, help="write every figure and sample here")
    parser.add_argument("--output", type=Path, default=Path("/tmp/gam_depth_training_bench"))
    parser.add_argument("--memory", action="store_true",
                        help="also the peak memory of each variant (two steps in a fresh process each)")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_probe:  # in a fresh process: peak resident memory of two steps of one variant
        baseline = peak_rss_mb("VmRSS")
        runner = Runner(args.memory_probe, args.structure, args.output, config=args.config,
                        extra=tuple(args.overrides))
        runner.step(record=False)
        runner.step(record=False)
        print(json.dumps({"peak_mb": peak_rss_mb("VmHWM"), "baseline_mb": baseline}))
        return 0

    load_before = os.getloadavg()
    if args.device == "cpu" and {"amp", "amp-cl"} & set(args.variants):
        parser.error("the variants amp and amp-cl need --device cuda")
    runners = {name: Runner(name, args.structure, args.output, args.device, args.batch, args.config,
                            tuple(args.overrides)) for name in args.variants}
    flops = step_flops(next(iter(runners.values())))
    matmul: list[float] = []
    for round_index in range(args.warmup + args.rounds):
        for runner in runners.values():
            time.sleep(0.05)
            runner.step(record=round_index >= args.warmup)
        time.sleep(0.05)
        matmul.append(matmul_gflops(device=args.device))
    best_matmul = max(matmul)

    reference_s = REFERENCE_SECONDS_WITH_STRUCTURE if args.structure else REFERENCE_SECONDS_PER_STEP
    reference_ips = BATCH / reference_s
    reference_share = flops / reference_s / 1e9 / REFERENCE_MATMUL_GFLOPS
    # the anchor was measured on the reference recipe; against any other it would compare different work
    anchored = args.config.resolve() == REFERENCE_CONFIG.resolve() and not args.overrides
    rows = []
    for name, runner in runners.items():
        median = {key: statistics.median(values) for key, values in runner.times.items()}
        ips = args.batch / median["step"]
        share = flops / median["step"] / 1e9 / best_matmul
        rows.append({"variant": name, "median_s": median, "min_step_s": min(runner.times["step"]),
                     "images_per_s": ips, "ratio_vs_reference": ips / reference_ips if anchored else None,
                     "gflops": flops / median["step"] / 1e9, "share_of_matmul": share,
                     "normalised_ratio_vs_reference": share / reference_share if anchored else None,
                     "samples": runner.times})
    for row in rows:  # the same-run ratio: every variant against the first one named
        row["ratio_vs_first"] = row["images_per_s"] / rows[0]["images_per_s"]

    config = runners[args.variants[0]].config
    pose = f"{config.networks.pose_source} pose" + (", residual" if config.networks.residual_pose else "")
    print(f"{args.config.name}: {config.model.height}x{config.model.width}, batch {args.batch} on {args.device}, "
          f"frames {list(config.frame_ids)}, {pose}, planar/normal {'on' if args.structure else 'off'}, "
          f"{args.threads} threads, torch {torch.__version__}"
          + (f", overrides {args.overrides}" if args.overrides else ""))
    print(f"step FLOPs of {args.variants[0]} (fwd+bwd, conv+matmul): {flops / 1e9:.0f} GFLOP; fp32 matmul this run: "
          f"best {best_matmul:.0f}, median {statistics.median(matmul):.0f} GFLOP/s")
    if anchored:
        print(f"reference anchor: {reference_s} s/step = {reference_ips:.2f} images/s, {flops / reference_s / 1e9:.0f} "
              f"GFLOP/s = {100 * reference_share:.0f} % of {REFERENCE_MATMUL_GFLOPS:.0f}")
    print(f"{'variant':16s} {'data':>6s} {'forward':>8s} {'backward':>9s} {'optim':>6s} {'step':>6s} {'img/s':>6s} "
          f"{'x first':>8s} {'x ref':>6s} {'% matmul':>9s} {'x ref (norm.)':>14s}")
    for row in rows:
        m = row["median_s"]
        versus_reference = (f"{row['ratio_vs_reference']:6.2f}", f"{row['normalised_ratio_vs_reference']:14.2f}") \
            if anchored else (f"{'-':>6s}", f"{'-':>14s}")
        print(f"{row['variant']:16s} {m['data']:6.3f} {m['forward']:8.2f} {m['backward']:9.2f} {m['optimiser']:6.3f} "
              f"{m['step']:6.2f} {row['images_per_s']:6.2f} {row['ratio_vs_first']:8.2f} {versus_reference[0]} "
              f"{100 * row['share_of_matmul']:8.1f}% {versus_reference[1]}")
    if args.memory:
        for row in rows:
            command = [sys.executable, __file__, "--memory-probe", row["variant"], "--threads", str(args.threads)]
            command += ["--structure"] if args.structure else []
            command += ["--config", str(args.config)] + [f"--set={item}" for item in args.overrides]
            probe = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
                               .splitlines()[-1])
            row["peak_rss_mb"] = probe["peak_mb"]
            print(f"{row['variant']:16s} peak resident memory {probe['peak_mb']:.0f} MB "
                  f"(process after imports: {probe['baseline_mb']:.0f} MB)")
    load_after = os.getloadavg()
    print("load average (1/5/15 min): before " + " ".join(f"{v:.2f}" for v in load_before)
          + ", after " + " ".join(f"{v:.2f}" for v in load_after))
    write_report(args.json, {
        **report_header(argv, load_avg_before=load_before, load_avg_after=load_after, torch=torch.__version__),
        "threads": args.threads, "device": args.device, "batch": args.batch,
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None, "structure": args.structure,
        "config": str(args.config), "overrides": args.overrides, "step_flops": flops, "matmul_gflops": matmul,
        "reference_seconds_per_step": reference_s if anchored else None, "rows": rows,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
