"""Depth fitted to the view-synthesis objective (``gam-depth-fit-depth``), read by the folder source and
distilled by ``loss.fitted_depth_weight``."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from room_fixtures import write_tiny_rich_rooms

from gam_depth_ros.inference.postprocessing import depth_to_disparity, disparity_to_depth
from training import fitted_depth, losses
from training.config import AugmentConfig, DataConfig, LossConfig, load_training_config
from training.data.errors import DataError
from training.data.factory import make_dataset
from training.objective import compute_objective

CONFIG = "config/train_rich192.yaml"
TINY = ["model.height=64", "model.width=96", "data.options.stride=2", "data.options.min_baseline=0"]


def test_disparity_inside_inverts_the_networks_mapping():
    depth = torch.tensor([0.2, 1.0, 2.5, 9.0])
    disparity = fitted_depth.disparity_inside(depth, 0.1, 10.0)
    assert torch.allclose(disparity_to_depth(disparity, 0.1, 10.0), depth, rtol=1e-5)
    # out of range: clamped just inside (0, 1), so the logit of the pyramid stays finite
    edges = fitted_depth.disparity_inside(torch.tensor([0.01, 50.0]), 0.1, 10.0)
    assert bool(((edges > 0) & (edges < 1)).all())


def test_depth_pyramid_starts_at_the_given_map_and_every_level_moves_it():
    start = torch.rand(1, 1, 48, 64) * 0.8 + 0.1
    pyramid = fitted_depth.DepthPyramid(start)
    assert [tuple(m.shape[-2:]) for m in pyramid.maps] == [(48, 64), (24, 32), (12, 16), (6, 8), (3, 4), (1, 2)]
    assert torch.allclose(pyramid(), start, atol=1e-6)
    with torch.no_grad():
        pyramid.maps[-1].add_(1.0)  # the coarsest level shifts every pixel's logit
    assert bool((pyramid() > start).all())


def test_fitted_depth_loss_by_hand():
    depth = torch.full((2, 1, 1, 4), 2.0)
    fitted = torch.tensor([[1.0, 2.0, 0.0, 4.0], [8.0, 8.0, 8.0, 8.0]]).view(2, 1, 1, 4)
    # sample 0: |ln 2 - ln 1|, 0, (0 = invalid, skipped), |ln 2 - ln 4|; sample 1 has no map
    loss = losses.fitted_depth_loss(depth, fitted, torch.tensor([True, False]))
    assert float(loss) == pytest.approx(2 * math.log(2) / 3, rel=1e-6)
    assert float(losses.fitted_depth_loss(depth, fitted, torch.tensor([False, False]))) == 0.0
    # in the visible sum with its weight, absent at weight 0
    terms = {name: torch.tensor(0.0) for name in ("photometric", "smoothness", "planar", "normal", "fitted_depth")}
    terms["fitted_depth"] = torch.tensor(0.5)
    assert float(losses.total_loss(terms, LossConfig(fitted_depth_weight=0.2), False)) == pytest.approx(0.1)
    assert float(losses.total_loss(terms, LossConfig(), False)) == 0.0


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    return write_tiny_rich_rooms(tmp_path_factory.mktemp("fitted"))


def fit(rooms, *extra: str) -> int:
    overrides = [arg for item in TINY for arg in ("--set", item)]
    return fitted_depth.main(["--config", CONFIG, *overrides, "--data", str(rooms), "--steps", "20", *extra])


def test_fit_writes_maps_resumes_and_refuses_other_settings(rooms, caplog):
    assert fit(rooms, "--every", "2", "--shard", "0/2") == 0
    assert fit(rooms, "--every", "2", "--shard", "1/2") == 0
    maps = sorted(rooms.glob("seq_*/fitted_depth/*.npy"))
    assert len(maps) == 4  # 4 samples a sequence (8 frames, stride 2): samples 0 and 2 of each of 2 sequences
    pinned = []
    for path in maps:
        depth = np.load(path)
        assert depth.shape == (64, 96) and depth.dtype == np.float32 and np.isfinite(depth).all()
        kept = depth[depth > 0]  # 0: not pinned by the sources
        assert kept.min() >= 0.1 and kept.max() <= 10.0
        pinned.append(kept.size / depth.size)
    assert 0.02 < np.mean(pinned) < 0.1  # measured 0.044 after 20 steps on these tiny rooms (1-8 % a map)
    settings = json.loads((rooms / "seq_0000" / "fitted_depth" / "settings.json").read_text())
    assert settings["steps"] == 20 and settings["size"] == [64, 96] and settings["pin_factor"] == 1.25
    assert settings["loss"]["smoothness_weight"] == 1e-3 and settings["depth_scales"] == [0, 1, 2, 3]
    before = {path: path.stat().st_mtime_ns for path in maps}
    with caplog.at_level("INFO", logger="training"):
        assert fit(rooms, "--every", "2") == 0  # every map is there: nothing is fitted again
    assert '"fitted": 0, "skipped": 4' in caplog.text
    assert {path: path.stat().st_mtime_ns for path in maps} == before
    caplog.clear()
    assert fit(rooms, "--every", "2", "--set", "loss.smoothness_weight=0.1") == 2  # not a mix of settings
    assert "settings.json: maps in this folder were fitted with" in caplog.text
    with pytest.raises(SystemExit):
        fit(rooms, "--shard", "2/2")


def test_fitting_moves_the_map_towards_a_lower_loss(rooms):
    config = load_training_config(CONFIG, TINY)
    dataset = make_dataset(replace(config.data, path=str(rooms), augment=None), (0, -1, 1), 64, 96)
    batch = {key: value.unsqueeze(0) for key, value in dataset[1].items()}
    mask = config.loss.mask
    torch.manual_seed(0)
    _, still = fitted_depth.fit_depth(batch, config, mask, 0, 0.05)
    torch.manual_seed(0)
    depth, moved = fitted_depth.fit_depth(batch, config, mask, 30, 0.05)
    assert float(moved["total"]) < 0.97 * float(still["total"])  # measured 0.0774 -> 0.0725
    assert depth.shape == (1, 1, 64, 96)


def test_the_sources_pin_the_true_depth_more_than_a_wrong_one(rooms):
    config = load_training_config(CONFIG, [*TINY, "data.options.stride=3"])  # stride 2 moves too little to tell
    dataset = make_dataset(replace(config.data, path=str(rooms), augment=None), (0, -1, 1), 64, 96)
    fractions = {"true": [], "x1.5": [], "constant": []}
    for index in range(len(dataset)):
        batch = {key: value.unsqueeze(0) for key, value in dataset[index].items()}
        truth = batch["depth_gt"].clamp_min(0.1)
        for name, depth in (("true", truth), ("x1.5", truth * 1.5), ("constant", torch.full_like(truth, 2.5))):
            pinned = fitted_depth.pinned_pixels(depth, batch, config, 1.25)
            assert pinned.shape == truth.shape and pinned.dtype == torch.bool
            fractions[name].append(float(pinned.float().mean()))
    mean = {name: float(np.mean(values)) for name, values in fractions.items()}
    # measured: 0.041 of the pixels for the truth, 0.013 for 1.5x the truth, 0.013 for a constant 2.5 m
    assert mean["true"] > 0.03 and mean["true"] > 2.5 * mean["x1.5"] and mean["true"] > 2.5 * mean["constant"]


def test_the_folder_source_reads_flips_and_requires_the_maps(rooms, tmp_path):
    if not list(rooms.glob("seq_*/fitted_depth/*.npy")):
        assert fit(rooms, "--every", "2") == 0
    with_maps = {(p.parent.parent.name, p.stem) for p in rooms.glob("seq_*/fitted_depth/*.npy")}
    options = {"stride": 2}
    everything = make_dataset(DataConfig(source="folder", path=str(rooms), options=options, augment=None),
                              (0, -1, 1), 64, 96)
    flags = [bool(everything[i]["has_fitted_depth"]) for i in range(len(everything))]
    assert len(everything) == 8 and sum(flags) == len(with_maps) == 4
    required = make_dataset(DataConfig(source="folder", path=str(rooms), augment=None,
                                       options={**options, "require_fitted_depth": True}), (0, -1, 1), 64, 96)
    assert len(required) == 4
    part = required.datasets[0]
    sample = part[0]
    stored = np.load(part.fitted_depth_dir / f"{part.sample_key(0)}.npy")
    assert bool(sample["has_fitted_depth"]) and torch.equal(sample["depth_fitted"][0], torch.from_numpy(stored))
    flipped = make_dataset(DataConfig(source="folder", path=str(rooms / "seq_0000"),
                                      options={**options, "require_fitted_depth": True},
                                      augment=AugmentConfig(flip_p=1.0, color_jitter_p=0.0)), (0, -1, 1), 64, 96)
    assert torch.equal(flipped[0]["depth_fitted"][0], torch.from_numpy(stored).flip(-1))
    empty = tmp_path / "unfitted"
    write_tiny_rich_rooms(empty, sequences=1)  # no fitted_depth/
    with pytest.raises(DataError, match="no sequence has a sample with a fitted depth map"):
        make_dataset(DataConfig(source="folder", path=str(empty), options={**options, "require_fitted_depth": True}),
                     (0, -1, 1), 64, 96)


def test_the_objective_adds_the_weighted_distance_to_the_map(rooms):
    config = load_training_config(CONFIG, TINY)
    dataset = make_dataset(replace(config.data, path=str(rooms), augment=None), (0, -1, 1), 64, 96)
    batch = {key: value.unsqueeze(0) for key, value in dataset[0].items()}
    batch["depth_fitted"] = torch.full_like(batch["depth_fitted"], 4.0)
    batch["has_fitted_depth"] = torch.tensor([True])
    disparity = depth_to_disparity(torch.full((1, 1, 64, 96), 2.0), 0.1, 10.0)
    outputs = {"disparities": [disparity[..., :64 >> s, :96 >> s] for s in range(4)],
               "T_source_target": batch["poses"][:, 1:]}
    weighted = replace(config, loss=replace(config.loss, fitted_depth_weight=0.5))
    torch.manual_seed(0)
    total_off, terms_off = compute_objective(batch, outputs, config, semantic_active=False)
    torch.manual_seed(0)
    total_on, terms_on = compute_objective(batch, outputs, weighted, semantic_active=False)
    assert float(terms_off["fitted_depth"]) == 0.0  # weight 0: not computed
    assert float(terms_on["fitted_depth"]) == pytest.approx(math.log(2), rel=1e-4)  # 2 m against 4 m at every scale
    assert float(total_on - total_off) == pytest.approx(0.5 * math.log(2), rel=1e-4)


def test_a_short_distilling_run_pulls_the_network_to_the_maps(rooms, tmp_path):
    from training.trainer import Trainer

    if not list(rooms.glob("seq_*/fitted_depth/*.npy")):
        assert fit(rooms, "--every", "2") == 0
    torch.set_num_threads(2)
    config = load_training_config(CONFIG, [
        *TINY, f"data.path={rooms}", "data.options.require_fitted_depth=true", "validation=null",
        f"train.output_dir={tmp_path}", "train.batch_size=2", "train.max_steps=20", "train.epochs=20",
        "train.log_every_steps=1", "train.checkpoint_every_epochs=0", "train.checkpoint_every_steps=0",
        "optim.lr=1e-3", "optim.milestones=[]", "loss.fitted_depth_weight=1.0"])
    trainer = Trainer(config)
    rows: list[dict[str, float]] = []
    trainer._log = lambda terms, data_time, step_time: rows.append(terms)  # type: ignore[method-assign]
    trainer.fit()
    assert len(rows) == 20 and all(row["fitted_depth"] > 0 for row in rows)
    first = sum(row["fitted_depth"] for row in rows[:4]) / 4
    last = sum(row["fitted_depth"] for row in rows[-4:]) / 4
    assert last < 0.85 * first  # measured 1.19 -> 0.90 (the tiny maps' pinned pixels lie far from 2.5 m)
