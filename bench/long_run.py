"""Long run: 640x480 images at 30 Hz through depth_node for 20 minutes, with its default outputs.

The node runs the shipped demo model with ``config/depth.yaml``'s defaults (every output on,
points every 2nd pixel) and a subscriber on every output, so it computes them all. A feeder
publishes rgb8 640x480 images with their camera_info at ``--rate`` Hz, cycling through eight
pictures, stamped with the system clock (the node's). Per minute: the node's resident memory
(``VmRSS``, sampled every second, the minute's mean), its CPU time per answered frame, the
feeder's CPU time per frame, the machine's load average, the latency of ``depth/image`` (receive
time here minus the image's stamp, same clock) p50/p99, the node's own latency (message received ->
outputs published, the p95 its diagnostics report every 5 s, the minute's median and maximum), and
the drop rate (images sent that got no depth). Drift: last minute against the first, RSS growth
and p99 change in percent (targets < 2 % and < 10 %, docs/reliability.md); beside it the p99 over the
first and last five minutes. The feeder's own deserialisation of the outputs shares
the machine's cores with the node (as a robot's consumers would).

    .venv/bin/python bench/long_run.py --minutes 20 --json bench/results/long_run.json \\
        --plot bench/results/long_run.png

Prints the per-minute table and the drift; writes the raw figures as JSON and a plot (PIL).
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

from overload_rss import rss_mb  # noqa: E402
from report import report_header, write_report  # noqa: E402
from ros_process import ClientNode, camera_pictures, configure_process, node_log, start_node, stop_node  # noqa: E402

from gam_depth_ros import topics  # noqa: E402
from gam_depth_ros.demo_model import SOURCE_TREE_DEMO_MODEL  # noqa: E402

WIDTH, HEIGHT = 640, 480


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_minute(sent: dict[int, float], received: dict[int, float], samples: list[tuple[float, ...]],
               node_p95: list[tuple[float, float]], start: float, minutes: int) -> list[dict]:
    """Rows per minute of send time: frames sent, drop rate, latency p50/p99 (ms), mean RSS (MB), the
    node's CPU milliseconds per answered frame and the machine's 1-minute load average at the end.

    ``samples``: (time, node RSS MB, node CPU s, load average, feeder CPU s) once a second;
    ``node_p95``: (time, the node's ``node_latency_ms_p95``) from each diagnostics message.
    """
    rows = []
    for minute in range(minutes):
        lo, hi = start + 60 * minute, start + 60 * (minute + 1)
        stamps = [s for s, t in sent.items() if lo <= t < hi]
        latencies = [(received[s] - s) * 1e-6 for s in stamps if s in received]
        inside = [sample for sample in samples if lo <= sample[0] < hi]
        cpu = (inside[-1][2] - inside[0][2]) * 1e3 / len(latencies) if len(inside) > 1 and latencies else float("nan")
        feeder = (inside[-1][4] - inside[0][4]) * 1e3 / len(stamps) if len(inside) > 1 and stamps else float("nan")
        own = [value for t, value in node_p95 if lo <= t < hi]
        rows.append({"minute": minute + 1, "sent": len(stamps), "answered": len(latencies),
                     "drop_rate": 1 - len(latencies) / len(stamps) if stamps else float("nan"),
                     "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies else float("nan"),
                     "latency_p99_ms": float(np.percentile(latencies, 99)) if latencies else float("nan"),
                     "rss_mb": float(np.mean([x[1] for x in inside])) if inside else float("nan"),
                     "node_cpu_ms_per_frame": cpu, "feeder_cpu_ms_per_frame": feeder,
                     "node_latency_p95_ms_median": float(np.median(own)) if own else float("nan"),
                     "node_latency_p95_ms_max": float(np.max(own)) if own else float("nan"),
                     "load_avg_1min": inside[-1][3] if inside else float("nan")})
    return rows


def run(minutes: int, rate: float, folder: Path) -> dict:
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from gam_depth_ros.image_codec import fill_image_msg
    from gam_depth_ros.ros_messages import message_class

    domain = configure_process(folder / "ros_log")
    ns = f"/longrun{os.getpid()}"
    process = start_node({"model_path": str(SOURCE_TREE_DEMO_MODEL), "stats_period": 5.0}, folder, ns, name="long")
    client = ClientNode(domain, "long_run_feeder")
    node, executor = client.node, client.executor
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)  # the node's default input/output QoS
    received: dict[int, float] = {}
    for topic, (_, kind) in topics.OUTPUTS.items():
        callback = ((lambda m: received.setdefault(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec,
                                                   time.time_ns())) if topic == topics.DEPTH else (lambda m: None))
        node.create_subscription(message_class(kind), f"{ns}/{topic}", callback, qos)
    node_p95: list[tuple[float, float]] = []

    def on_diagnostics(msg) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.startswith(ns) and "node_latency_ms_p95" in values:
                node_p95.append((time.time(), float(values["node_latency_ms_p95"])))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    image_pub = node.create_publisher(Image, f"{ns}/image", qos)
    info_pub = node.create_publisher(CameraInfo, f"{ns}/camera_info", qos)
    frames = [fill_image_msg(Image(header=Header(frame_id="cam")), picture, "rgb8")
              for picture in camera_pictures(8, HEIGHT, WIDTH)]
    info = CameraInfo(header=Header(frame_id="cam"), width=WIDTH, height=HEIGHT, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=[525.0, 0, 319.5, 0, 525.0, 239.5, 0, 0, 1],
                      r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], p=[525.0, 0, 319.5, 0, 0, 525.0, 239.5, 0, 0, 0, 1.0, 0])
    sent: dict[int, float] = {}  # stamp ns -> send time (time.time_ns() based, seconds)
    samples: list[tuple[float, ...]] = []  # time, node RSS, node CPU s, load average, feeder CPU s
    try:
        deadline = time.monotonic() + 60
        while image_pub.get_subscription_count() < 1:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("node did not start:\n" + node_log(process)[-2000:])
            executor.spin_once(timeout_sec=0.05)
        executor.spin_once(timeout_sec=2.0)  # let every output subscription match
        start = time.time()
        count, next_rss = 0, start
        while (now := time.time()) < start + 60 * minutes:
            stamp_ns = time.time_ns()
            msg = frames[count % len(frames)]
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
            info.header.stamp = msg.header.stamp
            info_pub.publish(info)
            image_pub.publish(msg)
            sent[stamp_ns] = now
            count += 1
            if now >= next_rss:
                samples.append((now, rss_mb(process.pid), cpu_seconds(process.pid), os.getloadavg()[0],
                                cpu_seconds(os.getpid())))
                next_rss += 1.0
            while time.time() < start + count / rate:
                executor.spin_once(timeout_sec=max(0.0, start + count / rate - time.time()))
        settle = time.monotonic() + 3.0
        while time.monotonic() < settle:
            executor.spin_once(timeout_sec=0.05)
    finally:
        client.close()
        code = stop_node(process)
    rows = per_minute(sent, received, samples, node_p95, start, minutes)
    first, last = rows[0], rows[-1]
    span = max(1, min(5, minutes // 2))  # beside the target's first/last minute: five-minute windows, less noisy
    early = [(received[s] - s) * 1e-6 for s, t in sent.items() if t < start + 60 * span and s in received]
    late = [(received[s] - s) * 1e-6 for s, t in sent.items() if t >= start + 60 * (minutes - span) and s in received]
    return {"minutes": minutes, "rate_hz": rate, "size": [WIDTH, HEIGHT], "sent": len(sent),
            "answered": sum(r["answered"] for r in rows), "exit_code": code, "per_minute": rows,
            "rss_growth_percent": 100 * (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"],
            "p99_drift_percent": 100 * (last["latency_p99_ms"] - first["latency_p99_ms"]) / first["latency_p99_ms"],
            "window_minutes": span, "p99_first_window_ms": float(np.percentile(early, 99)),
            "p99_last_window_ms": float(np.percentile(late, 99))}


def plot(rows: list[dict], path: Path) -> None:
    """Two panels, per minute: RSS (MB) and latency p50/p99 (ms)."""
    from PIL import Image, ImageDraw

    width, height, margin = 800, 520, 60
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    minutes = [r["minute"] for r in rows]
    panels = (("RSS (MB)", [("rss_mb", (30, 90, 200))], 0),
              ("depth latency p50 / p99 (ms)", [("latency_p50_ms", (30, 150, 60)), ("latency_p99_ms", (200, 50, 40))],
               1))
    for title, series, index in panels:
        top = 20 + index * (height // 2)
        box = (margin, top + 20, width - 20, top + height // 2 - 40)
        values = [r[key] for key, _ in series for r in rows if np.isfinite(r[key])]
        lo, hi = min(values), max(values)
        lo, hi = (lo - 1, hi + 1) if hi - lo < 1e-9 else (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        draw.rectangle(box, outline="black")
        draw.text((margin, top), title, fill="black")
        draw.text((4, box[1]), f"{hi:.1f}", fill="black")
        draw.text((4, box[3] - 10), f"{lo:.1f}", fill="black")
        draw.text((box[2] - 60, box[3] + 4), f"minute {minutes[-1]}", fill="black")

        def xy(minute, value, box=box, lo=lo, hi=hi):
            x = box[0] + (box[2] - box[0]) * (minute - minutes[0]) / max(1, minutes[-1] - minutes[0])
            return x, box[3] - (box[3] - box[1]) * (value - lo) / (hi - lo)

        for key, colour in series:
            points = [xy(r["minute"], r[key]) for r in rows if np.isfinite(r[key])]
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
            draw.text((box[2] - 150, box[1] + 4 + 12 * series.index((key, colour))), key, fill=colour)
    canvas.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        result = run(args.minutes, args.rate, Path(folder))
    result = {**report_header(argv, load_avg_before=load_before, load_avg_after=os.getloadavg()), **result}
    print(f"{'minute':>6s} {'sent':>6s} {'drop %':>7s} {'p50 ms':>8s} {'p99 ms':>8s} {'RSS MB':>8s} "
          f"{'node CPU ms/frame':>18s} {'feeder CPU':>10s} {'node p95 med/max':>16s} {'load':>6s}")
    for r in result["per_minute"]:
        print(f"{r['minute']:6d} {r['sent']:6d} {100 * r['drop_rate']:7.1f} {r['latency_p50_ms']:8.1f} "
              f"{r['latency_p99_ms']:8.1f} {r['rss_mb']:8.1f} {r['node_cpu_ms_per_frame']:18.1f} "
              f"{r['feeder_cpu_ms_per_frame']:10.1f} {r['node_latency_p95_ms_median']:7.1f}/"
              f"{r['node_latency_p95_ms_max']:<8.1f} {r['load_avg_1min']:6.2f}")
    print(f"RSS growth first -> last minute {result['rss_growth_percent']:+.2f} % (target < 2 %); "
          f"p99 drift {result['p99_drift_percent']:+.1f} % (target < 10 %); exit code {result['exit_code']}")
    print(f"p99 over the first and last {result['window_minutes']} minutes: {result['p99_first_window_ms']:.1f} -> "
          f"{result['p99_last_window_ms']:.1f} ms")
    write_report(args.json, result)
    if args.plot:
        plot(result["per_minute"], args.plot)
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
