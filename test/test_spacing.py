"""Source-frame spacing by camera motion and by time (training/data/spacing.py)."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.errors import DataError
from training.data.spacing import Spacing, sample_frames, spacing_from_options, stamps_from_names
from training.synthetic.trajectory import rotation


def straight_drive(fps: float, seconds: float, speed: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Stamps [N] ns and world-from-camera poses [N,4,4] of a camera driving along z at ``speed`` m/s."""
    count = int(fps * seconds)
    stamps = (1_700_000_000 * 10**9 + np.round(np.arange(count) * 1e9 / fps)).astype(np.int64)
    poses = np.repeat(np.eye(4)[None], count, axis=0)
    poses[:, 2, 3] = speed * np.arange(count) / fps
    return stamps, poses


@pytest.mark.parametrize("fps", [10.0, 15.0, 30.0])
def test_motion_spacing_gives_the_same_baseline_at_every_frame_rate(fps):
    stamps, poses = straight_drive(fps, 6.0)
    samples = sample_frames((0, -1, 1), len(poses), Spacing(mode="motion"), stamps, poses)
    baselines = np.array([[abs(poses[s][2, 3] - poses[t][2, 3]) for s in rest] for t, *rest in samples])
    # The first frame at or past the 10 cm aim: at most one frame step (1-3 cm) beyond it.
    assert baselines.min() >= 0.10 - 1e-9
    assert baselines.max() <= 0.10 + 0.3 / fps + 1e-9
    steps = 0.10 / (0.3 / fps)  # frames to the 10 cm aim (one more where rounding leaves 0.0999...)
    targets = [s[0] for s in samples]
    assert targets == list(range(targets[0], targets[-1] + 1))
    assert round(steps) <= targets[0] <= round(steps) + 1 and len(poses) - 1 - targets[-1] <= round(steps) + 1


def test_motion_spacing_by_rotation_chaining_and_jumps():
    count = 40
    poses = np.repeat(np.eye(4)[None], count, axis=0)
    for i in range(count):  # turning in place at 2 degrees per frame
        poses[i, :3, :3] = rotation(np.radians(2.0 * i))
    samples = sample_frames((0, -2, -1, 1, 2), count, Spacing(mode="motion"), None, poses)
    t, m2, m1, p1, p2 = samples[0]
    assert (m1, p1) == (t - 4, t + 4)  # 8 degrees reach the 6.5 degree aim first
    assert (m2, p2) == (t - 8, t + 8)  # id 2 is spaced from id 1
    assert len(samples) == count - 16
    jumpy = poses.copy()
    jumpy[20:, 2, 3] += 1.0  # a 1 m jump between frames 19 and 20 (e.g. a relocalisation)
    jumped = sample_frames((0, -1, 1), count, Spacing(mode="motion"), None, jumpy)
    assert all(not (min(s) < 20 <= max(s)) for s in jumped)  # never paired across the jump
    sparse = np.repeat(np.eye(4)[None], 10, axis=0)
    sparse[:, 2, 3] = 0.2 * np.arange(10)  # 20 cm per frame: past the 15 cm maximum
    assert sample_frames((0, 1), 10, Spacing(mode="motion"), None, sparse) == []


def test_time_spacing_and_the_search_horizon():
    stamps, _ = straight_drive(30.0, 4.0)
    samples = sample_frames((0, -1, 1), len(stamps), Spacing(mode="time"), stamps)
    gaps = {round((stamps[s] - stamps[t]) / 1e9, 3) for t, *rest in samples for s in rest}
    assert gaps == {-0.4, 0.4}  # the middle of 0.2-0.6 s, 12 frames at 30 Hz
    paused = np.concatenate([stamps[:30], stamps[30:] + 5 * 10**9])  # 5 s without frames (a stop)
    samples = sample_frames((0, -1, 1), len(paused), Spacing(mode="time"), paused)
    assert all(not (min(s) < 30 <= max(s)) for s in samples)
    auto = sample_frames((0, 1), len(stamps), Spacing(mode="auto"), stamps, None)
    assert auto == sample_frames((0, 1), len(stamps), Spacing(mode="time"), stamps)


def test_frame_rule_options_and_errors():
    assert sample_frames((0, -1, 1), 5, Spacing(stride=2)) == [(2, 0, 4)]
    assert spacing_from_options({"stride": 3}, default_mode="auto") == Spacing(mode="frames", stride=3)
    assert spacing_from_options({}, default_mode="auto").mode == "auto"
    assert spacing_from_options({"spacing": "motion", "max_translation": 0.3}).max_translation == 0.3
    with pytest.raises(DataError, match="min_translation < max_translation"):
        spacing_from_options({"spacing": "motion", "min_translation": 0.2})
    with pytest.raises(DataError, match="stride=3 counts frames, but spacing is 'auto'"):
        spacing_from_options({"spacing": "auto", "stride": 3})  # a stride the config's spacing would ignore
    assert spacing_from_options({"spacing": "frames", "stride": 3}).stride == 3
    with pytest.raises(DataError, match="spacing must be one of"):
        Spacing(mode="distance")
    with pytest.raises(DataError, match="needs camera poses"):
        sample_frames((0, 1), 5, Spacing(mode="motion"))
    with pytest.raises(DataError, match="stamps in nanoseconds"):
        sample_frames((0, 1), 5, Spacing(mode="time"), stamps_from_names(["000000", "000001"]))
    assert stamps_from_names(["1700000000100000000", "1700000000200000000"]).tolist() == [
        1700000000100000000, 1700000000200000000]


def turn_then_drive() -> np.ndarray:
    """World-from-camera poses [40,4,4]: 20 frames turning on the spot (3 deg each), then 20 driving 2 cm each."""
    poses = np.repeat(np.eye(4)[None], 40, axis=0)
    for i in range(20):
        poses[i, :3, :3] = rotation(np.radians(3.0 * i))
    poses[20:, :3, :3] = poses[19, :3, :3]
    poses[20:, 2, 3] = 0.02 * np.arange(1, 21)
    return poses


def test_min_baseline_drops_samples_with_a_source_the_camera_only_turned_to():
    poses = turn_then_drive()
    spacing = spacing_from_options({"stride": 2, "min_baseline": 0.03})
    assert spacing == Spacing(mode="frames", stride=2, min_baseline=0.03)
    everything = sample_frames((0, -1, 1), 40, Spacing(stride=2))
    kept = sample_frames((0, -1, 1), 40, spacing, poses=poses)
    # Targets 2..37 exist. Target 20 (z = 2 cm) has source 18 (z = 0, turned 6 deg): 2 cm, dropped;
    # target 21 (4 cm) is 4 cm from source 19, the last turning frame: kept, as are 22..37.
    assert [s[0] for s in everything] == list(range(2, 38))
    assert kept == [(t, t - 2, t + 2) for t in range(21, 38)]
    # Exactly at the baseline is kept (4 cm with 0.04), just above it is not.
    assert len(sample_frames((0, -1, 1), 40, Spacing(stride=2, min_baseline=0.04 - 1e-9), poses=poses)) == 17
    assert sample_frames((0, -1, 1), 40, Spacing(stride=2, min_baseline=0.0401), poses=poses) == []
    assert "sources >= 0.03 m from the target" in spacing.describe()
    with pytest.raises(DataError, match="min_baseline 0.03 m needs camera poses"):
        sample_frames((0, 1), 40, spacing)
    with pytest.raises(DataError, match="min_baseline must be >= 0"):
        Spacing(min_baseline=-0.1)
