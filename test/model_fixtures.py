"""Shared fixtures: a small random-init network saved as checkpoints and exported to ONNX.

Import the fixtures into a test module (``from model_fixtures import small_model``); the
network input is 64x96 so that every test stays fast on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

SMALL_HEIGHT, SMALL_WIDTH = 64, 96


@dataclass(frozen=True)
class SmallModel:
    checkpoint: Path  # .pt
    safetensors: Path
    onnx: Path


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> SmallModel:
    import torch

    from gam_depth_ros.checkpoint import save_checkpoint
    from gam_depth_ros.export import export_checkpoint
    from gam_depth_ros.model_config import ModelConfig
    from gam_depth_ros.networks import GamDepthNet

    folder = tmp_path_factory.mktemp("small_model")
    torch.manual_seed(1234)
    net = GamDepthNet()
    # Random BN statistics make the random network's outputs vary across the image, so label and
    # depth comparisons below test something.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    config = ModelConfig(height=SMALL_HEIGHT, width=SMALL_WIDTH, min_depth=0.1, max_depth=10.0, depth_scale=2.0)
    checkpoint = save_checkpoint(folder / "small.pt", net.state_dict(), config, {"note": "test"})
    safetensors = save_checkpoint(folder / "small.safetensors", net.state_dict(), config, {"note": "test"})
    onnx_path = folder / "small.onnx"
    export_checkpoint(checkpoint, onnx_path)
    return SmallModel(checkpoint, safetensors, onnx_path)
