"""Live bag evaluation: the real ``depth_node`` process fed by a replay of the bag over DDS.

The node runs as a subprocess (``python -m gam_depth_ros.node``) in a namespace of its own with the
user's parameter file plus :data:`LIVE_OVERRIDES`; this process publishes the bag's serialized
image (and camera info) messages unchanged, at the recorded pace times ``rate``, and subscribes to
the node's outputs. Outputs are matched to inputs by header stamp: latency = receive time -
publish time of that stamp. Input QoS is reliable so that DDS loses nothing: every frame sent is
either processed (an output arrived) or dropped by the node's latest-frame slot.

Both processes get the package's Fast DDS shared-memory profile (unless the environment already
names one) and discovery limited to this machine.

If the node exits during the replay (a crash, the OOM killer), the replay stops there and the
result is marked incomplete (``complete = False``, ``reason`` with the exit code and the log): the
frames answered so far are still scored. The node never outlives the evaluation: it is stopped in
a ``finally`` (SIGINT, then SIGKILL after 10 s), and on Linux it is started with a parent-death
signal, so even a SIGKILLed evaluation takes its node with it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from gam_depth_ros import topics
from gam_depth_ros.evaluation.bag_reader import BagFrames
from gam_depth_ros.evaluation.offline import Output, progress
from gam_depth_ros.image_codec import image_msg_to_array

PACKAGE_CONFIG = Path(__file__).resolve().parents[2] / "config"
LIVE_OVERRIDES = {"qos_in_reliability": "reliable", "qos_in_depth": 1, "qos_out_reliability": "reliable",
                  "qos_out_depth": 10}
OUTPUT_TOPICS = {topic: kind for topic, (_, kind) in topics.OUTPUTS.items()}


@dataclass
class LiveResult:
    """The outcome of one replay."""

    outputs: list[Output]
    sent: int
    processed: int
    dropped: int
    latency_ms: list[float]
    duration_s: float
    node_log: str
    recorded: list[tuple[str, str, int, bytes]] = field(default_factory=list)  # (topic, type, stamp, raw)
    complete: bool = True  # False: the node exited before the replay ended
    reason: str = ""  # why it is incomplete


def shm_profile() -> Path | None:
    """The package's Fast DDS profile: from the source tree or the installed share directory."""
    candidates = [PACKAGE_CONFIG / "fastdds_shm.xml"]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("gam_depth_ros")) / "config" / "fastdds_shm.xml")
    except Exception:  # not installed through ament: the source tree is the only place
        pass
    return next((p for p in candidates if p.is_file()), None)


