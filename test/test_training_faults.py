"""Training faults: a SIGKILL during a checkpoint write, unreadable images, strict data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gam_depth_ros.checkpoint import load_checkpoint
from training.checkpointing import latest_checkpoint
from training.config import load_training_config
from training.data.common import DataError
from training.synthetic.generate import render_sequence, write_folder
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "config" / "train_tiny.yaml"


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one_and_resume_continues(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "training.train", "--config", str(TINY), "--cpu",
               "--set", f"train.output_dir={run}", "--set", "validation=null", "--set", "train.epochs=50",
               "--set", "train.checkpoint_every_steps=1", "--set", "train.keep_checkpoints=3",
               "--set", "train.progress_bar=false", "--set", "train.max_steps=12",
               "--set", "model.base_channels=32", "--set", "networks.pose_base_channels=32"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    killed_mid_write = False
    for _ in range(5):  # kill as soon as a checkpoint's temporary file appears (a write in progress)
        process = subprocess.Popen(command + (["--resume"] if latest_checkpoint(run) else []), cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if list((run / "checkpoints").glob(".*.tmp")) and latest_checkpoint(run):
                process.send_signal(signal.SIGKILL)
                killed_mid_write = True
                break
            time.sleep(0.001)
        process.wait()
        if killed_mid_write:
            break
    assert killed_mid_write, "never caught a checkpoint write in progress"
    for path in (run / "checkpoints").glob("step_*.pt"):  # every checkpoint under a final name is whole
        assert load_checkpoint(path).extra["step"] > 0
    before = load_checkpoint(latest_checkpoint(run)).extra["step"]
    resumed = subprocess.run(command + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {run / 'checkpoints' / f'step_{before:08d}.pt'}" in resumed.stderr
    assert load_checkpoint(latest_checkpoint(run)).extra["step"] == 12 > before


@pytest.fixture()
def folder_with_a_broken_image(tmp_path):
    write_folder(render_sequence(0, 0, 6, 64, 96, "handheld"), tmp_path / "seq")
    broken = sorted((tmp_path / "seq" / "images").glob("*.png"))[2]
    broken.write_bytes(broken.read_bytes()[:100])  # truncated PNG
    return tmp_path / "seq", broken


def config_for(folder: Path, output: Path, *extra: str):
    return load_training_config(TINY, [
        "data.source=folder", f"data.path={folder}", "data.options={}", "validation=null", "train.batch_size=2",
        "train.max_steps=3", f"train.output_dir={output}", "train.progress_bar=false", *extra])


def test_unreadable_image_is_skipped_with_a_warning_naming_it(folder_with_a_broken_image, tmp_path, caplog):
    folder, broken = folder_with_a_broken_image
    torch.set_num_threads(2)
    result = Trainer(config_for(folder, tmp_path / "run")).fit()
    assert result.step == 3
    assert any("skipping an unreadable sample" in r.message and broken.name in r.message for r in caplog.records)


def test_strict_data_stops_at_the_unreadable_image(folder_with_a_broken_image, tmp_path):
    folder, broken = folder_with_a_broken_image
    with pytest.raises(DataError, match=broken.name):
        Trainer(config_for(folder, tmp_path / "run", "data.strict=true", "train.max_steps=20",
                           "train.epochs=5")).fit()
