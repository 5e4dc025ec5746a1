"""Overload benchmark: images at 200 Hz into a slow depth_node; its memory must stay flat.

The node (a random model exported at 64x96, ``debug_inference_delay`` making it slower than the
input, raw 640x480 rgb8 images, reliable QoS) is fed ``--rate`` Hz for ``--duration`` seconds.
Its resident memory (``/proc/<pid>/status`` VmRSS) is sampled every 0.5 s; at the end the
node's own counters (from /diagnostics) give frames in/out and dropped. Prints start (after
the first second), peak and end RSS, the growth from start to end, and the counters; ``--json``
writes them too. The one-frame slot means the queue never exceeds one frame: dropped = in - out
(minus the frame in flight), and memory does not grow with the backlog.

    .venv/bin/python bench/overload_rss.py --duration 60      # the benchmark (docs/reliability.md)
    .venv/bin/python bench/overload_rss.py --duration 4 --json out.json   # what the test runs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from report import report_header, write_report  # noqa: E402
from ros_process import ClientNode, configure_process, node_log, start_node, stop_node  # noqa: E402

from gam_depth_ros import topics  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def random_model(folder: Path) -> Path:
    from gam_depth_ros.export import export_random_model
    from gam_depth_ros.model_config import ModelConfig

    return export_random_model(folder / "slow.onnx", ModelConfig(height=64, width=96, base_channels=32))


def run(duration: float, rate: float, delay: float, folder: Path) -> dict:
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from gam_depth_ros.image_codec import fill_image_msg

    domain = configure_process(folder / "ros_log")
    ns = f"/overload{os.getpid()}"
    process = start_node({"model_path": str(random_model(folder)), "threads": 1, "stats_period": 0.5,
                          "debug_inference_delay": delay, "qos_in_reliability": "reliable",
                          "publish_points": False, "publish_depth_colorized": False,
                          "publish_semantic_colorized": False}, folder, ns, name="overload")
    client = ClientNode(domain, "overload_feeder")
    node, executor = client.node, client.executor
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    totals: dict[str, str] = {}
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: totals.update(
        {kv.key: kv.value for s in m.status if s.name.startswith(ns) for kv in s.values}), reliable)
    node.create_subscription(Image, f"{ns}/{topics.DEPTH}", lambda m: None, reliable)  # a consumer: the node works
    publisher = node.create_publisher(Image, f"{ns}/image", reliable)
    try:
        deadline = time.monotonic() + 60
        while publisher.get_subscription_count() < 1 or not totals:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("node did not start:\n" + node_log(process)[-2000:])
            executor.spin_once(timeout_sec=0.05)
        rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        samples, sent, start = [], 0, time.monotonic()
        next_sample = start
        while (now := time.monotonic()) < start + duration:
            msg = fill_image_msg(Image(header=Header(frame_id="cam")), rgb, "rgb8")
            msg.header.stamp = node.get_clock().now().to_msg()
            publisher.publish(msg)
            sent += 1
            if now >= next_sample:
                samples.append((now - start, rss_mb(process.pid)))
                next_sample += 0.5
            executor.spin_once(timeout_sec=0.0)
            time.sleep(max(0.0, start + sent / rate - time.monotonic()))
        settle = time.monotonic() + 1.5
        while time.monotonic() < settle:
            executor.spin_once(timeout_sec=0.05)
    finally:
        client.close()
        code = stop_node(process)
    after_first = [rss for t, rss in samples if t >= 1.0] or [samples[-1][1]]
    return {
        "duration_s": duration, "rate_hz": rate, "inference_delay_s": delay, "sent": sent,
        "achieved_rate_hz": sent / duration, "frames_in": int(totals.get("frames_in", 0)),
        "frames_out": int(totals.get("frames_out", 0)), "dropped": int(totals.get("dropped", 0)),
        "rss_start_mb": after_first[0], "rss_peak_mb": max(after_first), "rss_end_mb": after_first[-1],
        "rss_growth_mb": after_first[-1] - after_first[0], "exit_code": code,
        "rss_samples": [(round(t, 1), round(r, 1)) for t, r in samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--delay", type=float, default=0.1, help="node debug_inference_delay (s)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        result = run(args.duration, args.rate, args.delay, Path(folder))
    r = result
    print(f"overload {r['duration_s']:.0f} s at {r['achieved_rate_hz']:.0f} Hz (asked {args.rate:g}): "
          f"sent {r['sent']}, node in {r['frames_in']}, out {r['frames_out']}, dropped {r['dropped']}; "
          f"RSS start {r['rss_start_mb']:.1f} MB, peak {r['rss_peak_mb']:.1f} MB, end {r['rss_end_mb']:.1f} MB, "
          f"growth {r['rss_growth_mb']:+.1f} MB; "
          f"exit code {r['exit_code']}")
    write_report(args.json, {**report_header(argv), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
