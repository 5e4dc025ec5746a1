"""bench/generator_speed.py end to end: every case measured in subprocesses, the ratio to a compared tree."""

from __future__ import annotations

import json

import pytest
from bench_scripts import REPO, load_bench


def test_generator_speed_reports_each_case_and_the_ratio_to_the_compared_tree(tmp_path, capsys):
    bench = load_bench("generator_speed")
    output = tmp_path / "speed.json"
    assert bench.main(["--rounds", "1", "--frames", "1", "--compare", str(REPO), "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["trees"] == {"this": str(REPO), "compare": str(REPO)}
    assert list(report["cases"]) == [f"{s} {h}x{w} x{k * k} rays" for s, h, w, k in bench.CASES]
    for case, row in report["cases"].items():
        assert len(row["samples"]) == 3 and all(rate > 0 for rate in row["samples"]), case
        assert row["ratio"] == pytest.approx(row["frames_per_cpu_s"] / row["compare_frames_per_cpu_s"])
    rates = [row["frames_per_cpu_s"] for row in report["cases"].values()]
    assert rates[0] > rates[2] and rates[3] > rates[4]  # more pixels, more rays: fewer frames per second
    assert capsys.readouterr().out.count("the compared tree's") == len(bench.CASES)
