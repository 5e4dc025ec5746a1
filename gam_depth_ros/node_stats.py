"""ROS-free helpers of the depth node: a one-slot frame mailbox, running statistics and the health
verdict its diagnostics report.

Both are thread-safe: the subscription callback and the stats timer run in the executor thread,
inference in the node's worker thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class LatestSlot:
    """Holds only the newest item: a put replaces an item not yet taken (counted as dropped)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Any = None
        self._closed = False

    def put(self, item: Any) -> bool:
        """Store ``item``; return True if it replaced one that was never taken."""
        with self._condition:
            replaced = self._item is not None
            self._item = item
            self._condition.notify()
            return replaced

    def take(self, timeout: float | None = None) -> Any:
        """The newest item, waiting up to ``timeout`` seconds; None on timeout or after close."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return None if self._closed else item

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake and stop every waiting :meth:`take`."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()


COUNTERS = ("frames_in", "frames_out", "dropped", "skipped_no_subscribers", "malformed", "errors", "time_jumps_back")
LATENCIES = ("inference_ms", "outputs_ms", "node_latency_ms", "end_to_end_ms")


@dataclass
class StatsSnapshot:
    """Totals since start and the latency percentiles and rates of the last period."""

    totals: dict[str, int]
    window: dict[str, int]  # counter increments within the period
    period_s: float
    percentiles: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (p50, p95)

    def rate_hz(self, counter: str) -> float:
        return self.window[counter] / self.period_s if self.period_s > 0 else 0.0

    def values(self) -> dict[str, str]:
        """Totals, input/output rates and latency percentiles as diagnostic key-value strings."""
        values = {name: str(value) for name, value in self.totals.items()}
        values["input_hz"] = f"{self.rate_hz('frames_in'):.2f}"
        values["output_hz"] = f"{self.rate_hz('frames_out'):.2f}"
        for name, (p50, p95) in self.percentiles.items():
            values[f"{name}_p50"] = f"{p50:.2f}"
            values[f"{name}_p95"] = f"{p95:.2f}"
        return values

    def summary(self) -> str:
        """One line for the INFO log."""
        parts = [
            f"in {self.totals['frames_in']} ({self.rate_hz('frames_in'):.1f} Hz)",
            f"out {self.totals['frames_out']} ({self.rate_hz('frames_out'):.1f} Hz)",
            f"dropped {self.totals['dropped']}",
            f"skipped (no subscribers) {self.totals['skipped_no_subscribers']}",
            f"malformed {self.totals['malformed']}",
        ]
        for name, (p50, p95) in self.percentiles.items():
            parts.append(f"{name.removesuffix('_ms')} p50/p95 {p50:.1f}/{p95:.1f} ms")
        return ", ".join(parts)


class NodeStats:
    """Counters (:data:`COUNTERS`) and latency samples (:data:`LATENCIES`, milliseconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = dict.fromkeys(COUNTERS, 0)
        self._last_totals = dict(self._totals)
        self._samples: dict[str, list[float]] = {name: [] for name in LATENCIES}

    def count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self._totals[counter] += n

    def add_latency(self, name: str, milliseconds: float) -> None:
        with self._lock:
            self._samples[name].append(milliseconds)

    def snapshot(self, period_s: float) -> StatsSnapshot:
        """Totals, the period's increments and latency percentiles; starts a new period."""
        with self._lock:
            totals = dict(self._totals)
            window = {k: totals[k] - self._last_totals[k] for k in COUNTERS}
            self._last_totals = totals
            samples, self._samples = self._samples, {name: [] for name in LATENCIES}
        percentiles = {
            name: (float(np.percentile(values, 50)), float(np.percentile(values, 95)))
            for name, values in samples.items()
            if values
        }
        return StatsSnapshot(totals, window, period_s, percentiles)


OK, WARN, ERROR = 0, 1, 2  # the levels of diagnostic_msgs/DiagnosticStatus


def health(snapshot: StatsSnapshot, failure_streak: int, max_failures: int, last_failure: str,
           extra: tuple[str, ...] = ()) -> tuple[int, str]:
    """Diagnostic level and message of a period.

    ERROR once ``max_failures`` frames in a row failed (the model is broken, not one frame); WARN
    without input images, with malformed images or processing errors in the period, with input
    stamps that went back, or with ``extra`` problems (stamps on another clock, camera_info silent);
    else OK. A WARN message lists every problem of the period.
    """
    if failure_streak >= max_failures:
        return ERROR, f"{failure_streak} frames in a row failed; last: {last_failure}"
    problems = []
    if snapshot.window["frames_in"] == 0:
        problems.append("no input images in the last period")
    if snapshot.window["malformed"] or snapshot.window["errors"]:
        problems.append("malformed input images or processing errors")
    if snapshot.window["time_jumps_back"]:
        problems.append(f"input stamps went back {snapshot.window['time_jumps_back']} time(s) "
                        "(floor-scale filter reset)")
    problems += extra
    return (WARN, "; ".join(problems)) if problems else (OK, "running")
