"""depth_node and time over real DDS: stamps on another clock, stamps going back, use_sim_time with no /clock.

Before the stamp monitor, a camera stamping on another clock gave ``end_to_end_ms`` of about 1.8e12,
stamps going back left the floor-scale filter holding the old scene's scale without a word, and with
``use_sim_time`` and no ``/clock`` the statistics timer (on the node's clock) never fired, so no
statistics or diagnostics appeared at all.
"""

from __future__ import annotations

import time

from builtin_interfaces.msg import Time
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_helpers import NodeClient, node_log, run_node, wait_until  # noqa: F401 - run_node: fixture
from rosgraph_msgs.msg import Clock

INFO = NodeClient.camera_info(0, 64, 48, 50.0)


def test_stamps_on_another_clock_are_published_but_not_taken_as_latency(run_node):  # noqa: F811
    process, client = run_node()
    stamp = 7 * 10**9 + 123  # a device clock counting from its boot, 1.8e9 s behind the wall clock
    depth = client.send(stamp, info=INFO)
    assert (depth.header.stamp.sec, depth.header.stamp.nanosec, depth.header.frame_id) == (7, 123, "cam")
    level, message, values = client.next_diagnostics(until=lambda level, message, values: "another clock" in message)
    assert level == 1 and "s behind the node's system clock (another clock" in message, message
    assert "end_to_end_ms_p50" not in values  # was 1.8e12 ms
    assert "end-to-end latency not measured" in node_log(process)
    now = time.time_ns()  # the same clock as the node's: a real latency again, and the warning goes
    client.send(now)
    client.send(now + 1_000_000)
    level, message, values = client.next_diagnostics(until=lambda level, message, values: "end_to_end_ms_p50" in values)
    assert "another clock" not in message
    assert 0.0 <= float(values["end_to_end_ms_p50"]) < 10_000.0
    # use_sim_time switched on while running (rclpy's own parameter): accepted, and the node's clock
    # is now /clock, which nobody publishes
    setter = client.node.create_client(SetParameters, f"{client.ns}/depth_node/set_parameters")
    assert wait_until(client.executor, setter.service_is_ready, 30.0)
    future = setter.call_async(SetParameters.Request(parameters=[Parameter(
        name="use_sim_time", value=ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True))]))
    assert wait_until(client.executor, future.done, 10.0)
    assert future.result().results[0].successful, future.result().results[0].reason
    client.send(now + 2_000_000)
    level, message, _ = client.next_diagnostics()
    assert "use_sim_time is true but no /clock has been received" in message, message


def test_stamps_going_back_reset_the_floor_filter_and_the_frames_still_flow(run_node):  # noqa: F811
    process, client = run_node(scale_mode="floor", camera_height=0.8, publish_without_scale=True)
    start = time.time_ns()
    for offset_s in (0.0, 0.1, 0.2):
        client.send(start + int(offset_s * 1e9), info=INFO)
    looped = start - 5 * 10**9  # a bag played in a loop: 5 s back
    depth = client.send(looped, info=INFO)
    assert depth.header.stamp.sec * 10**9 + depth.header.stamp.nanosec == looped
    assert wait_until(client.executor, lambda: "input stamps went back by 5.200 s" in node_log(process), 5.0)
    assert "the floor-scale filter starts over" in node_log(process)
    level, message, values = client.next_diagnostics(until=lambda level, message, values:
                                                     values.get("time_jumps_back", "0") != "0")
    assert values["time_jumps_back"] == "1"
    client.send(looped + 100_000_000)  # forwards again from the new start: no new jump
    assert client.next_diagnostics()[2]["time_jumps_back"] == "1"
    # the warning once (the floor-scale reason "reset: input stamps went back" may also be in a statistics line)
    assert node_log(process).count("input stamps went back by") == 1, node_log(process)


def test_use_sim_time_without_clock_still_reports_then_measures_on_the_clock(run_node):  # noqa: F811
    process, client = run_node(use_sim_time=True)
    level, message, values = client.next_diagnostics(10.0)  # the statistics timer runs on a steady clock
    assert "frames_in" in values
    stamp = 1000 * 10**9  # a bag's recorded time
    depth = client.send(stamp, info=INFO)
    assert depth.header.stamp.sec == 1000
    # a report of the period before the frame may still arrive after its depth
    level, message, _ = client.next_diagnostics(until=lambda level, message, values: "/clock" in message)
    assert level == 1 and "use_sim_time is true but no /clock has been received" in message, message
    clock_now = stamp + 50_000_000  # /clock starts: 50 ms after the frame's stamp
    for _ in range(5):
        client.clock.publish(Clock(clock=Time(sec=clock_now // 10**9, nanosec=clock_now % 10**9)))
        wait_until(client.executor, lambda: False, 0.1)
    client.send(stamp + 1)
    level, message, values = client.next_diagnostics(until=lambda level, message, values: "end_to_end_ms_p50" in values)
    assert "/clock" not in message and "another clock" not in message, message
    assert 0.0 <= float(values["end_to_end_ms_p50"]) < 1000.0  # measured on the simulated clock