def dds_environment() -> dict[str, str]:
    """ROS environment shared by this process and the node (the caller's settings win)."""
    # Humble has no ROS_AUTOMATIC_DISCOVERY_RANGE: export ROS_LOCALHOST_ONLY=1 there.
    env = {"ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", str(100 + os.getpid() % 100)),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")}
    profile = shm_profile()
    named = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE") or os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE")
    if profile and not named:  # Humble and Jazzy (Fast DDS 2) read the old name, newer ones the new one
        old = os.environ.get("ROS_DISTRO", "") in ("humble", "iron", "jazzy")
        env["FASTRTPS_DEFAULT_PROFILES_FILE" if old else "FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    return env


def start_node(model: Path, namespace: str, params_file: Path | None, overrides: dict, folder: Path,
               env: dict[str, str]) -> subprocess.Popen:
    """The node subprocess; its output goes to ``folder/node.log``."""
    params = folder / "live_params.yaml"
    params.write_text(yaml.safe_dump({"/**/depth_node": {"ros__parameters": {"model_path": str(model), **overrides}}}))
    command = [sys.executable, "-m", "gam_depth_ros.node", "--ros-args"]
    if params_file:
        command += ["--params-file", str(params_file)]
    command += ["--params-file", str(params), "-r", f"__ns:={namespace}"]
    log = open(folder / "node.log", "wb")  # noqa: SIM115 - closed after the process ends
    process = subprocess.Popen(command, env=os.environ | env, stdout=log, stderr=subprocess.STDOUT,
                               preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    process.log_file = log  # type: ignore[attr-defined]
    return process


def _die_with_parent() -> None:
    """In the node's process before exec: SIGTERM it when the evaluation (its parent) dies, however."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_node(process: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT (the node shuts down cleanly), then SIGKILL after ``timeout``; close the log file that
    :func:`start_node` (or ``bench/ros_process.py``'s) opened; return the exit status."""
    if process.poll() is None:
        process.send_signal(2)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.log_file.close()  # type: ignore[attr-defined]
    return process.returncode


def run_live(bag: BagFrames, model: Path, depth_scale: float, rate: float = 1.0, params_file: Path | None = None,
             overrides: dict | None = None, record: bool = False, startup_timeout: float = 60.0,
             drain_timeout: float = 5.0) -> LiveResult:
    """Replay ``bag`` through a ``depth_node`` subprocess (see the module docstring).

    ``depth_scale`` is the metres per unit the node is expected to apply (reported per frame).
    Raises ``RuntimeError`` naming the log file if the node exits or never connects.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

    env = dds_environment()
    os.environ.update(env)
    namespace = f"/bag_eval_{os.getpid()}"
    compressed = bag.image_msgtype.endswith("CompressedImage")
    settings = {**LIVE_OVERRIDES, "use_compressed": compressed, **(overrides or {})}
    folder = Path(tempfile.mkdtemp(prefix="gam_bag_eval_"))
    process = start_node(model, namespace, params_file, settings, folder, env)
    types = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CameraInfo": CameraInfo,
             "sensor_msgs/msg/PointCloud2": PointCloud2}
    received: dict[str, dict[int, tuple[float, bytes]]] = {topic: {} for topic in OUTPUT_TOPICS}
    lock = threading.Lock()
    context = rclpy.Context()  # its own context: callers may run rclpy themselves
    rclpy.init(context=context)
    node = rclpy.create_node(f"bag_eval_{os.getpid()}", namespace=namespace, context=context)
    exited_early = None
    try:
        reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        image_pub = node.create_publisher(CompressedImage if compressed else Image,
                                          "image/compressed" if compressed else "image", reliable)
        info_pub = node.create_publisher(CameraInfo, "camera_info", reliable)

        def on_output(topic: str, msgtype: type):
            def callback(raw: bytes) -> None:
                now = time.monotonic()
                header = deserialize_message(raw, msgtype).header
                stamp = header.stamp.sec * 10**9 + header.stamp.nanosec
                with lock:
                    received[topic].setdefault(stamp, (now, raw))
            return callback

        # The node computes only what has subscribers: without --record, depth and semantics.
        for topic in OUTPUT_TOPICS if record else (topics.DEPTH, topics.SEMANTIC):
            msgtype = types[OUTPUT_TOPICS[topic]]
            node.create_subscription(msgtype, topic, on_output(topic, msgtype), reliable, raw=True)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        spinning = threading.Event()
        spinning.set()

        def spin() -> None:
            while spinning.is_set():
                executor.spin_once(timeout_sec=0.05)

        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()
        deadline = time.monotonic() + startup_timeout
        while image_pub.get_subscription_count() < 1 or node.count_publishers(f"{namespace}/{topics.DEPTH}") < 1:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"depth_node did not start (exit code {process.poll()}); "
                                   f"log: {folder / 'node.log'}\n{(folder / 'node.log').read_text()[-2000:]}")
            time.sleep(0.1)
        time.sleep(0.5)  # let the node's subscriptions match our publishers both ways
        sent_at: dict[int, float] = {}
        infos = sorted(bag.camera_info_raw)
        start_wall, start_stamp = time.monotonic(), bag.frames[0].stamp_ns if bag.frames else 0
        info_index = 0
        for i, frame in enumerate(bag.frames):
            due = start_wall + (frame.stamp_ns - start_stamp) / 1e9 / rate
            while time.monotonic() < due and process.poll() is None:
                time.sleep(min(0.05, max(0.0, due - time.monotonic())))
            if process.poll() is not None:  # the node died: stop, score what came back
                break
            while info_index < len(infos) and infos[info_index][0] <= frame.stamp_ns:
                info_pub.publish(infos[info_index][1])
                info_index += 1
            sent_at[frame.stamp_ns] = time.monotonic()
            image_pub.publish(frame.raw)
            if (i + 1) % 10 == 0 or i + 1 == len(bag.frames):
                progress(i + 1, len(bag.frames), "live replay")
        drain_until = time.monotonic() + drain_timeout
        while time.monotonic() < drain_until and process.poll() is None:
            with lock:
                if len(received[topics.DEPTH]) >= len(sent_at):
                    break
            time.sleep(0.05)
        time.sleep(0.2)  # the other outputs of the last frame
        exited_early = process.poll()  # not None: the node ended on its own, before being stopped
        with lock:  # first publish -> last depth received (not the drain wait after a dropped last frame)
            arrivals = [arrival for arrival, _ in received[topics.DEPTH].values()]
        duration = (max(arrivals) if arrivals else time.monotonic()) - start_wall
        spinning.clear()
        spinner.join(2)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
        stop_node(process)
    complete, reason = True, ""
    if exited_early is not None:
        complete = False
        tail = (folder / "node.log").read_text(errors="replace").strip().splitlines()[-3:]
        reason = (f"depth_node exited with code {process.returncode} after {len(sent_at)} of {len(bag.frames)} "
                  f"frames were sent; log: {folder / 'node.log'}" + (f" ({' | '.join(tail)})" if tail else ""))
    outputs, latency = [], []
    for stamp, sent in sent_at.items():
        if stamp not in received[topics.DEPTH]:
            continue
        arrival, raw = received[topics.DEPTH][stamp]
        depth = image_msg_to_array(deserialize_message(raw, Image))
        labels = None
        if stamp in received[topics.SEMANTIC]:
            labels = image_msg_to_array(deserialize_message(received[topics.SEMANTIC][stamp][1], Image))
        latency.append(1000.0 * (arrival - sent))
        outputs.append(Output(stamp, depth.astype(np.float32), labels, depth_scale, latency[-1]))
    recorded = [(f"/gam_depth/{topic}", OUTPUT_TOPICS[topic], stamp, raw)
                for topic, items in received.items() for stamp, (_, raw) in items.items()] if record else []
    return LiveResult(outputs, len(sent_at), len(outputs), len(sent_at) - len(outputs), latency, duration,
                      (folder / "node.log").read_text(errors="replace"), recorded, complete, reason)
