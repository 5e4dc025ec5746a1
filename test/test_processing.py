"""Pre- and post-processing edge cases, colorizing, and the typed config loader."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from gam_depth_ros.classes import NUM_CLASSES, NYU40_PALETTE, palette_lut
from gam_depth_ros.colorize import COLORMAPS, colorize_depth, colorize_labels, colormap_lut
from gam_depth_ros.config_io import ConfigError, from_dict, load_config
from gam_depth_ros.inference.postprocessing import disparity_to_depth, resize_disparity, resize_labels
from gam_depth_ros.inference.preprocessing import as_rgb, to_network_input
from gam_depth_ros.model_config import ModelConfig


def test_network_input_layout_and_range():
    image = np.zeros((5, 7, 3), np.uint8)
    image[..., 0] = 255
    image[2, 3] = (0, 128, 255)
    batch = to_network_input(image, 5, 7)  # same size: no resampling
    assert batch.shape == (1, 3, 5, 7) and batch.dtype == np.float32 and batch.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(batch[0, :, 2, 3], [0.0, 128 / 255, 1.0])
    assert batch[0, 0, 0, 0] == 1.0 and batch[0, 1, 0, 0] == 0.0


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 1001, 3), (479, 641, 3)])
def test_odd_sizes_resize_to_network(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    batch = to_network_input(image, 64, 96)
    assert batch.shape == (1, 3, 64, 96)
    assert 0.0 <= batch.min() and batch.max() <= 1.0


def test_constant_image_stays_constant_after_resize():
    image = np.full((37, 53, 3), 200, np.uint8)
    np.testing.assert_allclose(to_network_input(image, 64, 96), 200 / 255, atol=1e-6)


def test_as_rgb_layouts_and_errors():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(as_rgb(grey)[..., 2], grey)
    np.testing.assert_array_equal(as_rgb(grey[:, :, None]), as_rgb(grey))
    rgba = np.dstack([grey, grey, grey, np.zeros_like(grey)])
    assert as_rgb(rgba).shape == (3, 4, 3)
    flipped = np.dstack([grey] * 3)[:, ::-1]
    np.testing.assert_array_equal(as_rgb(flipped)[:, 0], np.dstack([grey] * 3)[:, -1])
    with pytest.raises(ValueError, match="uint8"):
        as_rgb(grey.astype(np.float32))
    with pytest.raises(ValueError, match="expected an image"):
        as_rgb(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        as_rgb(np.zeros((0, 4, 3), np.uint8))


def test_label_resize_never_invents_classes():
    labels = np.random.default_rng(1).integers(0, 40, (17, 23)).astype(np.uint8)
    for size in [(64, 96), (5, 7), (17, 23)]:
        out = resize_labels(labels, *size)
        assert out.shape == size and out.dtype == np.uint8
        assert set(np.unique(out)) <= set(np.unique(labels))
    np.testing.assert_array_equal(resize_labels(labels, 34, 46)[::2, ::2], labels)


def test_disparity_resize_and_depth():
    disparity = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    up = resize_disparity(disparity, 30, 40)
    assert up.shape == (30, 40) and up.dtype == np.float32
    assert up.min() >= 0 and up.max() <= 1
    depth = disparity_to_depth(np.array([0.0, 1.0], np.float32), 0.1, 10.0)
    np.testing.assert_allclose(depth, [10.0, 0.1], rtol=1e-6)


def test_colorize_depth_and_labels():
    depth = np.array([[0.5, 10.0, np.nan, np.inf]], np.float32)
    rgb = colorize_depth(depth, 0.5, 10.0, "gray")
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0], [[0, 0, 0], [255, 255, 255], [0, 0, 0], [0, 0, 0]])
    for name in COLORMAPS:
        assert colormap_lut(name).shape == (256, 3)
    # the published ends of each map (near, far), in RGB order: a BGR mix-up would swap the channels
    for name, near, far in (("turbo", (48, 18, 59), (122, 4, 3)), ("viridis", (68, 1, 84), (253, 231, 37)),
                            ("magma", (0, 0, 4), (252, 253, 191))):
        lut = colormap_lut(name).astype(int)
        assert np.abs(lut[0] - near).max() <= 1 and np.abs(lut[255] - far).max() <= 1, (name, lut[0], lut[255])
    with pytest.raises(ValueError, match="unknown colormap"):
        colorize_depth(depth, 0.5, 10.0, "jet2")
    labels = np.array([[0, 1, 39, 255]], np.uint8)
    colored = colorize_labels(labels)
    np.testing.assert_array_equal(colored[0, :3], [NYU40_PALETTE[0], NYU40_PALETTE[1], NYU40_PALETTE[39]])
    np.testing.assert_array_equal(colored[0, 3], [0, 0, 0])
    assert len(set(map(tuple, palette_lut()[:NUM_CLASSES]))) == NUM_CLASSES  # distinct colours


@dataclass(frozen=True)
class _Inner:
    rate: float = 1.0
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Outer:
    steps: int = 1
    inner: _Inner = _Inner()
    note: str | None = None


def test_config_loader_is_strict(tmp_path):
    loaded = from_dict(_Outer, {"steps": 3, "inner": {"rate": 2, "names": ["a", "b"]}})
    assert loaded == _Outer(3, _Inner(2.0, ("a", "b")))
    with pytest.raises(ConfigError, match=r"x.yaml: unknown key\(s\) \['stpes'\]"):
        from_dict(_Outer, {"stpes": 3}, "x.yaml")
    with pytest.raises(ConfigError, match=r"cfg.inner.rate: expected a number"):
        from_dict(_Outer, {"inner": {"rate": "fast"}}, "cfg")
    with pytest.raises(ConfigError, match="cfg.steps: expected int"):
        from_dict(_Outer, {"steps": True}, "cfg")
    path = tmp_path / "model.yaml"
    path.write_text("height: 100\n")
    with pytest.raises(ConfigError, match="model.yaml.*multiples of 32"):
        load_config(ModelConfig, path)
    path.write_text("height: [unclosed\n")
    with pytest.raises(ConfigError, match="model.yaml: invalid YAML"):
        load_config(ModelConfig, path)
    with pytest.raises(ConfigError, match="missing.yaml: cannot read"):
        load_config(ModelConfig, tmp_path / "missing.yaml")


def test_shipped_model_config_loads():
    from pathlib import Path

    config = load_config(ModelConfig, Path(__file__).parents[1] / "config" / "model.yaml")
    assert (config.height, config.width, config.num_classes) == (288, 384, 40)

