"""launch/depth.launch.py without the ROS 2 launch system (not on PyPI).

The file is parsed with ``ast`` and then run against small stand-ins of ``launch``,
``launch_ros`` and ``ament_index_python`` that record what the real classes would receive, so the
arguments, remappings, parameters and environment of the node are checked. That the file works
under the real launch system was checked by hand (see docs/node.md).
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "depth.launch.py"
ARGUMENTS = (
    "model_path",
    "backend",
    "params_file",
    "namespace",
    "image_topic",
    "camera_info_topic",
    "use_sim_time",
    "use_shm_profile",
)


def test_launch_file_parses_and_declares_arguments():
    tree = ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    declared = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "DeclareLaunchArgument"
        and isinstance(node.args[0], ast.Constant)
    }
    assert declared == set(ARGUMENTS)


class Recorder:
    """Stand-in for a launch class: keeps its constructor arguments."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


def _module(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


@pytest.fixture
def description(monkeypatch, tmp_path):
    classes = {
        name: type(name, (Recorder,), {})
        for name in (
            "LaunchDescription",
            "DeclareLaunchArgument",
            "SetEnvironmentVariable",
            "IfCondition",
            "LaunchConfiguration",
            "Node",
            "OpaqueFunction",
        )
    }
    stubs = {
        "ament_index_python": _module("ament_index_python"),
        "ament_index_python.packages": _module(
            "ament_index_python.packages", get_package_share_directory=lambda package: f"/share/{package}"
        ),
        "launch": _module("launch", LaunchDescription=classes["LaunchDescription"]),
        "launch.actions": _module(
            "launch.actions",
            DeclareLaunchArgument=classes["DeclareLaunchArgument"],
            SetEnvironmentVariable=classes["SetEnvironmentVariable"],
            OpaqueFunction=classes["OpaqueFunction"],
        ),
        "launch.conditions": _module("launch.conditions", IfCondition=classes["IfCondition"]),
        "launch.substitutions": _module(
            "launch.substitutions", LaunchConfiguration=classes["LaunchConfiguration"]
        ),
        "launch_ros": _module("launch_ros"),
        "launch_ros.actions": _module("launch_ros.actions", Node=classes["Node"]),
    }
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("depth_launch_under_test", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def _config_name(value) -> str:
    assert type(value).__name__ == "LaunchConfiguration", value
    return value.args[0]


def test_launch_description_wires_the_node(description):
    (entities,) = description.args
    by_type: dict[str, list] = {}
    for entity in entities:
        by_type.setdefault(type(entity).__name__, []).append(entity)
    arguments = {a.args[0]: a.kwargs for a in by_type["DeclareLaunchArgument"]}
    assert set(arguments) == set(ARGUMENTS)
    assert all(kwargs.get("description") for kwargs in arguments.values())
    # Empty defaults: the params file decides unless the user passes the argument.
    assert arguments["model_path"]["default_value"] == ""
    assert arguments["backend"]["default_value"] == ""
    assert arguments["use_sim_time"]["default_value"] == ""
    assert "tensorrt" in arguments["backend"]["description"]
    assert arguments["params_file"]["default_value"] == "/share/gam_depth_ros/config/depth.yaml"
    assert arguments["use_shm_profile"]["default_value"] == "true"

    environment = {e.args[0]: e for e in by_type["SetEnvironmentVariable"]}
    assert set(environment) == {"FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"}
    for variable in environment.values():
        assert variable.args[1] == "/share/gam_depth_ros/config/fastdds_shm.xml"
        assert _config_name(variable.kwargs["condition"].args[0]) == "use_shm_profile"
    # The environment must be set before the node starts.
    order = [type(e).__name__ for e in entities]
    assert order.index("OpaqueFunction") > max(i for i, name in enumerate(order) if name == "SetEnvironmentVariable")

    (opaque,) = by_type["OpaqueFunction"]
    nodes = opaque.kwargs["function"](_Context({"model_path": "", "backend": "", "use_sim_time": ""}))
    (node,) = nodes
    assert (node.kwargs["package"], node.kwargs["executable"], node.kwargs["name"]) == (
        "gam_depth_ros",
        "depth_node",
        "depth_node",
    )
    assert _config_name(node.kwargs["namespace"]) == "namespace"
    # No launch argument given: only the params file, so its model_path/backend/use_sim_time hold.
    (params_file,) = node.kwargs["parameters"]
    assert _config_name(params_file) == "params_file"
    remappings = dict(node.kwargs["remappings"])
    assert _config_name(remappings["image"]) == "image_topic"
    assert _config_name(remappings["camera_info"]) == "camera_info_topic"
    compressed = remappings["image/compressed"]
    assert _config_name(compressed[0]) == "image_topic" and compressed[1] == "/compressed"


class _Context:
    """Stand-in for launch's LaunchContext: only the resolved launch arguments."""

    def __init__(self, launch_configurations: dict) -> None:
        self.launch_configurations = launch_configurations


def _node_parameters(description, **given) -> list:
    (entities,) = description.args
    (opaque,) = (e for e in entities if type(e).__name__ == "OpaqueFunction")
    configurations = {"model_path": "", "backend": "", "use_sim_time": "", **given}
    (node,) = opaque.kwargs["function"](_Context(configurations))
    return node.kwargs["parameters"]


def test_launch_arguments_given_explicitly_override_the_params_file(description):
    params_file, overrides = _node_parameters(
        description, model_path="/robot/model.onnx", backend="torch", use_sim_time="True"
    )
    assert _config_name(params_file) == "params_file"
    assert overrides == {"model_path": "/robot/model.onnx", "backend": "torch", "use_sim_time": True}
    # Only what was given is overridden: the params file keeps the others.
    _, overrides = _node_parameters(description, use_sim_time="false")
    assert overrides == {"use_sim_time": False}


def test_launch_rejects_a_use_sim_time_that_is_not_a_boolean(description):
    with pytest.raises(ValueError, match="use_sim_time:='yes'"):
        _node_parameters(description, use_sim_time="yes")


def test_installed_files_exist():
    """What the launch file loads from the package's share folder is in config/."""
    params = yaml.safe_load((REPO / "config" / "depth.yaml").read_text())
    assert "model_path" in params["/**/depth_node"]["ros__parameters"]
    root = ElementTree.parse(REPO / "config" / "fastdds_shm.xml").getroot()
    ns = {"dds": "http://www.eprosima.com"}
    transports = {
        t.find("dds:transport_id", ns).text: t for t in root.iterfind(".//dds:transport_descriptor", ns)
    }
    assert {t.find("dds:type", ns).text for t in transports.values()} == {"SHM", "UDPv4"}
    (shm,) = (t for t in transports.values() if t.find("dds:type", ns).text == "SHM")
    assert int(shm.find("dds:segment_size", ns).text) == 32 * 1024 * 1024
    (participant,) = root.iterfind(".//dds:participant", ns)
    assert participant.get("is_default_profile") == "true"
    used = {t.text for t in participant.iterfind(".//dds:userTransports/dds:transport_id", ns)}
    assert used == set(transports)
