"""``depth_lifecycle_node``: the depth node as a ROS 2 managed (lifecycle) node.

Same topics and parameters as ``depth_node`` (:mod:`gam_depth_ros.node`); what changes is when
things happen, so that a lifecycle manager (Nav2's ``lifecycle_manager``, or ``ros2 lifecycle
set``) starts and stops it:

- constructed (``unconfigured``): parameters declared, nothing loaded, no topics;
- ``configure``: parameters read and validated, the model loaded; a bad parameter or an
  unusable model fails the transition (the node stays ``unconfigured``) with the reason logged;
- ``activate``: publishers, subscriptions, statistics timer and worker thread start;
- ``deactivate``: all of that stops (no outputs, no subscriptions, the model stays loaded);
- ``cleanup``: the model is unloaded (parameters such as ``model_path`` can change, then
  ``configure`` again loads the new model);
- ``shutdown`` (from any state) and errors: stop and unload.

Run: ``depth_lifecycle_node --ros-args --params-file config/depth.yaml`` or
``python -m gam_depth_ros.lifecycle_node --ros-args ...``; ``depth.launch.py lifecycle:=true``.
"""

from __future__ import annotations

import sys

from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn

from gam_depth_ros.node import NODE_NAME, DepthNodeCore, spin_node


class DepthLifecycleNode(DepthNodeCore, LifecycleNode):
    """The depth node driven by lifecycle transitions (see the module docstring)."""

    def __init__(self, **node_kwargs) -> None:
        LifecycleNode.__init__(self, NODE_NAME, **node_kwargs)
        self._declare()

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self._load()
        except ValueError as error:
            self.get_logger().error(f"configure failed: {error}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured: model {self.params.model_path} on {self.backend.name}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._start()
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop()
        self.get_logger().info("deactivated: no subscriptions, no outputs")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._unload()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self.close()  # back to unconfigured: configure can be tried again
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Stop the I/O if active and unload the model (call before ``destroy_node``)."""
        self._stop()
        self._unload()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``depth_lifecycle_node``; returns the exit status (1: a parameter of the wrong
    type, from the command line or params file)."""
    return spin_node(DepthLifecycleNode, args)


if __name__ == "__main__":
    sys.exit(main())
