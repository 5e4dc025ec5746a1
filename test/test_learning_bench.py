"""bench/learning.py end to end at a toy budget (50 steps: one log line): segmenter-like proxy labels,
gamma2 from the data, the variants' table and JSON (the real three-seed runs: docs/benchmarks.md)."""

from __future__ import annotations

import json
import math

from bench_scripts import load_bench


def test_learning_bench_trains_scores_and_reports_the_proxy_labels(tmp_path):
    output = tmp_path / "results.json"
    assert load_bench("learning").main([
        "--steps", "50", "--seeds", "0", "--variants", "baseline", "full_data", "--jobs", "1", "--threads", "1",
        "--pose-source", "data", "--train-sequences", "2", "--eval-sequences", "1", "--frames", "25",
        "--eval-per-sequence", "2", "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"),
        "--output", str(output),
    ]) == 0
    report = json.loads(output.read_text())
    assert report["label_noise"] == "segmenter" and report["heldout_data_seed"] == 70
    assert 0.6 < report["proxy_label_agreement"] < 0.9  # 2 rooms only; 0.755 over the benchmark's 24
    results = report["results"]
    assert list(results) == ["constant depth", "untrained network", "baseline", "full_data"]
    assert results["constant depth"]["images"] == 2
    for row in results.values():
        assert 0.0 < row["abs_rel"] < 1.0 and 0.0 <= row["delta1"] <= 1.0
    # gamma2 resolved from the data (finite, far below the paper's 40); the baseline has no mask.
    assert 1.0 < results["full_data"]["mask_gamma2"] < 40.0 and results["full_data"]["mask_lift_fraction"] > 0.01
    assert math.isnan(results["baseline"]["mask_gamma2"])
    assert results["baseline"]["abs_rel_per_seed"] == [results["baseline"]["abs_rel"]]
    assert "| full_data | 1 |" in report["table"]
