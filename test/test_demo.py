"""make demo: sample bag generated, replayed live through depth_node, report and recording written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ros_helpers import ros_env

from gam_depth_ros.evaluation.bag_reader import bag_topics

ROOT = Path(__file__).resolve().parents[1]


def test_demo_replays_the_sample_bag_through_the_node(tmp_path):
    env = os.environ | ros_env(tmp_path / "ros_log")
    command = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--output", str(tmp_path), "--frames", "12",
               "--image-size", "60x80"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "with gam_depth_demo.onnx" in result.stdout and "RANDOM" not in result.stderr  # the shipped model
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["mode"] == "live" and report["complete"] and report["frames"] == 12
    timing = report["timing"]
    assert timing["sent"] == 12 and timing["processed"] + timing["dropped"] == 12 and timing["processed"] > 0
    assert report["summary"]["scored_frames"] == timing["processed"]
    recorded = bag_topics(tmp_path / "recorded_bag")  # inputs and everything the node published
    assert recorded["/camera/image_raw"] == "sensor_msgs/msg/Image"
    assert recorded["/gam_depth/depth/camera_info"] == "sensor_msgs/msg/CameraInfo"
    assert recorded["/gam_depth/points"] == "sensor_msgs/msg/PointCloud2"
    assert "latency p50" in result.stdout and str(tmp_path / "report" / "report.md") in result.stdout
    if not (ROOT / "models" / "demo" / "gam_depth_demo.onnx").is_file():  # the stand-in says so, loudly
        assert result.stderr.count("seeded RANDOM network") == 2
    # Generated once, reused by the next run with the same settings.
    before = (tmp_path / "sample_bag" / "metadata.yaml").stat().st_mtime_ns
    again = subprocess.run(command + ["--mode", "offline"], capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "sample_bag" / "metadata.yaml").stat().st_mtime_ns == before
