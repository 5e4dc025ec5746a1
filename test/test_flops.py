"""FLOP counting: exact on hand-computable layers, and GamDepthNet scales with the pixel count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gam_depth_ros.networks import GamDepthNet
from gam_depth_ros.networks.flops import count_flops


def test_single_conv_exact():
    # 3 -> 8 channels, 3x3, stride 1, padding 1 on 10x12: output 8x10x12, 3*3*3 = 27 MACs each.
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_flops(conv, 10, 12) == {"other": 2 * 8 * 10 * 12 * 27, "total": 2 * 8 * 10 * 12 * 27}


def test_strided_grouped_reflect_conv_exact():
    # 4 -> 6 channels, groups 2, 5x5, stride 2, reflection padding 2 on 2 images of 9x16:
    # output 6 x 5 x 8 per image, (4 / 2) * 5 * 5 = 50 MACs per output element.
    conv = nn.Conv2d(4, 6, 5, stride=2, padding=2, groups=2, padding_mode="reflect")
    assert count_flops(conv, 9, 16, batch=2, in_channels=4)["total"] == 2 * (2 * 6 * 5 * 8) * 50


def test_parts_and_linear():
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 3, 5))
    counts = count_flops(model, 2, 3, count_elementwise=True)
    assert counts["0"] == 2 * 4 * 2 * 3 * 3
    assert counts["3"] == 2 * 5 * 24
    assert counts["total"] == counts["0"] + counts["3"]
    assert counts["1/elementwise"] == 4 * 2 * 3


def test_model_mode_restored():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    count_flops(model, 8, 8)
    assert model.training


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return GamDepthNet()


def test_gam_depth_parts(net):
    counts = count_flops(net, 64, 96)
    assert set(counts) == {"encoder", "depth_decoder", "semantic_decoder", "total"}
    assert counts["total"] == counts["encoder"] + counts["depth_decoder"] + counts["semantic_decoder"]
    # Same decoder shape, 40 output channels instead of 1 in the last convolution.
    assert counts["semantic_decoder"] > counts["depth_decoder"]


def test_gam_depth_scales_with_pixels(net):
    small = count_flops(net, 64, 96)["total"]
    large = count_flops(net, 128, 192)["total"]  # 4x the pixels
    # Every layer's output scales with the input area; only convolution-padding effects could differ.
    assert large / small == pytest.approx(4.0, rel=1e-3)
