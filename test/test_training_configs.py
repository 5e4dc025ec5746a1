"""The training configs shipped in config/: each loads (strictly), says how it is run, and a stage starts
from the checkpoints its stage 1 writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import load_training_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted([*(REPO / "config").glob("train_*.yaml"), REPO / "config" / "finetune_rosbag.yaml",
                  REPO / "config" / "learning_bench.yaml"])
# second stage -> the config whose run it continues
STAGES = {"train_rich_stage2.yaml": "train_rich_stage1.yaml", "train_rich192_more.yaml": "train_rich192.yaml"}


def test_every_training_config_is_listed():
    assert len(CONFIGS) == 10, [path.name for path in CONFIGS]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_loads_and_names_its_command(path):
    config = load_training_config(path)  # strict: a misspelt key or a wrong type raises, naming the file
    assert config.frame_ids[0] == 0
    assert config.model.height % 32 == 0 and config.model.width % 32 == 0
    if path.name != "learning_bench.yaml":  # bench/learning.py runs it, with its own overrides
        assert f"--config config/{path.name}" in path.read_text(), "the header shows the command that runs it"


@pytest.mark.parametrize("stage, first", sorted(STAGES.items()))
def test_second_stage_starts_from_its_first_stage_run(stage, first):
    continued = load_training_config(REPO / "config" / stage)
    origin = load_training_config(REPO / "config" / first)
    checkpoint = Path(continued.networks.init_checkpoint)
    assert checkpoint.parent == Path(origin.train.output_dir) / "checkpoints"
    assert checkpoint.suffix == ".pt"
    assert (continued.model.height, continued.model.width) >= (origin.model.height, origin.model.width)
    assert continued.model.base_channels == origin.model.base_channels  # the weights must fit
