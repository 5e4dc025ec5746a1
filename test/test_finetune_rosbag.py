"""config/finetune_rosbag.yaml: fine-tuning a checkpoint on a robot's rosbag runs and writes checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch

from gam_depth_ros.checkpoint import load_checkpoint, save_checkpoint
from gam_depth_ros.model_config import ModelConfig
from gam_depth_ros.networks import GamDepthNet
from training.config import load_training_config
from training.synthetic.generate import TOPICS, render_sequence, write_bag
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def test_finetune_from_a_generated_bag_writes_a_checkpoint(tmp_path):
    torch.set_num_threads(2)
    bag = write_bag(render_sequence(5, 0, 10, 64, 96, "robot"), tmp_path / "robot_bag")
    torch.manual_seed(0)
    start = save_checkpoint(tmp_path / "start.safetensors", GamDepthNet(base_channels=32).state_dict(),
                            ModelConfig(height=96, width=128, base_channels=32))
    config = load_training_config(REPO / "config" / "finetune_rosbag.yaml", [
        f"data.path={bag}", f"data.options.topic={TOPICS['image']}",
        f"data.options.camera_info_topic={TOPICS['camera_info']}",
        # 10 frames (1/3 s) are too few for the config's spacing by motion or time: every 2nd frame
        "data.options.min_motion=0.0", "data.options.spacing=frames", "data.options.stride=2",
        f"data.options.cache_dir={tmp_path / 'frames'}",
        f"networks.init_checkpoint={start}", "model.height=64", "model.width=96", "train.max_steps=2",
        "train.batch_size=2", "train.num_workers=0", f"train.output_dir={tmp_path / 'run'}", "train.progress_bar=false",
    ])
    result = Trainer(config).fit()
    assert result.step == 2 and result.checkpoint is not None and result.checkpoint.is_file()
    tuned = load_checkpoint(result.checkpoint)
    assert tuned.model_config.base_channels == 32 and (tuned.model_config.height, tuned.model_config.width) == (64, 96)
    initial = load_checkpoint(start).state_dict["encoder.conv1.weight"]
    assert not torch.equal(tuned.state_dict["encoder.conv1.weight"], initial)  # it trained from there
    assert (tmp_path / "frames" / "images").is_dir()  # frames extracted from the bag once
