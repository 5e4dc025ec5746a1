"""numpy -> ROS message conversions of the node's outputs that need message classes (point clouds).

Images go through :mod:`gam_depth_ros.image_codec`, camera_info through
:mod:`gam_depth_ros.camera_model`; both fill a message the caller creates.
"""

from __future__ import annotations

import array

import numpy as np

from gam_depth_ros.pointcloud import PointCloud, pointfield_layout


def pointcloud_msg(header, cloud: PointCloud):
    """sensor_msgs/PointCloud2 of ``cloud`` (little-endian, packed fields), with ``header``."""
    from sensor_msgs.msg import PointCloud2, PointField

    with_rgb = "rgb" in cloud.points.dtype.names
    data = array.array("B")
    data.frombytes(memoryview(np.ascontiguousarray(cloud.points)).cast("B"))
    point_step = cloud.points.dtype.itemsize
    return PointCloud2(
        header=header,
        height=cloud.height,
        width=cloud.width,
        fields=[
            PointField(name=n, offset=o, datatype=t, count=c) for n, o, t, c in pointfield_layout(with_rgb)
        ],
        is_bigendian=False,
        point_step=point_step,
        row_step=point_step * cloud.width,
        data=data,
        is_dense=cloud.is_dense,
    )


def message_class(type_name: str):
    """The rclpy message class of ``pkg/msg/Name``."""
    import importlib

    package, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)
