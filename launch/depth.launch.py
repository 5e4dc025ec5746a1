"""Start gam_depth_ros depth_node (or its lifecycle variant) on a camera.

ros2 launch gam_depth_ros depth.launch.py model_path:=/path/to/model.onnx \
    image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

Without model_path the shipped demo model runs (trained on synthetic rooms: for trying the node).
image_topic should be rectified (image_proc's image_rect, or a driver's rectified colour stream).
Outputs: depth/image + depth/camera_info, depth/colorized/image, semantic/image, ... (docs/node.md).

Parameters come from params_file (default: the installed config/depth.yaml). model_path, backend
and use_sim_time override it only when given on the command line (or by an including launch file):
left empty, the params file's values hold, so a params file naming the robot's own model runs that
model. lifecycle:=true starts depth_lifecycle_node, which waits for configure/activate from a
lifecycle manager. When the node exits the launch ends, non-zero when the node failed (a bad model
path ends `ros2 launch` with status 1); respawn:=true restarts it after respawn_delay seconds
instead. use_shm_profile:=true (the default) gives the node's process alone the package's Fast DDS
profile with a 32 MiB shared-memory segment, merged into the robot's own profile when
FASTDDS_/FASTRTPS_DEFAULT_PROFILES_FILE names one (gam_depth_ros/dds_profile.py; a profile that
chooses its own transports is refused with the reason); nothing is set for other nodes.
"""

# The repository's launch/ folder makes ruff take the ROS `launch` package for a first-party one.
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from gam_depth_ros.dds_profile import node_dds_environment

# Launch arguments that override the params file when given (non-empty), with their parameter types.
OVERRIDES = {"model_path": str, "backend": str, "use_sim_time": bool}


def _boolean(launch_configurations: dict, name: str) -> bool:
    value = str(launch_configurations.get(name, "")).strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"launch argument {name}:={value!r}: expected true or false")
    return value == "true"


def parameter_overrides(launch_configurations: dict) -> dict:
    """The node parameters the user gave as launch arguments; empty ones leave the params file's value."""
    overrides = {}
    for name, kind in OVERRIDES.items():
        value = str(launch_configurations.get(name, "")).strip()
        if value:
            overrides[name] = _boolean(launch_configurations, name) if kind is bool else value
    return overrides


def end_launch_on_exit(event, context):
    """on_exit of the node: end the launch, with an error (launch status 1) when the node failed."""
    if context.is_shutdown:  # stopped by the launch itself (Ctrl-C): whatever its status, not a failure
        return None
    if event.returncode != 0:  # an exception is the only way to make LaunchService.run() return non-zero
        raise RuntimeError(f"{event.process_name} exited with status {event.returncode}: ending the launch")
    return [Shutdown(reason=f"{event.process_name} exited")]


def _depth_node(context, *args, **kwargs):
    """The node, built once the launch arguments are known (empty overrides left out, the DDS profile
    merged with the environment's)."""
    configurations = context.launch_configurations
    image_topic = LaunchConfiguration("image_topic")
    parameters = [LaunchConfiguration("params_file")]
    overrides = parameter_overrides(configurations)
    if overrides:
        parameters.append(overrides)
    environment = {}
    if _boolean(configurations, "use_shm_profile"):
        profile = os.path.join(get_package_share_directory("gam_depth_ros"), "config", "fastdds_shm.xml")
        environment = node_dds_environment(dict(context.environment), profile)
    respawn = _boolean(configurations, "respawn")
    try:
        respawn_delay = float(configurations.get("respawn_delay", ""))
    except ValueError:
        raise ValueError(f"launch argument respawn_delay:={configurations.get('respawn_delay')!r}: "
                         "expected seconds (a number >= 0)") from None
    lifecycle = _boolean(configurations, "lifecycle")
    node_class = LifecycleNode if lifecycle else Node
    return [
        node_class(
            package="gam_depth_ros",
            executable="depth_lifecycle_node" if lifecycle else "depth_node",
            name="depth_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=parameters,
            remappings=[
                ("image", image_topic),
                ("image/compressed", [image_topic, "/compressed"]),
                ("camera_info", LaunchConfiguration("camera_info_topic")),
            ],
            additional_env=environment,  # this process only: sibling nodes keep their own DDS settings
            respawn=respawn,
            respawn_delay=max(respawn_delay, 0.0),
            on_exit=None if respawn else end_launch_on_exit,
        )
    ]


def generate_launch_description():
    share = get_package_share_directory("gam_depth_ros")
    arguments = [
        DeclareLaunchArgument(
            "model_path",
            default_value="",
            description="Model: .onnx (metadata .json beside it) or checkpoint; empty: the params file's "
            "model_path (empty there too: the shipped demo model)",
        ),
        DeclareLaunchArgument(
            "backend",
            default_value="",
            description="auto, onnxruntime, torch or tensorrt (Jetson: a TensorRT engine built from the "
            ".onnx); empty: the params file's backend",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(share, "config", "depth.yaml"),
            description="YAML file with the node's parameters",
        ),
        DeclareLaunchArgument(
            "namespace", default_value="", description="Namespace of the node and its topics"
        ),
        DeclareLaunchArgument("image_topic", default_value="image", description="Camera image topic"),
        DeclareLaunchArgument(
            "camera_info_topic", default_value="camera_info", description="CameraInfo topic"
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="",
            description="true: follow /clock (rosbag replay); empty: the params file's use_sim_time (default false)",
        ),
        DeclareLaunchArgument(
            "use_shm_profile",
            default_value="true",
            description="true: the node's process (only) gets the 32 MiB shared-memory Fast DDS profile, "
            "merged into the profile FASTDDS_/FASTRTPS_DEFAULT_PROFILES_FILE names if any; false: the "
            "environment's DDS settings as they are",
        ),
        DeclareLaunchArgument(
            "lifecycle",
            default_value="false",
            description="true: depth_lifecycle_node (model loads on configure, topics on activate), for "
            "a lifecycle manager",
        ),
        DeclareLaunchArgument(
            "respawn",
            default_value="false",
            description="true: restart the node when it exits; false: its exit ends the launch "
            "(non-zero when it failed)",
        ),
        DeclareLaunchArgument(
            "respawn_delay", default_value="2.0", description="Seconds before a respawn (respawn:=true)"
        ),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_depth_node)])
