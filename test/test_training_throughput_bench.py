"""bench/training_throughput.py on another recipe: its config and overrides reach every variant, ratios are same-run."""

from __future__ import annotations

import json

from bench_scripts import load_bench


def test_another_recipe_is_timed_with_its_overrides_and_without_the_anchor(tmp_path):
    bench = load_bench("training_throughput")
    report = tmp_path / "throughput.json"
    args = ["--config", "config/train_rich192.yaml", "--set", "model.height=64", "--set", "model.width=96",
            "--rounds", "1", "--warmup", "0", "--threads", "1", "--variants", "fp32", "fp32-scale0",
            "--output", str(tmp_path / "runs"), "--json", str(report)]
    assert bench.main(args) == 0
    result = json.loads(report.read_text())
    assert result["config"] == "config/train_rich192.yaml"
    assert result["overrides"] == ["model.height=64", "model.width=96"]
    assert result["reference_seconds_per_step"] is None  # the anchor is for config/train_nyu.yaml only
    fp32, scale0 = result["rows"]
    assert (fp32["variant"], scale0["variant"]) == ("fp32", "fp32-scale0")
    assert fp32["ratio_vs_first"] == 1.0 and fp32["ratio_vs_reference"] is None
    assert scale0["ratio_vs_first"] == scale0["images_per_s"] / fp32["images_per_s"]
    assert len(scale0["samples"]["step"]) == 1 and scale0["median_s"]["step"] > 0
    # the step FLOPs of a 64x96 network: about 32 GFLOP at 192x256, so about 4 here (a ninth of the pixels)
    assert 2.5e9 < result["step_flops"] < 5e9
    runner = bench.Runner("bf16-scale0", False, tmp_path / "probe", config=bench.REPO / "config/train_rich192.yaml",
                          extra=("model.height=64", "model.width=96"))
    config = runner.config  # the variant's overrides on top of the run's, on top of the recipe
    assert (config.model.height, config.networks.depth_scales, config.train.cpu_amp_bf16) == (64, (0,), True)
    assert (config.networks.pose_source, config.frame_ids) == ("data", (0, -1, 1))
    pyramid = bench.Runner("bf16-scale0-pyramid3", False, tmp_path / "probe3",
                           config=bench.REPO / "config/train_rich192.yaml",
                           extra=("model.height=64", "model.width=96")).config
    assert (pyramid.loss.photometric_pyramid, pyramid.networks.depth_scales) == (3, (0,))
    assert config.loss.photometric_pyramid == 0
