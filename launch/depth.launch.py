"""Start gam_depth_ros depth_node on a camera.

ros2 launch gam_depth_ros depth.launch.py model_path:=/path/to/model.onnx \
    image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

Without model_path the shipped demo model runs (trained on synthetic rooms: for trying the node).
image_topic should be rectified (image_proc's image_rect, or a driver's rectified colour stream).
Outputs: depth/image + depth/camera_info, depth/colorized/image, semantic/image, ... (docs/node.md).

Parameters come from params_file (default: the installed config/depth.yaml). model_path, backend
and use_sim_time override it only when given on the command line (or by an including launch file):
left empty, the params file's values hold, so a params file naming the robot's own model runs that
model. With use_shm_profile (default true) the node gets the package's
Fast DDS profile with a 32 MiB shared-memory segment (see config/fastdds_shm.xml); the camera
driver should use it too.
"""

# The repository's launch/ folder makes ruff take the ROS `launch` package for a first-party one.
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

# Launch arguments that override the params file when given (non-empty), with their parameter types.
OVERRIDES = {"model_path": str, "backend": str, "use_sim_time": bool}


def parameter_overrides(launch_configurations: dict) -> dict:
    """The node parameters the user gave as launch arguments; empty ones leave the params file's value."""
    overrides = {}
    for name, kind in OVERRIDES.items():
        value = str(launch_configurations.get(name, "")).strip()
        if not value:
            continue
        if kind is bool:
            if value.lower() not in ("true", "false"):
                raise ValueError(f"launch argument {name}:={value!r}: expected true or false")
            overrides[name] = value.lower() == "true"
        else:
            overrides[name] = value
    return overrides


def _depth_node(context, *args, **kwargs):
    """The node, built once the launch arguments are known (so empty overrides can be left out)."""
    image_topic = LaunchConfiguration("image_topic")
    parameters = [LaunchConfiguration("params_file")]
    overrides = parameter_overrides(context.launch_configurations)
    if overrides:
        parameters.append(overrides)
    return [
        Node(
            package="gam_depth_ros",
            executable="depth_node",
            name="depth_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=parameters,
            remappings=[
                ("image", image_topic),
                ("image/compressed", [image_topic, "/compressed"]),
                ("camera_info", LaunchConfiguration("camera_info_topic")),
            ],
        )
    ]


def generate_launch_description():
    share = get_package_share_directory("gam_depth_ros")
    shm_profile = os.path.join(share, "config", "fastdds_shm.xml")
    use_shm = IfCondition(LaunchConfiguration("use_shm_profile"))
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
            description="auto, onnxruntime, torch or tensorrt; empty: the params file's backend",
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
            description="Use the 32 MiB shared-memory Fast DDS profile",
        ),
    ]
    return LaunchDescription(
        arguments
        + [
            SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", shm_profile, condition=use_shm),
            SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", shm_profile, condition=use_shm),
            OpaqueFunction(function=_depth_node),
        ]
    )
