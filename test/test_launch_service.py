"""launch/depth.launch.py under the real ROS 2 launch system (``launch``, ``launch_ros``).

Skipped where ``launch_ros`` is not installed (it is not on PyPI: a ROS 2 install or a source
overlay provides it). The launch runs as a robot's would: ``LaunchService`` in its own process
(it must own the main thread and signals), an outer launch description that includes
depth.launch.py in a namespace beside a sibling process, and the package found through an ament
prefix made here: its ``share/`` is the repository's files, its ``lib/gam_depth_ros/`` holds
console scripts like colcon's that also record the environment each node process started with.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("launch_ros", reason="the ROS 2 launch system (launch_ros) is not installed")

from ros_helpers import REPO, ros_env

SCRIPTS = {"depth_node": "gam_depth_ros.node", "depth_lifecycle_node": "gam_depth_ros.lifecycle_node"}
# Console script as colcon writes it, plus a record of the process's environment.
SCRIPT = """#!{python}
import json, os, sys
with open(os.path.join(os.environ["GAM_TEST_ENV_DIR"], "node-%d.json" % os.getpid()), "w") as f:
    json.dump(dict(os.environ), f)
from {module} import main
sys.exit(main())
"""
# The robot's launch: a sibling process and depth.launch.py included in a namespace.
ROBOT_LAUNCH = """
import sys
from launch import LaunchDescription, LaunchService
from launch.actions import ExecuteProcess, GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import PushRosNamespace

arguments = dict(a.split(":=", 1) for a in sys.argv[2:])
sibling = "import json, os; json.dump(dict(os.environ), open(os.environ['GAM_TEST_ENV_DIR'] + '/sibling.json', 'w'))"
description = LaunchDescription([
    ExecuteProcess(cmd=[sys.executable, "-c", sibling], output="screen"),
    GroupAction([
        PushRosNamespace("robot1"),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=arguments.items()),
    ]),
])
service = LaunchService()
service.include_launch_description(description)
sys.exit(service.run())
"""
ROBOT_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com"><profiles>
  <participant profile_name="robot" is_default_profile="true"><rtps><name>robot</name></rtps></participant>
</profiles></dds>
"""


@pytest.fixture
def robot(tmp_path):
    """Paths and environment of a launch: the ament prefix, the robot's launch file and profile."""
    prefix = tmp_path / "install"
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "gam_depth_ros").touch()
    share = prefix / "share" / "gam_depth_ros"
    share.mkdir()
    for folder in ("config", "launch"):
        (share / folder).symlink_to(REPO / folder)
    (prefix / "lib" / "gam_depth_ros").mkdir(parents=True)
    for name, module in SCRIPTS.items():
        script = prefix / "lib" / "gam_depth_ros" / name
        script.write_text(SCRIPT.format(python=sys.executable, module=module))
        script.chmod(0o755)
    (tmp_path / "robot_launch.py").write_text(ROBOT_LAUNCH)
    (tmp_path / "robot_dds.xml").write_text(ROBOT_PROFILE)
    (tmp_path / "env").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_"))}
    env.update(ros_env(tmp_path / "ros_log", shm_profile=False))
    env.update({"AMENT_PREFIX_PATH": str(prefix), "GAM_TEST_ENV_DIR": str(tmp_path / "env"),
                "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
                "FASTDDS_DEFAULT_PROFILES_FILE": str(tmp_path / "robot_dds.xml")})  # fmt: skip
    return tmp_path, env


def start_launch(robot, *arguments: str) -> subprocess.Popen:
    folder, env = robot
    command = [sys.executable, str(folder / "robot_launch.py"), str(REPO / "launch" / "depth.launch.py"), *arguments]
    return subprocess.Popen(command, env=env, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def environments(folder: Path) -> tuple[list[dict], dict]:
    """The recorded environments: of each node process started, and of the sibling."""
    nodes = [json.loads(p.read_text()) for p in sorted((folder / "env").glob("node-*.json"))]
    sibling = folder / "env" / "sibling.json"
    return nodes, json.loads(sibling.read_text()) if sibling.exists() else {}


def wait_for_files(folder: Path, pattern: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(list((folder / "env").glob(pattern))) < count:
        assert time.monotonic() < deadline, f"fewer than {count} {pattern} within {timeout} s"
        time.sleep(0.1)


def test_failing_node_ends_the_launch_non_zero_and_dds_profile_stays_on_the_node(robot):
    folder, _ = robot
    missing = folder / "missing.onnx"
    process = start_launch(robot, f"model_path:={missing}")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1, output
    assert "cannot start" in output and str(missing) in output and "exited with status 1" in output, output
    assert "XMLPARSER" not in output, output  # Fast DDS took the merged profile without complaint
    (node,), sibling = environments(folder)
    merged = node["FASTDDS_DEFAULT_PROFILES_FILE"]
    assert merged != str(folder / "robot_dds.xml") and node["FASTRTPS_DEFAULT_PROFILES_FILE"] == merged
    assert "<name>robot</name>" in Path(merged).read_text() and "gam_depth_shm" in Path(merged).read_text()
    # The sibling of the include keeps the robot's profile; no variable leaks into it.
    assert sibling["FASTDDS_DEFAULT_PROFILES_FILE"] == str(folder / "robot_dds.xml")
    assert "FASTRTPS_DEFAULT_PROFILES_FILE" not in sibling


def test_shm_profile_off_leaves_the_environment_alone(robot):
    folder, _ = robot
    process = start_launch(robot, f"model_path:={folder / 'missing.onnx'}", "use_shm_profile:=false")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1, output
    (node,), _ = environments(folder)
    assert node["FASTDDS_DEFAULT_PROFILES_FILE"] == str(folder / "robot_dds.xml")
    assert "FASTRTPS_DEFAULT_PROFILES_FILE" not in node


def test_respawn_restarts_the_node_and_ctrl_c_ends_cleanly(robot):
    folder, _ = robot
    process = start_launch(robot, f"model_path:={folder / 'missing.onnx'}", "respawn:=true", "respawn_delay:=0.5")
    try:
        wait_for_files(folder, "node-*.json", 2, timeout=60)  # failed, respawned, failed again
        assert process.poll() is None  # respawn: the node's failure does not end the launch
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output


def test_lifecycle_argument_starts_the_lifecycle_node(robot):
    folder, _ = robot
    process = start_launch(robot, "lifecycle:=true", f"model_path:={folder / 'missing.onnx'}")
    try:
        wait_for_files(folder, "node-*.json", 1, timeout=60)
        time.sleep(3.0)  # unconfigured, the model not read yet: it must keep running
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "depth_lifecycle_node" in output and "cannot start" not in output, output
