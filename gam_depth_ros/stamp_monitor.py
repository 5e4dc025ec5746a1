"""Input header stamps against the node's clock (plain Python, no ROS).

A robot meets three kinds of time trouble, and none may break the node's figures:

- **another clock**: a camera stamping with its own clock (a device clock, a machine without NTP)
  or with wall time while the node runs on ``use_sim_time`` (or the reverse). ``now - stamp`` is
  then seconds to years, not a latency: it is not recorded as ``end_to_end_ms`` and the problem is
  reported instead;
- **time going backwards**: a rosbag played in a loop, ``/clock`` jumping back, a camera restart.
  The caller resets what depends on the past (the floor-scale filter) and says so;
- **no clock yet**: ``use_sim_time`` with no ``/clock`` published, the node's time is 0.

The node keeps publishing with the input's header in every case; only the statistics change.
"""

from __future__ import annotations

import threading

#: ``now - stamp`` outside [-MAX_AHEAD_S, MAX_LATENCY_S] is not a latency: the stamps use another clock.
MAX_LATENCY_S = 10.0
MAX_AHEAD_S = 1.0  # stamps slightly ahead of the node's clock: two machines' clocks a little apart


class StampMonitor:
    """Per-frame stamp checks (worker thread) and the current problem (statistics timer)."""

    def __init__(self, sim_time: bool) -> None:
        self.sim_time = sim_time
        self.jumps_back = 0
        self._last_stamp_ns: int | None = None
        self._problem = ""
        self._lock = threading.Lock()

    @property
    def problem(self) -> str:
        """What is wrong with the latest frame's time ("" when nothing is)."""
        with self._lock:
            return self._problem

    def jump_back_s(self, stamp_ns: int) -> float:
        """Seconds the stamp went back from the previous frame's (0.0 when it did not); call per frame."""
        last, self._last_stamp_ns = self._last_stamp_ns, stamp_ns
        if last is None or stamp_ns >= last:
            return 0.0
        self.jumps_back += 1
        return (last - stamp_ns) * 1e-9

    def latency_ms(self, stamp_ns: int, now_ns: int) -> float | None:
        """End-to-end latency of a frame published at ``now_ns``; None (and :attr:`problem` set) when
        stamp and clock cannot be compared."""
        problem, latency = "", None
        clock = "simulated (/clock)" if self.sim_time else "system"
        if stamp_ns <= 0:
            problem = "input header stamps are zero: end-to-end latency not measured"
        elif now_ns <= 0:
            problem = ("use_sim_time is true but no /clock has been received: end-to-end latency not measured"
                       if self.sim_time else "the node's clock reads zero: end-to-end latency not measured")
        else:
            offset_s = (now_ns - stamp_ns) * 1e-9
            if -MAX_AHEAD_S <= offset_s <= MAX_LATENCY_S:
                latency = max(offset_s, 0.0) * 1e3
            else:
                problem = (f"input stamps are {abs(offset_s):.4g} s {'behind' if offset_s > 0 else 'ahead of'} "
                           f"the node's {clock} clock (another clock, or use_sim_time set differently from the "
                           "camera's): end-to-end latency not measured")
        with self._lock:
            self._problem = problem
        return latency
