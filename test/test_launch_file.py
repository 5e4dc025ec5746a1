"""launch/depth.launch.py without the ROS 2 launch system (not on PyPI).

The file is parsed with ``ast`` and then run against small stand-ins of ``launch``,
``launch_ros`` and ``ament_index_python`` that record what the real classes would receive, so the
arguments, remappings, parameters and environment of the node are checked everywhere. Under the
real launch system (exit status, DDS environment scope, respawn, lifecycle) the file is tested by
test/test_launch_service.py where ``launch_ros`` is installed.
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
    "lifecycle",
    "respawn",
    "respawn_delay",
)
DEFAULTS = {"model_path": "", "backend": "", "use_sim_time": "", "use_shm_profile": "true", "lifecycle": "false",
            "respawn": "false", "respawn_delay": "2.0"}


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
            "Shutdown",
            "LaunchConfiguration",
            "Node",
            "LifecycleNode",
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
            Shutdown=classes["Shutdown"],
            OpaqueFunction=classes["OpaqueFunction"],
        ),
        "launch.substitutions": _module(
            "launch.substitutions", LaunchConfiguration=classes["LaunchConfiguration"]
        ),
        "launch_ros": _module("launch_ros"),
        "launch_ros.actions": _module(
            "launch_ros.actions", Node=classes["Node"], LifecycleNode=classes["LifecycleNode"]
        ),
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


class _Context:
    """Stand-in for launch's LaunchContext: the resolved launch arguments and the environment."""

    def __init__(self, launch_configurations: dict, environment: dict | None = None) -> None:
        self.launch_configurations = {**DEFAULTS, **launch_configurations}
        self.environment = environment or {}
        self.is_shutdown = False


def _node(description, environment: dict | None = None, **given):
    (entities,) = description.args
    (opaque,) = (e for e in entities if type(e).__name__ == "OpaqueFunction")
    (node,) = opaque.kwargs["function"](_Context(given, environment))
    return node


def test_launch_description_wires_the_node(description):
    (entities,) = description.args
    by_type: dict[str, list] = {}
    for entity in entities:
        by_type.setdefault(type(entity).__name__, []).append(entity)
    # Nothing but arguments and the node: no SetEnvironmentVariable, which would reach sibling nodes.
    assert set(by_type) == {"DeclareLaunchArgument", "OpaqueFunction"}
    arguments = {a.args[0]: a.kwargs for a in by_type["DeclareLaunchArgument"]}
    assert set(arguments) == set(ARGUMENTS)
    assert all(kwargs.get("description") for kwargs in arguments.values())
    # Empty defaults: the params file decides unless the user passes the argument.
    assert {name: arguments[name]["default_value"] for name in DEFAULTS} == DEFAULTS
    assert "tensorrt" in arguments["backend"]["description"]
    assert arguments["params_file"]["default_value"] == "/share/gam_depth_ros/config/depth.yaml"

    node = _node(description)
    assert type(node).__name__ == "Node"
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
    # The DDS profile is on this node's process only.
    profile = "/share/gam_depth_ros/config/fastdds_shm.xml"
    assert node.kwargs["additional_env"] == {"FASTDDS_DEFAULT_PROFILES_FILE": profile,
                                             "FASTRTPS_DEFAULT_PROFILES_FILE": profile}  # fmt: skip
    assert node.kwargs["respawn"] is False and callable(node.kwargs["on_exit"])


def test_node_exit_ends_the_launch_unless_respawn(description):
    on_exit = _node(description).kwargs["on_exit"]
    context = _Context({})
    failed = types.SimpleNamespace(returncode=1, process_name="depth_node-1")
    with pytest.raises(RuntimeError, match="depth_node-1 exited with status 1"):
        on_exit(failed, context)  # LaunchService.run() returns 1 on an exception, 0 on a Shutdown
    (shutdown,) = on_exit(types.SimpleNamespace(returncode=0, process_name="depth_node-1"), context)
    assert type(shutdown).__name__ == "Shutdown"
    context.is_shutdown = True  # the launch stopping the node (Ctrl-C) is no failure
    assert on_exit(failed, context) is None
    node = _node(description, respawn="true", respawn_delay="0.5")
    assert (node.kwargs["respawn"], node.kwargs["respawn_delay"], node.kwargs["on_exit"]) == (True, 0.5, None)
    with pytest.raises(ValueError, match="respawn_delay:='soon'"):
        _node(description, respawn_delay="soon")


def test_lifecycle_argument_picks_the_lifecycle_node(description):
    node = _node(description, lifecycle="true")
    assert type(node).__name__ == "LifecycleNode"
    assert (node.kwargs["executable"], node.kwargs["name"]) == ("depth_lifecycle_node", "depth_node")


def test_dds_profile_off_or_refused(description, tmp_path):
    assert _node(description, use_shm_profile="false").kwargs["additional_env"] == {}
    whitelist = tmp_path / "robot.xml"
    whitelist.write_text('<dds xmlns="http://www.eprosima.com"><profiles><participant is_default_profile="true">'
                         "<rtps><useBuiltinTransports>false</useBuiltinTransports></rtps></participant>"
                         "</profiles></dds>")  # fmt: skip
    with pytest.raises(ValueError, match="useBuiltinTransports.*use_shm_profile:=false"):
        _node(description, {"FASTDDS_DEFAULT_PROFILES_FILE": str(whitelist)})


def test_launch_arguments_given_explicitly_override_the_params_file(description):
    params_file, overrides = _node(
        description, model_path="/robot/model.onnx", backend="torch", use_sim_time="True"
    ).kwargs["parameters"]
    assert _config_name(params_file) == "params_file"
    assert overrides == {"model_path": "/robot/model.onnx", "backend": "torch", "use_sim_time": True}
    # Only what was given is overridden: the params file keeps the others.
    _, overrides = _node(description, use_sim_time="false").kwargs["parameters"]
    assert overrides == {"use_sim_time": False}


def test_launch_rejects_a_use_sim_time_that_is_not_a_boolean(description):
    with pytest.raises(ValueError, match="use_sim_time:='yes'"):
        _node(description, use_sim_time="yes")


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
