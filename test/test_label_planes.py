"""The planar term on labelled planes (``loss.planar.label_classes``): the floor and ceiling of each
labelled image are fitted as one plane each, so the network's floor stays flat (floor-scale mode)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from room_fixtures import write_tiny_rich_rooms

from gam_depth_ros.evaluation.metrics import structural_ids
from gam_depth_ros.inference.postprocessing import depth_to_disparity
from training.config import PlanarConfig, load_training_config
from training.data.factory import make_dataset
from training.objective import compute_objective, plane_segments

FLOOR, CEILING = structural_ids(("floor", "ceiling"))
CHAIR = structural_ids(("chair",))[0]


def test_plane_segments_by_hand():
    labels = torch.full((3, 2, 3), CHAIR)
    labels[:, 0, 0] = FLOOR
    labels[:, 1, 2] = CEILING
    precomputed = torch.full((3, 2, 3), -1)
    precomputed[0] = 7  # sample 0 carries precomputed segments: kept as they are
    batch = {"labels": labels, "segments": precomputed, "has_structure": torch.tensor([True, False, False]),
             "has_labels": torch.tensor([True, True, False])}
    segments, has_planes = plane_segments(batch, ("floor", "ceiling"))
    assert has_planes.tolist() == [True, True, False]
    assert segments[0].tolist() == [[7, 7, 7], [7, 7, 7]]
    assert segments[1].tolist() == [[0, -1, -1], [-1, -1, 1]]  # floor 0, ceiling 1, the chair none
    assert segments[2].tolist() == [[-1, -1, -1], [-1, -1, -1]]  # no labels: no planes
    unchanged, has_structure = plane_segments(batch, ())
    assert unchanged is precomputed and has_structure.tolist() == [True, False, False]


def test_an_unknown_class_is_an_error_naming_the_field():
    with pytest.raises(ValueError, match=r"loss.planar.label_classes: unknown structural classes \['flor'\]"):
        PlanarConfig(label_classes=("flor",))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    rooms = write_tiny_rich_rooms(tmp_path_factory.mktemp("rooms"), sequences=1)
    config = load_training_config("config/train_rich192.yaml", [
        "model.height=64", "model.width=96", "data.options.stride=2", "data.options.min_baseline=0"])
    dataset = make_dataset(replace(config.data, path=str(rooms), augment=None), (0, -1, 1), 64, 96)
    batch = {key: value.unsqueeze(0) for key, value in dataset[3].items()}
    return config, batch


def _planar_term(config, batch, depth: torch.Tensor, label_classes: tuple[str, ...]) -> tuple[float, float]:
    planar = replace(config.loss.planar, enabled=True, weight=1.0, label_classes=label_classes, min_pixels=50)
    config = replace(config, loss=replace(config.loss, planar=planar))
    disparity = depth_to_disparity(depth, 0.1, 10.0)
    outputs = {"disparities": [disparity],  # full resolution only: depth_scales (0,) below
               "T_source_target": batch["poses"][:, 1:]}
    config = replace(config, networks=replace(config.networks, depth_scales=(0,)))
    total, terms = compute_objective(batch, outputs, config, semantic_active=False)
    return float(terms["planar"]), float(total)


def test_the_true_floor_is_flat_and_a_bent_one_is_not(sample):
    config, batch = sample
    depth = batch["depth_gt"]
    floor = batch["labels"] == FLOOR
    assert float(floor.float().mean()) > 0.15  # the sample shows the floor (a fifth of it)
    flat, _ = _planar_term(config, batch, depth, ("floor",))
    rows = torch.arange(64, dtype=torch.float32).view(1, 1, 64, 1)
    bent = depth * (1 + 0.2 * torch.sin(rows / 4.0))  # a wavy floor: +-20 % of its depth
    wavy, total_on = _planar_term(config, batch, bent, ("floor",))
    off, total_off = _planar_term(config, batch, bent, ())  # no precomputed segments, no label planes: no term
    assert flat < 2e-5  # measured 4e-6: float32 normal equations on the rendered floor
    assert wavy == pytest.approx(0.0194, rel=0.05)  # metres x floor share, measured 0.0194
    assert off == 0.0 and total_on - total_off == pytest.approx(wavy, rel=1e-4)  # weight 1 in the visible sum
