"""What the ROS node costs on top of the raw backend: 640x480 rgb8 frames over DDS vs backend.infer.

    .venv/bin/python bench/node_overhead.py [--frames 30] [--threads 2] [--model model.onnx] [--json out.json]

1. Exports a randomly initialised network at 288x384 (the paper's size) to ONNX in a temp folder
   (or uses ``--model``).
2. For the Fast DDS shared-memory profile on and off (one client process each: Fast DDS reads the
   profile once per process), starts ``depth_node`` (threads as given, default parameters). The
   raw figure is ``backend.infer(frame, (480, 640))`` on the same frames with the same threads in
   the client process, alternating frame by frame with the node in the closed-loop modes (so
   both see the same background load on a shared machine; an untimed 50 ms pause separates
   them), and before + after the saturated mode:
   - ``closed_depth_semantic``: a sensor-data (best-effort) camera publisher, as drivers use; the
     frame goes through the node once the raw inference of it here is done, and the next after
     depth and semantic of it arrived (a frame without outputs after 2 s is sent again and
     counted as lost); rates are frames / summed per-frame time; end-to-end latency (publish ->
     last output received) p50/p99; also the median over frames of raw time / node latency of
     the same frame (robust to bursts of other load);
   - ``closed_depth_semantic_reliable_input``: the same against a second node with
     ``qos_in_reliability: reliable`` and a reliable camera publisher;
   - ``closed_all``: all six outputs subscribed (colorized views, camera_info, points too);
   - ``saturated_all``: camera at 30 Hz, all outputs subscribed: steady-state output rate (the
     node drops what it cannot take).
   Figure of merit: node rate / raw rate (goal >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from report import report_header, write_report  # noqa: E402
from ros_process import camera_pictures, configure_process, node_log, start_node, stop_node  # noqa: E402

from gam_depth_ros import topics as node_topics  # noqa: E402

HEIGHT, WIDTH = 480, 640
ALL_OUTPUTS = tuple(node_topics.OUTPUTS)
DEPTH_SEMANTIC = (node_topics.DEPTH, node_topics.SEMANTIC)
LOST_TIMEOUT_S = 2.0  # a frame without outputs after this long counts as lost and is sent again
MAX_TRIES = 3  # sends per frame before giving up on it
MAX_LOST = 15  # losses before a closed-loop measurement stops early
# Untimed pause between a raw and a node frame: ONNX Runtime's worker threads keep spinning for a
# moment after a run, which would slow the other process's run that starts right after.
SETTLE_S = 0.05


def export_random_model(folder: Path, height: int = 288, width: int = 384) -> Path:
    """A randomly initialised GamDepthNet exported to ``folder/random.onnx`` (+ metadata)."""
    import torch

    from gam_depth_ros.checkpoint import save_checkpoint
    from gam_depth_ros.export import export_checkpoint
    from gam_depth_ros.model_config import ModelConfig
    from gam_depth_ros.networks import GamDepthNet

    torch.manual_seed(0)
    config = ModelConfig(height=height, width=width)
    checkpoint = save_checkpoint(folder / "random.pt", GamDepthNet().state_dict(), config)
    export_checkpoint(checkpoint, folder / "random.onnx")
    return folder / "random.onnx"


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1e3
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


def bench_raw(backend, frames: list[np.ndarray], count: int) -> dict:
    """``backend.infer`` at 640x480 in and out on ``count`` frames: rate and per-frame latency."""
    times = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        backend.infer(frames[i % len(frames)], (HEIGHT, WIDTH))
        times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    return {"fps": count / elapsed, **percentiles_ms(times)}


# -- client process (one per DDS profile setting) -------------------------------------------------
class Client:
    def __init__(self, node_name: str, frames: list[np.ndarray], reliable_camera: bool = False) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
        self.node = rclpy.create_node("node_overhead_bench", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.ns = node_name
        self.image_pub = None
        self.set_camera_qos(reliable=False)
        self.info_pub = self.node.create_publisher(
            CameraInfo, f"{node_name}/camera_info", qos_profile_sensor_data
        )
        self.reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.images = frames
        self.frames = [self._image_msg(frame) for frame in frames]
        self.info = CameraInfo(width=WIDTH, height=HEIGHT, k=[520.0, 0, 319.5, 0, 520.0, 239.5, 0, 0, 1])
        self.arrivals: dict[str, dict] = {}
        self.subscriptions: list = []
        self.diagnostics: list[tuple[float, dict]] = []  # (arrival, values) of this node's statistics
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name == f"{self.ns}/depth_node: inference":
                self.diagnostics.append((time.monotonic(), {kv.key: kv.value for kv in status.values}))

    def node_breakdown(self, start: float) -> dict:
        """Median over the node's statistics periods since ``start`` of its own p50 figures (ms)."""
        self.spin_until(lambda: False, 2.5)  # one more statistics period
        periods = [values for arrival, values in self.diagnostics if arrival > start]
        return {
            name: float(
                np.median([float(v[f"{name}_p50"]) for v in periods if f"{name}_p50" in v] or [np.nan])
            )
            for name in ("inference_ms", "outputs_ms", "node_latency_ms")
        }

    def set_camera_qos(self, reliable: bool) -> None:
        """Camera publisher: sensor-data (best effort, keep last 1) or reliable keep last 1."""
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        if self.image_pub is not None:
            self.node.destroy_publisher(self.image_pub)
        qos = self.reliable if reliable else qos_profile_sensor_data
        self.image_pub = self.node.create_publisher(Image, f"{self.ns}/image", qos)

    def _image_msg(self, frame: np.ndarray):
        import array

        from sensor_msgs.msg import Image

        data = array.array("B")
        data.frombytes(frame.tobytes())
        return Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=3 * WIDTH, data=data)

    def subscribe(self, topics) -> None:
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        for subscription in self.subscriptions:
            self.node.destroy_subscription(subscription)
        types = {node_topics.IMAGE_TYPE: Image, node_topics.CAMERA_INFO_TYPE: CameraInfo,
                 node_topics.POINTS_TYPE: PointCloud2}
        self.arrivals = {topic: {} for topic in topics}
        self.subscriptions = [
            self.node.create_subscription(
                types[node_topics.OUTPUTS[topic][1]], f"{self.ns}/{topic}", self._callback(topic), self.reliable
            )
            for topic in topics
        ]
        self.spin_until(lambda: all(s.get_publisher_count() for s in self.subscriptions), 20.0)
        self.spin_until(lambda: self.image_pub.get_subscription_count() > 0, 20.0)
        self.spin_until(lambda: False, 1.0)  # let the node see the new subscriptions

    def _callback(self, topic: str):
        def store(msg) -> None:
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            self.arrivals[topic].setdefault(key, time.monotonic())

        return store

    def spin_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, deadline - time.monotonic())))
        return predicate()

    def publish(self, index: int) -> tuple[int, int]:
        msg = self.frames[index % len(self.frames)]
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = "camera_optical_frame"
        self.info.header = msg.header
        self.info_pub.publish(self.info)
        self.image_pub.publish(msg)
        return msg.header.stamp.sec, msg.header.stamp.nanosec

    def done(self, key) -> bool:
        return all(key in by_key for by_key in self.arrivals.values())

    def closed_loop(self, topics, count: int, backend, reliable_camera: bool = False) -> dict:
        """Frame i: ``backend.infer`` here (raw), then through the node (publish -> outputs in).

        Raw and node alternate frame by frame, so both see the same background load. Node time per
        frame includes re-sends of lost frames; rates are frames / summed time.
        """
        self.set_camera_qos(reliable_camera)
        self.subscribe(topics)
        for i in range(3):  # warm-up, also makes camera_info known
            key = self.publish(i)
            self.spin_until(lambda key=key: self.done(key), 10.0)
        raw_times, latencies, node_time, lost, pair_ratios = [], [], 0.0, 0, []
        start = time.monotonic()
        for i in range(count):
            t0 = time.perf_counter()
            backend.infer(self.images[i % len(self.images)], (HEIGHT, WIDTH))
            raw_times.append(time.perf_counter() - t0)
            self.spin_until(lambda: False, SETTLE_S)
            first_sent = time.monotonic()
            for attempt in range(MAX_TRIES):
                sent = time.monotonic()
                key = self.publish(i)
                if self.spin_until(lambda key=key: self.done(key), LOST_TIMEOUT_S):
                    latencies.append(max(self.arrivals[t][key] for t in topics) - sent)
                    if attempt == 0:  # served at the first send: a clean raw/node pair
                        pair_ratios.append(raw_times[-1] / latencies[-1])
                    break
                lost += 1
            node_time += time.monotonic() - first_sent  # a frame given up on costs its waiting time
            self.spin_until(lambda: False, SETTLE_S)
            if lost >= MAX_LOST:
                break  # DDS loses this setting's frames; what was served is reported
        result = {"served": len(latencies), "lost": lost, **percentiles_ms(latencies or [np.nan])}
        result["raw"] = {"fps": len(raw_times) / sum(raw_times), **percentiles_ms(raw_times)}
        result["fps"] = len(latencies) / node_time
        result["pair_ratio_median"] = float(np.median(pair_ratios)) if pair_ratios else float("nan")
        result["node_breakdown_p50_ms"] = self.node_breakdown(start)
        return result

    def saturated(self, topics, seconds: float, rate_hz: float = 30.0) -> dict:
        self.set_camera_qos(reliable=False)
        self.subscribe(topics)
        sent, index = [], 0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            sent.append(self.publish(index))
            index += 1
            self.spin_until(lambda: False, max(0.0, start + index / rate_hz - time.monotonic()))
        self.spin_until(lambda: False, 2.0)
        # Steady state: frames whose last output arrived after the first second of the window.
        window_start, window_end = start + 1.0, start + seconds
        done = [max(self.arrivals[t][key] for t in topics) for key in sent if self.done(key)]
        in_window = [t for t in done if window_start <= t < window_end]
        return {"input_hz": len(sent) / seconds, "fps": len(in_window) / (window_end - window_start)}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def run_client(args) -> int:
    """One DDS setting: closed-loop modes interleave raw and node frames; saturated sits between raw runs."""
    from gam_depth_ros.inference import create_backend

    folder = Path(tempfile.mkdtemp(prefix="node_overhead_"))
    configure_process(folder / "ros_log", shm_profile=args.shm)
    node_name = f"/bench{os.getpid()}"
    params = {"model_path": str(args.model), "threads": args.threads, "stats_period": 2.0}
    process = start_node(params, folder, node_name, shm_profile=args.shm)
    # The same node with a reliable image subscription (qos_in_reliability), fed by a reliable camera.
    reliable_params = {**params, "qos_in_reliability": "reliable"}
    reliable_process = start_node(
        reliable_params, folder, node_name + "_r", shm_profile=args.shm, name="node_r"
    )
    frames = camera_pictures(8, HEIGHT, WIDTH)
    backend = create_backend("onnxruntime", args.model, threads=args.threads)
    bench_raw(backend, frames, 3)  # warm-up
    client = Client(node_name, frames)
    reliable_client = Client(node_name + "_r", frames)
    modes = {
        "closed_depth_semantic": lambda: client.closed_loop(DEPTH_SEMANTIC, args.frames, backend),
        "closed_depth_semantic_reliable_input": lambda: reliable_client.closed_loop(
            DEPTH_SEMANTIC, args.frames, backend, reliable_camera=True
        ),
        "closed_all": lambda: client.closed_loop(ALL_OUTPUTS, args.frames, backend),
    }
    results = {}
    try:
        for mode, measure in modes.items():
            results[mode] = measure()
        before = bench_raw(backend, frames, args.frames)
        saturated = client.saturated(ALL_OUTPUTS, seconds=args.saturated_seconds)
        after = bench_raw(backend, frames, args.frames)
        saturated["raw"] = {
            "fps": (before["fps"] + after["fps"]) / 2,
            "p50_ms": before["p50_ms"],
            "p99_ms": before["p99_ms"],
            "before_after_fps": [before["fps"], after["fps"]],
        }
        results["saturated_all"] = saturated
    finally:
        client.close()
        reliable_client.close()
        codes = [stop_node(process), stop_node(reliable_process)]
    if any(codes):
        print(node_log(process), node_log(reliable_process), file=sys.stderr)
    print(json.dumps(results))
    return 0


