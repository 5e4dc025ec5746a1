"""gam_depth_ros.dds_profile: the node's Fast DDS profile, merged with a robot's, read by real Fast DDS.

Whether Fast DDS took a profile is measured, not assumed: a participant's shared-memory segment is
mapped into its process, so its size shows in /proc/self/maps (the default segment is 512 KiB, the
package's 32 MiB).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from gam_depth_ros.dds_profile import PROFILE_VARIABLES, existing_profile, merge_profiles, node_dds_environment

REPO = Path(__file__).resolve().parents[1]
PACKAGE_PROFILE = str(REPO / "config" / "fastdds_shm.xml")
ROBOT_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <participant profile_name="robot" is_default_profile="true">
      <rtps>
        <name>robot_participant</name>
        <builtin><discovery_config><discoveryProtocol>SIMPLE</discoveryProtocol></discovery_config></builtin>
        {transports}
      </rtps>
    </participant>
  </profiles>
</dds>
"""
WHITELIST = """<useBuiltinTransports>false</useBuiltinTransports>
        <userTransports><transport_id>robot_udp</transport_id></userTransports>"""
# Sum of this process's mappings of Fast DDS data segments (not the small per-port ones); Fast DDS 3
# names them fastdds_*, Fast DDS 2 (Humble, Jazzy) fastrtps_*.
SEGMENT_PROBE = """
import rclpy, time
rclpy.init()
node = rclpy.create_node("profile_probe")
time.sleep(0.3)
total = 0
for line in open("/proc/self/maps"):
    name = line.split()[-1]
    if name.startswith(("/dev/shm/fastdds_", "/dev/shm/fastrtps_")) and "port" not in name:
        start, end = line.split()[0].split("-")
        total += int(end, 16) - int(start, 16)
print("segment", total)
node.destroy_node()
rclpy.shutdown()
"""


def robot_profile(folder: Path, transports: str = "") -> str:
    path = folder / "robot.xml"
    path.write_text(ROBOT_PROFILE.format(transports=transports))
    return str(path)


def shm_segment_bytes(profile: str | None, tmp_path: Path) -> int:
    """Size of the shared-memory segment a real participant maps with ``profile`` (None: Fast DDS default)."""
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env.update({"ROS_DOMAIN_ID": str(1 + os.getpid() % 100), "ROS_LOG_DIR": str(tmp_path / "ros_log"),
                "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})  # fmt: skip
    if profile:
        env.update({name: profile for name in PROFILE_VARIABLES})
    result = subprocess.run([sys.executable, "-c", SEGMENT_PROBE], env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "XMLPARSER" not in result.stderr, result.stderr  # Fast DDS rejected (part of) the profile
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("segment ")]
    return int(line.split()[1])


def test_no_profile_in_the_environment_gives_the_package_profile(tmp_path):
    assert node_dds_environment({}, PACKAGE_PROFILE) == {name: PACKAGE_PROFILE for name in PROFILE_VARIABLES}
    segment = shm_segment_bytes(PACKAGE_PROFILE, tmp_path)
    assert 32 * 2**20 <= segment < 36 * 2**20  # measured 35,131,392 bytes (segment + Fast DDS bookkeeping)
    assert shm_segment_bytes(None, tmp_path) < 2**20  # the default: measured 552,960 bytes


def test_robot_profile_is_merged_not_replaced(tmp_path):
    robot = robot_profile(tmp_path)
    environment = node_dds_environment({"FASTRTPS_DEFAULT_PROFILES_FILE": robot}, PACKAGE_PROFILE, str(tmp_path))
    merged = environment["FASTDDS_DEFAULT_PROFILES_FILE"]
    assert environment == {name: merged for name in PROFILE_VARIABLES} and merged != robot
    ns = {"dds": "http://www.eprosima.com"}
    root = ElementTree.parse(merged).getroot()
    (participant,) = root.iterfind(".//dds:participant", ns)
    # The robot's settings stay; the package's transports join them.
    assert participant.get("profile_name") == "robot"
    assert participant.find("dds:rtps/dds:name", ns).text == "robot_participant"
    assert participant.find(".//dds:discoveryProtocol", ns).text == "SIMPLE"
    used = [t.text for t in participant.iterfind("dds:rtps/dds:userTransports/dds:transport_id", ns)]
    assert used == ["gam_depth_shm", "gam_depth_udp"]
    assert 32 * 2**20 <= shm_segment_bytes(merged, tmp_path) < 36 * 2**20
    assert Path(robot).read_text() == ROBOT_PROFILE.format(transports="")  # the robot's file is untouched


def test_robot_profile_without_default_participant_gets_ours(tmp_path):
    robot = tmp_path / "robot.xml"
    robot.write_text(ROBOT_PROFILE.format(transports="").replace(' is_default_profile="true"', ""))
    merged = merge_profiles(str(robot), PACKAGE_PROFILE)
    names = [p.get("profile_name") for p in merged.getroot().iter("participant")]
    assert names == ["robot", "gam_depth_ros_shm"]


def test_robot_profile_that_chooses_transports_is_refused(tmp_path):
    robot = robot_profile(tmp_path, WHITELIST)
    with pytest.raises(ValueError, match="sets useBuiltinTransports and userTransports.*use_shm_profile:=false"):
        node_dds_environment({"FASTDDS_DEFAULT_PROFILES_FILE": robot}, PACKAGE_PROFILE, str(tmp_path))
    assert not (tmp_path / "fastdds_merged.xml").exists()


def test_unreadable_or_conflicting_profiles_are_refused(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text("<dds><profiles>")
    with pytest.raises(ValueError, match=f"{broken}: cannot read the Fast DDS profile"):
        node_dds_environment({"FASTDDS_DEFAULT_PROFILES_FILE": str(broken)}, PACKAGE_PROFILE, str(tmp_path))
    with pytest.raises(ValueError, match="missing.xml: cannot read"):
        node_dds_environment({"FASTDDS_DEFAULT_PROFILES_FILE": str(tmp_path / "missing.xml")}, PACKAGE_PROFILE)
    with pytest.raises(ValueError, match="name different files"):
        existing_profile({"FASTDDS_DEFAULT_PROFILES_FILE": "/a.xml", "FASTRTPS_DEFAULT_PROFILES_FILE": "/b.xml"})
    assert existing_profile({"FASTDDS_DEFAULT_PROFILES_FILE": " ", "FASTRTPS_DEFAULT_PROFILES_FILE": ""}) == ""
