"""Shared fixtures: a small random-init network saved as checkpoints and exported to ONNX.

``test/conftest.py`` makes ``small_model`` available to every test module, exported once per session;
do not import it into a module (that would export a copy per module). The network input is 64x96 so
that every test stays fast on two cores.

The oldest-versions stage (``make test-oldest``) has no torch: there the main venv exports the model
first (``python test/model_fixtures.py FOLDER``) and ``GAM_TEST_SMALL_MODEL_DIR`` names that folder;
the fixture then gives only the ONNX file (``checkpoint`` and ``safetensors`` are None), as on a robot.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SMALL_HEIGHT, SMALL_WIDTH = 64, 96


def blocky_scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """An RGB image of random 8x8 blocks (edges everywhere: any resize or flip shows)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))[:height, :width]


def one_step_checkpoint(folder: Path) -> Path:
    """A checkpoint of ``config/train_tiny.yaml`` after one training step, written under ``folder/run`` (needs
    torch): a real trained-format checkpoint for the benchmark scripts' end-to-end tests."""
    from training.config import load_training_config
    from training.trainer import Trainer

    config = load_training_config(Path(__file__).resolve().parents[1] / "config" / "train_tiny.yaml", [
        f"train.output_dir={folder / 'run'}", "validation=null", "train.max_steps=1", "train.progress_bar=false",
        "train.cpu_threads=1", "train.checkpoint_every_epochs=0",
    ])
    return Trainer(config).fit().checkpoint


@dataclass(frozen=True)
class SmallModel:
    checkpoint: Path | None  # .pt; None where the model was exported beforehand (no torch)
    safetensors: Path | None
    onnx: Path


EXPORTED_DIR_ENV = "GAM_TEST_SMALL_MODEL_DIR"


def export_small_model(folder: Path) -> SmallModel:
    """Save the small random-init network as checkpoints in ``folder`` and export it to ONNX."""
    import torch

    from gam_depth_ros.checkpoint import save_checkpoint
    from gam_depth_ros.export import export_checkpoint
    from gam_depth_ros.model_config import ModelConfig
    from gam_depth_ros.networks import GamDepthNet

    folder.mkdir(parents=True, exist_ok=True)
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


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> SmallModel:
    exported = os.environ.get(EXPORTED_DIR_ENV)
    if exported:
        onnx_path = Path(exported) / "small.onnx"
        assert onnx_path.is_file() and onnx_path.with_suffix(".json").is_file(), f"{EXPORTED_DIR_ENV}: no {onnx_path}"
        return SmallModel(None, None, onnx_path)
    pytest.importorskip("torch", reason=f"the small test model is exported with torch (or set {EXPORTED_DIR_ENV})")
    return export_small_model(tmp_path_factory.mktemp("small_model"))


def needs_checkpoints(model: SmallModel) -> None:
    """Skip a test that runs the torch backend where the model came without checkpoints."""
    if model.checkpoint is None:
        pytest.skip("torch backend: no torch in this venv (the oldest-versions stage has the exported ONNX only)")


if __name__ == "__main__":
    # make test-oldest: export with the main venv's torch for the venv that has none; keep the ONNX only.
    model = export_small_model(Path(sys.argv[1]))
    model.checkpoint.unlink()
    model.safetensors.unlink()
