"""``gam-depth-bag-eval --mode live`` when things die (issue 18, item 6).

- The node is SIGKILLed mid-replay: the frames answered so far are scored, the report is marked
  incomplete with the node's exit code, the exit status is 3, and no node process is left.
- The evaluation itself is SIGTERMed or SIGKILLed mid-replay: its node goes too (a process listing
  of ``/proc`` finds no ``gam_depth_ros.node`` of that evaluation afterwards).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from model_fixtures import SMALL_HEIGHT, SMALL_WIDTH
from ros_helpers import REPO, configure_process, ros_env

from gam_depth_ros import topics
from training.synthetic.generate import TOPICS, render_sequence, write_bag

FRAMES = 30  # a 30 Hz bag: 1 s, replayed at --rate 0.1 (10 s) so that the node dies in the middle
KILL_AFTER = 3  # depth images seen before the kill


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    sequence = render_sequence(11, 0, FRAMES, SMALL_HEIGHT, SMALL_WIDTH, "robot")
    return write_bag(sequence, tmp_path_factory.mktemp("bags") / "robot_bag")


def node_pids(namespace: str) -> list[int]:
    """Live ``gam_depth_ros.node`` processes started for ``namespace`` (a listing of /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gam_depth_ros.node" in command and f"__ns:={namespace}".encode() in command:
            found.append(int(entry.name))
    return found


def wait_for_depth(namespace: str, count: int, timeout: float = 120.0) -> int:
    """Listen to the node's depth image (``namespace``/depth/image) until ``count`` images arrived (or the
    timeout); returns how many."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"watch_{os.getpid()}_{threading.get_ident() % 1000}", context=context)
    seen = []
    node.create_subscription(Image, f"{namespace}/{topics.DEPTH}", lambda msg: seen.append(1),
                             QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < count and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return len(seen)


def command(bag: Path, model: Path, out: Path) -> list[str]:
    return ["--bag", str(bag), "--image-topic", TOPICS["image"], "--camera-info-topic", TOPICS["camera_info"],
            "--depth-topic", TOPICS["depth"], "--model", str(model), "--output", str(out), "--mode", "live",
            "--rate", "0.1"]


def test_node_killed_mid_run_gives_an_incomplete_report_of_the_frames_so_far(tmp_path, bag, small_model):
    from gam_depth_ros.evaluation.bag_eval import main

    configure_process(tmp_path / "ros_log")
    namespace = f"/bag_eval_{os.getpid()}"  # run_live's namespace in this process

    def kill_the_node() -> None:
        wait_for_depth(namespace, KILL_AFTER)
        for pid in node_pids(namespace):
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_node, daemon=True)
    killer.start()
    started = time.monotonic()
    code = main(command(bag, small_model.onnx, tmp_path / "out"))
    elapsed = time.monotonic() - started
    killer.join(10)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 3 and report["complete"] is False
    assert report["incomplete_reason"].startswith("depth_node exited with code -9 after "), report["incomplete_reason"]
    timing = report["timing"]
    assert KILL_AFTER <= timing["processed"] < timing["frames_in_bag"] == FRAMES
    assert timing["sent"] < FRAMES  # the replay stopped when the node died
    assert report["summary"]["scored_frames"] == timing["processed"] == len(report["per_frame"])
    assert "INCOMPLETE" in (tmp_path / "out" / "report.md").read_text()
    assert elapsed < 60  # not the whole 10 s replay plus drain and startup timeouts after the death
    assert node_pids(namespace) == []


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_the_node_never_outlives_the_evaluation(tmp_path, bag, small_model, how):
    configure_process(tmp_path / "ros_log")
    env = os.environ | ros_env(tmp_path / "ros_log")
    evaluation = subprocess.Popen(
        [sys.executable, "-m", "gam_depth_ros.evaluation.bag_eval", *command(bag, small_model.onnx, tmp_path / "o")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    namespace = f"/bag_eval_{evaluation.pid}"
    try:
        assert wait_for_depth(namespace, KILL_AFTER) == KILL_AFTER, "the live replay never produced depth"
        assert len(node_pids(namespace)) == 1
        evaluation.send_signal(how)
        evaluation.wait(30)
        deadline = time.monotonic() + 15
        while node_pids(namespace) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert node_pids(namespace) == [], f"depth_node left behind after {how.name} to the evaluation"
    finally:
        for pid in node_pids(namespace):
            os.kill(pid, signal.SIGKILL)
        if evaluation.poll() is None:
            evaluation.kill()
        evaluation.wait()
        evaluation.stderr.close()
