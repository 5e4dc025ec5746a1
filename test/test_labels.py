"""Label id conventions (gam_depth_ros/labels.py), the metadata's label_format, the offset check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gam_depth_ros.classes import NYU40_CLASS_NAMES, NYU40_PALETTE, VOID_LABEL
from gam_depth_ros.evaluation.scoring import Scorer
from gam_depth_ros.labels import (
    NYU40,
    ZERO_BASED,
    classes_description,
    classes_json,
    offset_warning,
    palette_lut,
    shift_labels,
    to_zero_based,
)
from gam_depth_ros.metadata import MetadataError, ModelMetadata, read_metadata, write_metadata


def test_nyu40_ground_truth_converts_to_zero_based_ids():
    nyu40 = np.array([[0, 1, 2], [40, 39, 255]], np.uint8)
    np.testing.assert_array_equal(to_zero_based(nyu40, NYU40), [[255, 0, 1], [39, 38, 255]])
    zero = np.array([[0, 39, 255]], np.uint8)
    np.testing.assert_array_equal(to_zero_based(zero, ZERO_BASED), zero)
    with pytest.raises(ValueError, match="one-based"):
        to_zero_based(zero, "one-based")


def test_shift_keeps_void_and_voids_ids_pushed_out_of_range():
    labels = np.array([0, 5, 39, VOID_LABEL], np.uint8)
    np.testing.assert_array_equal(shift_labels(labels, -1, 40), [255, 4, 38, 255])
    np.testing.assert_array_equal(shift_labels(labels, 1, 40), [1, 6, 255, 255])


def test_offset_warning_only_when_a_shift_scores_far_better():
    assert offset_warning({0: 0.40, -1: 0.05, 1: 0.04}, ZERO_BASED) is None
    assert offset_warning({0: 0.01, -1: 0.02, 1: 0.015}, ZERO_BASED) is None  # a poor model: no signal
    warning = offset_warning({0: 0.004, -1: 0.61, 1: 0.01}, ZERO_BASED)
    assert "offset by one" in warning and "0.004" in warning and "0.610" in warning
    assert "--label-format nyu40" in warning
    assert "--label-format zero-based" in offset_warning({0: 0.01, -1: 0.0, 1: 0.5}, NYU40)


def test_scorer_flags_nyu40_ground_truth_read_as_zero_based():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 40, (30, 40)).astype(np.uint8)  # zero-based
    truth[:3] = VOID_LABEL
    nyu40 = np.where(truth == VOID_LABEL, 0, truth + 1).astype(np.uint8)
    as_read, converted = Scorer(), Scorer()
    for scorer, label_format in ((as_read, ZERO_BASED), (converted, NYU40)):
        scorer.add(0, np.ones((30, 40), np.float32), 1.0, None, truth, to_zero_based(nyu40, label_format))
    wrong, right = as_read.summary(), converted.summary()
    assert wrong["semantic"]["miou"] < 0.05 and right["semantic"]["miou"] == pytest.approx(1.0)
    assert wrong["label_offset_check"]["-1"] == pytest.approx(1.0)
    check = {int(k): v for k, v in wrong["label_offset_check"].items()}
    assert "--label-format nyu40" in offset_warning(check, ZERO_BASED)
    assert offset_warning({int(k): v for k, v in right["label_offset_check"].items()}, NYU40) is None


def test_classes_description_names_the_convention_ids_and_colours():
    zero = json.loads(classes_json(NYU40_CLASS_NAMES, NYU40_PALETTE, ZERO_BASED, "m.onnx"))
    assert zero["format"] == "gam_depth_ros.classes/1" and zero["label_format"] == "zero-based"
    assert zero["classes"][0] == {"id": 0, "name": "wall", "color": list(NYU40_PALETTE[0])}
    assert zero["classes"][-1]["id"] == 39 and zero["unknown_id"] is None and zero["model"] == "m.onnx"
    one = classes_description(NYU40_CLASS_NAMES, NYU40_PALETTE, NYU40)
    assert one["classes"][0]["id"] == 1 and one["classes"][-1]["id"] == 40 and one["unknown_id"] == 0
    lut = palette_lut(NYU40_PALETTE, NYU40)
    assert lut[0].tolist() == [0, 0, 0] and lut[1].tolist() == list(NYU40_PALETTE[0])
    assert palette_lut(NYU40_PALETTE)[39].tolist() == list(NYU40_PALETTE[39])


def test_metadata_carries_label_format(tmp_path):
    model = tmp_path / "m.onnx"
    write_metadata(model, ModelMetadata(input_height=8, input_width=8))
    assert json.loads(model.with_suffix(".json").read_text())["label_format"] == "zero-based"
    assert read_metadata(model).label_format == ZERO_BASED
    data = json.loads(model.with_suffix(".json").read_text())
    del data["label_format"]  # metadata written before the field: the ids were zero-based
    model.with_suffix(".json").write_text(json.dumps(data))
    assert read_metadata(model).label_format == ZERO_BASED
    model.with_suffix(".json").write_text(json.dumps(data | {"label_format": "one-based"}))
    with pytest.raises(MetadataError, match="label_format 'one-based'"):
        read_metadata(model)
