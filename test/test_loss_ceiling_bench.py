"""bench/loss_ceiling.py end to end on tiny generated rooms (its free depth pyramid: test_fitted_depth.py)."""

from __future__ import annotations

import json

import pytest
from bench_scripts import REPO, load_bench
from room_fixtures import write_tiny_rich_rooms

ceiling = load_bench("loss_ceiling")


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    return write_tiny_rich_rooms(tmp_path_factory.mktemp("ceiling"))


def run(rooms, tmp_path, *extra: str) -> dict:
    output = tmp_path / "ceiling.json"
    args = ["--config", str(REPO / "config" / "train_rich192.yaml"), "--data", str(rooms), "--samples", "3",
            "--set", "model.height=64", "--set", "model.width=96", "--set", "data.options.stride=2",
            "--set", "data.options.min_baseline=0", "--output", str(output), *extra]
    assert ceiling.main(args) == 0
    return json.loads(output.read_text())


def test_from_the_truth_without_steps_the_depth_and_loss_are_the_truths(rooms, tmp_path):
    report = run(rooms, tmp_path, "--steps", "0", "--start", "true")
    assert report["samples"] == 3 and report["start"] == "true"
    assert report["optimised_depth"]["abs_rel"] == pytest.approx(0.0, abs=1e-5)
    assert report["optimised_depth"]["object_abs_rel"] == pytest.approx(0.0, abs=1e-5)
    for term in ("total", "photometric", "smoothness"):
        assert report["loss"]["optimised"][term] == pytest.approx(report["loss"]["true_depth"][term], rel=1e-4)


def test_from_a_constant_the_steps_lower_the_loss(rooms, tmp_path):
    still = run(rooms, tmp_path, "--steps", "0")
    # no steps: a constant depth, scored like the constant next to it
    assert still["optimised_depth"]["abs_rel"] == pytest.approx(still["constant_depth"]["abs_rel"], rel=1e-6)
    moved = run(rooms, tmp_path, "--steps", "40")  # measured: photometric 0.0529 -> 0.0487
    assert moved["loss"]["optimised"]["photometric"] < 0.95 * still["loss"]["optimised"]["photometric"]
    # the truth's loss does not depend on the steps (the automask's tie-breaking noise is seeded)
    assert moved["loss"]["true_depth"] == still["loss"]["true_depth"]


def test_the_network_variant_trains_one_network_on_the_samples(rooms, tmp_path):
    still = run(rooms, tmp_path, "--steps", "0", "--depth", "network")
    moved = run(rooms, tmp_path, "--steps", "15", "--depth", "network", "--lr", "1e-3")
    assert moved["depth"] == "network" and moved["samples"] == 3
    # the untrained network starts near networks.initial_depth (2.5 m): about a constant's score (0.230, 0.226)
    assert still["optimised_depth"]["abs_rel"] == pytest.approx(still["constant_depth"]["abs_rel"], abs=0.01)
    assert moved["loss"]["optimised"]["total"] < 0.99 * still["loss"]["optimised"]["total"]  # measured 0.0528 -> 0.0516
    with pytest.raises(SystemExit):
        ceiling.main(["--config", str(REPO / "config" / "train_rich192.yaml"), "--data", str(rooms),
                      "--depth", "network", "--start", "true"])
