"""Start gam_depth_ros depth_node on a camera.

ros2 launch gam_depth_ros depth.launch.py model_path:=/path/to/model.onnx \
    image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

Without model_path the shipped demo model runs (trained on synthetic rooms: for trying the node).

Parameters come from params_file (default: the installed config/depth.yaml); model_path and
backend given here override it. With use_shm_profile (default true) the node gets the package's
Fast DDS profile with a 32 MiB shared-memory segment (see config/fastdds_shm.xml); the camera
driver should use it too.
"""

# The repository's launch/ folder makes ruff take the ROS `launch` package for a first-party one.
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("gam_depth_ros")
    shm_profile = os.path.join(share, "config", "fastdds_shm.xml")
    use_shm = IfCondition(LaunchConfiguration("use_shm_profile"))
    image_topic = LaunchConfiguration("image_topic")
    arguments = [
        DeclareLaunchArgument(
            "model_path",
            default_value=os.path.join(share, "models", "demo", "gam_depth_demo.onnx"),
            description="Model: .onnx (metadata .json beside it) or checkpoint; default: the shipped demo model",
        ),
        DeclareLaunchArgument("backend", default_value="auto", description="auto, onnxruntime or torch"),
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
            "use_sim_time", default_value="false", description="Use /clock (rosbag replay)"
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
            Node(
                package="gam_depth_ros",
                executable="depth_node",
                name="depth_node",
                namespace=LaunchConfiguration("namespace"),
                output="screen",
                parameters=[
                    LaunchConfiguration("params_file"),
                    {
                        "model_path": ParameterValue(LaunchConfiguration("model_path"), value_type=str),
                        "backend": ParameterValue(LaunchConfiguration("backend"), value_type=str),
                        "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
                    },
                ],
                remappings=[
                    ("image", image_topic),
                    ("image/compressed", [image_topic, "/compressed"]),
                    ("camera_info", LaunchConfiguration("camera_info_topic")),
                ],
            ),
        ]
    )
