"""gam_depth_ros: monocular depth and semantics for indoor robots (GAM-Depth).

The runtime package: networks, export, inference backends, pre/post-processing and the ROS 2 node.
It never imports the top-level ``training`` package.
"""

__version__ = "0.1.0"
