"""CPU inference benchmark: torch eager vs ONNX Runtime on the GAM-Depth network input alone.

For each size a random-init (seeded) GamDepthNet is exported to ONNX in a temporary folder, then
the backends are timed on one fixed [1,3,H,W] input:

- ``torch eager``: the module in ``torch.inference_mode`` with ``torch.set_num_threads(threads)``,
  NCHW tensors (what the reference implementation does);
- ``torch eager channels-last``: the same with model and input in ``torch.channels_last``;
- ``onnxruntime``: ``OnnxRuntimeBackend.run_network`` (CPU provider, ``threads`` intra-op threads,
  the backend's own session options), including its output copies and the in-graph argmax;
- ``torch.compile`` (only with ``--torch-compile``): inductor with weight freezing, channels-last;
- ``... (fast)``: the decoder variant with zero padding and ReLU (``ModelConfig.decoder_padding``,
  ``decoder_activation``), same FLOPs, in torch channels-last and ONNX Runtime; skipped with
  ``--no-fast-variant``. Speed-ups are always against the paper variant's torch eager;
- ``onnxruntime (compact)``: the compact network (``base_channels: 32``, the shipped demo
  model's width; about a quarter of the FLOPs), its GFLOP/s from its own FLOPs;
- memory (``--memory``): for each backend a fresh process loads the model and runs it 3 times;
  reported is its peak resident memory (VmHWM) minus the resident memory after the imports, i.e.
  what the model and its inference add.

The machine this runs on is shared and noisy, so the backends and a large fp32 matmul are run in
interleaved rounds (one call of each per round, a short sleep between calls so that no backend's
spinning worker threads overlap the next one) and every figure is a ratio within the same run.
Reported per backend: median and best time of the timed runs, frames/s from the median,
achieved GFLOP/s (conv/linear FLOPs from :mod:`gam_depth_ros.networks.flops` over the median time)
and that as a percentage of the run's matmul GFLOP/s (the best of all matmul calls: the practical
fp32 peak of this CPU with the same thread count).

Usage::

    .venv/bin/python bench/inference.py [--sizes 288x384 256x320] [--threads 1 2] [--memory] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import report_header, write_report  # noqa: E402
from gam_depth_ros.export import export_onnx  # noqa: E402
from gam_depth_ros.inference.onnx_backend import OnnxRuntimeBackend  # noqa: E402
from gam_depth_ros.metadata import ModelMetadata  # noqa: E402
from gam_depth_ros.networks import GamDepthNet  # noqa: E402
from gam_depth_ros.networks.flops import count_flops  # noqa: E402

SIZES = ("96x128", "192x256", "256x320", "288x384", "480x640")
DEFAULT_SIZES = ("288x384", "256x320")


def parse_size(text: str) -> tuple[int, int]:
    if text not in SIZES:
        raise argparse.ArgumentTypeError(f"size must be one of {', '.join(SIZES)} (HxW), got {text!r}")
    height, width = text.split("x")
    return int(height), int(width)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


FAST_VARIANT = {"decoder_padding": "zero", "decoder_activation": "relu"}


def make_model(seed: int, **variant: str) -> torch.nn.Module:
    """Random-init network; BN statistics randomised so activations look like a trained net's.

    ``variant``: GamDepthNet decoder flags; default the paper's (reflection padding, ELU).
    """
    torch.manual_seed(seed)
    model = GamDepthNet(**variant).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return model


def torch_runner(model: torch.nn.Module, batch: np.ndarray, channels_last: bool) -> Callable[[], None]:
    image = torch.from_numpy(batch)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)

    def run() -> None:
        with torch.inference_mode():
            model(image)

    return run


def compiled_runner(model: torch.nn.Module, batch: np.ndarray) -> Callable[[], None]:
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    compiled = torch.compile(model.to(memory_format=torch.channels_last))
    image = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)

    def run() -> None:
        with torch.inference_mode():
            compiled(image)

    return run


def matmul_runner(size: int) -> tuple[Callable[[], None], float]:
    """A [size,size] x [size,size] fp32 torch matmul (MKL, torch's threads) and its FLOPs."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    out = torch.empty(size, size)

    def run() -> None:
        torch.mm(a, b, out=out)

    return run, 2.0 * size**3


def interleaved_times(
    runners: dict[str, Callable[[], None]], warmup: int, runs: int, gap_s: float
) -> dict[str, list[float]]:
    """Seconds per call of every runner, one call of each per round, ``runs`` rounds."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(runs):
        for name, run in runners.items():
            time.sleep(gap_s)
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def bench_size(height: int, width: int, threads: int, args: argparse.Namespace, folder: Path) -> dict:
    torch.set_num_threads(threads)
    model = make_model(args.seed)
    flops = count_flops(model, height, width)
    onnx_path = folder / f"gam_depth_{height}x{width}.onnx"
    export_onnx(model, onnx_path, ModelMetadata(input_height=height, input_width=width))
    backend = OnnxRuntimeBackend(onnx_path, threads=threads, providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(args.seed).random((1, 3, height, width), dtype=np.float32)

    runners = {"torch eager": torch_runner(model, batch, channels_last=False)}
    if not args.no_channels_last:
        runners["torch eager channels-last"] = torch_runner(make_model(args.seed), batch, channels_last=True)
    runners["onnxruntime"] = lambda: backend.run_network(batch)
    if args.torch_compile:
        runners["torch.compile"] = compiled_runner(make_model(args.seed), batch)
    if not args.no_fast_variant:
        # Same FLOPs; zero padding + ReLU let ONNX Runtime keep its blocked layout (docs/benchmarks.md).
        fast = make_model(args.seed, **FAST_VARIANT)
        fast_path = folder / f"gam_depth_fast_{height}x{width}.onnx"
        export_onnx(fast, fast_path, ModelMetadata(input_height=height, input_width=width))
        fast_backend = OnnxRuntimeBackend(fast_path, threads=threads, providers=["CPUExecutionProvider"])
        runners["torch channels-last (fast)"] = torch_runner(fast, batch, channels_last=True)
        runners["onnxruntime (fast)"] = lambda: fast_backend.run_network(batch)
    compact = make_model(args.seed, base_channels=32)
    compact_path = folder / f"gam_depth_compact_{height}x{width}.onnx"
    export_onnx(compact, compact_path, ModelMetadata(input_height=height, input_width=width))
    compact_backend = OnnxRuntimeBackend(compact_path, threads=threads, providers=["CPUExecutionProvider"])
    runners["onnxruntime (compact)"] = lambda: compact_backend.run_network(batch)
    own_flops = {"onnxruntime (compact)": count_flops(compact, height, width)["total"]}
    matmul, matmul_flops = matmul_runner(args.matmul_size)
    runners["matmul"] = matmul
    times = interleaved_times(runners, args.warmup, args.runs, args.gap_ms / 1000)

    matmul_gflops = matmul_flops / min(times.pop("matmul")) / 1e9
    reference_s = statistics.median(times["torch eager"])
    backends = {}
    for name, samples in times.items():
        median_s = statistics.median(samples)
        gflops = own_flops.get(name, flops["total"]) / median_s / 1e9
        backends[name] = {
            "median_ms": 1000 * median_s,
            "best_ms": 1000 * min(samples),
            "fps": 1.0 / median_s,
            "gflops": gflops,
            "percent_of_matmul": 100 * gflops / matmul_gflops,
            "speedup_vs_torch_eager": reference_s / median_s,
            "samples_ms": [1000 * s for s in samples],
        }
    return {
        "height": height,
        "width": width,
        "threads": threads,
        "gflop": {part: value / 1e9 for part, value in flops.items()},
        "gflop_compact": own_flops["onnxruntime (compact)"] / 1e9,
        "matmul_gflops": matmul_gflops,
        "backends": backends,
    }


MEMORY_BACKENDS = {"torch eager": ("paper", False), "torch eager channels-last": ("paper", True),
                   "onnxruntime": ("paper", None), "torch channels-last (fast)": ("fast", True),
                   "onnxruntime (fast)": ("fast", None), "onnxruntime (compact)": ("compact", None)}


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def memory_probe(name: str, size: str, threads: str, seed: int) -> float:
    """In this (fresh) process: peak memory (MB) that loading and running backend ``name`` adds."""
    height, width = (int(v) for v in size.split("x"))
    torch.set_num_threads(int(threads))
    variant, channels_last = MEMORY_BACKENDS[name]
    kwargs = {"fast": FAST_VARIANT, "compact": {"base_channels": 32}}.get(variant, {})
    batch = np.random.default_rng(seed).random((1, 3, height, width), dtype=np.float32)
    baseline = _vm("VmRSS")
    model = make_model(seed, **kwargs)
    if channels_last is None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "m.onnx"
            export_onnx(model, path, ModelMetadata(input_height=height, input_width=width))
            del model
            baseline = _vm("VmRSS")  # the export's own memory does not count
            backend = OnnxRuntimeBackend(path, threads=int(threads), providers=["CPUExecutionProvider"])
            for _ in range(3):
                backend.run_network(batch)
    else:
        run = torch_runner(model, batch, channels_last)
        for _ in range(3):
            run()
    return _vm("VmHWM") - baseline


def run_memory_probe(name: str, height: int, width: int, threads: int) -> float:
    import subprocess

    output = subprocess.run([sys.executable, __file__, "--memory-probe", name, f"{height}x{width}", str(threads)],
                            capture_output=True, text=True, check=True).stdout
    return float(json.loads(output.strip().splitlines()[-1])["memory_mb"])


def print_size(result: dict) -> None:
    gflop = result["gflop"]
    print(
        f"\n{result['height']}x{result['width']}, {result['threads']} thread(s): {gflop['total']:.2f} GFLOP per frame "
        f"(encoder {gflop['encoder']:.2f}, depth decoder {gflop['depth_decoder']:.2f}, "
        f"semantic decoder {gflop['semantic_decoder']:.2f}); matmul {result['matmul_gflops']:.0f} GFLOP/s"
    )
    header = f"{'backend':28s} {'median ms':>10s} {'best ms':>8s} {'frames/s':>9s} {'GFLOP/s':>8s} "
    print(header + f"{'% matmul':>9s} {'x torch eager':>14s}")
    for name, row in result["backends"].items():
        print(
            f"{name:28s} {row['median_ms']:10.1f} {row['best_ms']:8.1f} {row['fps']:9.2f} "
            f"{row['gflops']:8.1f} {row['percent_of_matmul']:8.1f}% {row['speedup_vs_torch_eager']:13.2f}x"
            + (f"   peak +{row['memory_mb']:.0f} MB" if "memory_mb" in row else "")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="+", type=parse_size, default=[parse_size(s) for s in DEFAULT_SIZES], metavar="HxW",
        help=f"network input sizes, from {', '.join(SIZES)} (default: {' '.join(DEFAULT_SIZES)})",
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="CPU thread counts to run (default 2)")
    parser.add_argument("--memory", action="store_true", help="also measure each backend's peak memory")
    parser.add_argument("--memory-probe", nargs=3, metavar=("BACKEND", "HxW", "THREADS"), help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls of each first (default 3)")
    parser.add_argument("--gap-ms", type=float, default=20, help="ms of sleep before each timed call (20)")
    parser.add_argument("--matmul-size", type=int, default=4096, help="square matmul size (default 4096)")
    parser.add_argument("--seed", type=int, default=0, help="weights and input seed")
    parser.add_argument("--no-channels-last", action="store_true", help="skip the channels-last torch row")
    parser.add_argument("--no-fast-variant", action="store_true",
                        help="skip the rows of the fast decoder variant (zero padding, ReLU)")
    parser.add_argument("--torch-compile", action="store_true",
                        help="add torch.compile (inductor, freezing, channels-last); ~30 s compile per size")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write all figures and samples here")
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps({"memory_mb": memory_probe(*args.memory_probe, seed=args.seed)}))
        return 0
    if min(args.threads) < 1 or args.runs < 1:
        parser.error("--threads and --runs must be at least 1")

    import onnxruntime

    machine = {
        "cpu": cpu_model(),
        "logical_cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
    }
    print(
        f"{machine['cpu']}, {machine['logical_cpus']} CPUs, threads {' '.join(map(str, args.threads))}, "
        f"torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}; {args.runs} interleaved rounds, medians"
    )
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="gam_depth_bench_") as folder:
        for threads in args.threads:
            for height, width in args.sizes:
                result = bench_size(height, width, threads, args, Path(folder))
                if args.memory:
                    for name, row in result["backends"].items():
                        row["memory_mb"] = run_memory_probe(name, height, width, threads)
                print_size(result)
                results.append(result)
    load_after = os.getloadavg()
    print("\nload average (1/5/15 min): before " + " ".join(f"{v:.2f}" for v in load_before)
          + ", after " + " ".join(f"{v:.2f}" for v in load_after))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "sizes")}
        settings["sizes"] = [f"{h}x{w}" for h, w in args.sizes]
        report = {**report_header(argv, **machine, load_avg_before=load_before, load_avg_after=load_after),
                  "settings": settings, "results": results}
        write_report(args.json, report)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