# -- main ---------------------------------------------------------------------------------------
def _client(args, shm: bool) -> dict:
    command = [sys.executable, __file__, "--role", "client", "--shm" if shm else "--no-shm",
               "--model", str(args.model), "--frames", str(args.frames), "--threads", str(args.threads),
               "--saturated-seconds", str(args.saturated_seconds)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="frames per closed-loop and raw measurement")
    parser.add_argument("--threads", type=int, default=2, help="backend threads (node and raw)")
    parser.add_argument("--model", type=Path, help="ONNX model (default: export a random 288x384 one)")
    parser.add_argument("--saturated-seconds", type=float, default=8.0)
    parser.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    parser.add_argument("--role", choices=("client",), help=argparse.SUPPRESS)
    parser.add_argument("--shm", action=argparse.BooleanOptionalAction, default=True, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.saturated_seconds <= 1.0:
        parser.error(f"--saturated-seconds {args.saturated_seconds:g}: the first second is a warm-up, give more than 1")
    if args.role == "client":
        return run_client(args)

    with tempfile.TemporaryDirectory(prefix="node_overhead_model_") as tmp:
        args.model = args.model or export_random_model(Path(tmp))
        results = {"SHM profile": _client(args, shm=True), "Fast DDS defaults": _client(args, shm=False)}
    header = (
        f"{'DDS':<18} {'mode':<38} {'raw FPS':>7} {'node FPS':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} "
    )
    print(header + f"{'lost':>5}  raw p50/p99 ms  median pair ratio")
    for dds, modes in results.items():
        for mode, node in modes.items():
            raw = node["raw"]
            line = (
                f"{dds:<18} {mode:<38} {raw['fps']:7.2f} {node['fps']:8.2f} {node['fps'] / raw['fps']:6.2f} "
            )
            if "input_hz" in node:
                line += f"{'camera at ' + format(node['input_hz'], '.0f') + ' Hz':>21}"
            else:
                line += f"{node['p50_ms']:7.1f} {node['p99_ms']:7.1f} {node['lost']:5d}"
            pair = f"{node['pair_ratio_median']:.2f}" if "pair_ratio_median" in node else "-"
            print(f"{line}  {raw['p50_ms']:.0f}/{raw['p99_ms']:.0f}  {pair}")
    print("node's own statistics (median of per-period p50, ms): inference / outputs / received -> published")
    for dds, modes in results.items():
        for mode, node in modes.items():
            if "node_breakdown_p50_ms" in node:
                b = node["node_breakdown_p50_ms"]
                figures = f"{b['inference_ms']:7.1f} {b['outputs_ms']:7.1f} {b['node_latency_ms']:7.1f}"
                print(f"{dds:<18} {mode:<38} {figures}")
    write_report(args.json, {**report_header(argv), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
