"""bench/compare_rooms.py: paired per-room differences on hand-made scores and on fit_gap-shaped reports."""

from __future__ import annotations

import json
import math

import pytest
from bench_scripts import load_bench

compare_rooms = load_bench("compare_rooms")


def test_paired_differences_hand_computed():
    # differences -0.1, 0, +0.1 over the three shared rooms: mean 0, sd 0.1, se 0.1 / sqrt(3)
    row = compare_rooms.paired_room_differences({"a": 0.2, "b": 0.3, "c": 0.4},
                                                {"a": 0.1, "b": 0.3, "c": 0.5, "d": 0.9})
    assert row["rooms"] == 3 and row["rooms_better"] == 1
    assert row["mean_difference"] == pytest.approx(0.0, abs=1e-12)
    assert row["standard_error"] == pytest.approx(0.1 / math.sqrt(3), rel=1e-9)
    # differences -0.02, -0.04: mean -0.03, sd sqrt(2e-4), se 0.01
    row = compare_rooms.paired_room_differences({"a": 0.22, "b": 0.34}, {"a": 0.20, "b": 0.30})
    assert row["mean_difference"] == pytest.approx(-0.03, rel=1e-9)
    assert row["standard_error"] == pytest.approx(0.01, rel=1e-9)
    assert row["rooms_better"] == 2


def test_one_room_has_no_standard_error_and_no_shared_room_is_an_error():
    assert math.isnan(compare_rooms.paired_room_differences({"a": 0.2}, {"a": 0.1})["standard_error"])
    with pytest.raises(ValueError, match="share no room"):
        compare_rooms.paired_room_differences({"a": 0.2}, {"b": 0.1})


def _report(path, scores):
    rows = [{"sequence": name, "abs_rel": value, "constant_abs_rel": 0.3} for name, value in scores.items()]
    path.write_text(json.dumps({"sets": {"validation": {"sequences": rows}}}))
    return path


def test_main_compares_each_report_with_the_first(tmp_path, capsys):
    base = _report(tmp_path / "base.json", {"seq_0000": 0.2, "seq_0001": 0.4})
    other = _report(tmp_path / "other.json", {"seq_0000": 0.1, "seq_0001": 0.35})
    output = tmp_path / "out.json"
    assert compare_rooms.main(["--set", "validation", "--report", f"base={base}", "--report", f"other={other}",
                               "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert result["base"] == "base" and result["base_mean_abs_rel"] == pytest.approx(0.3)
    row = result["compared"]["other"]
    assert row["mean_abs_rel"] == pytest.approx(0.225)
    assert row["mean_difference"] == pytest.approx(-0.075)
    assert row["standard_error"] == pytest.approx(0.025)  # differences -0.1, -0.05: sd 0.025*sqrt(2), se sd/sqrt(2)
    assert row["rooms_better"] == 2
    assert "better in 2 of 2 rooms" in capsys.readouterr().out


def test_main_names_the_file_that_lacks_the_set(tmp_path, capsys):
    base = _report(tmp_path / "base.json", {"seq_0000": 0.2})
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"sets": {}}))
    assert compare_rooms.main(["--set", "validation", "--report", f"base={base}", "--report", f"w={wrong}"]) == 2
    assert "wrong.json" in capsys.readouterr().err
