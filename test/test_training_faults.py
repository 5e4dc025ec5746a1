"""Training faults: a SIGKILL during a checkpoint write, unreadable images, strict data."""

from __future__ import annotations

import errno
import logging
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


# ---------------------------------------------------------------- storage faults (issue 18, item 5)

FAST = ["--set", "validation=null", "--set", "train.progress_bar=false", "--set", "train.checkpoint_every_steps=1",
        "--set", "train.checkpoint_every_epochs=0", "--set", "model.base_channels=32",
        "--set", "networks.pose_base_channels=32", "--set", "data.options={num_samples: 3, seed: 0}",
        "--set", "train.batch_size=1", "--set", "train.log_every_steps=0"]


def _args(run: Path, *extra: str) -> list[str]:
    return ["--config", str(TINY), "--cpu", "--set", f"train.output_dir={run}", *FAST, *extra]


def _train(run: Path, *extra: str) -> int:
    from training.train import main

    torch.set_num_threads(2)
    return main(_args(run, *extra))


class _DiskFillsOnWrite:
    """Checkpoint streams on a disk that fills up during the ``fail_on``-th checkpoint write: the
    earlier checkpoints are written whole, that one gets ``budget`` bytes, then every write fails
    with ``ENOSPC`` as on a full disk."""

    def __init__(self, fail_on: int, budget: int = 64 << 10) -> None:
        self.fail_on, self.budget, self.opened = fail_on, budget, 0

    def wrap(self, stream):
        self.opened += 1
        if self.opened < self.fail_on:
            return stream
        fault = self

        class Full:
            def write(self, data):
                if fault.budget <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written = stream.write(memoryview(data)[: fault.budget])
                fault.budget -= written
                return written

            def flush(self):
                stream.flush()

        return Full()


def _checkpoint_files(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def _assert_stopped_with_step_1_intact(run: Path, message: str) -> None:
    failed, kept = run / "checkpoints" / "step_00000002.pt", run / "checkpoints" / "step_00000001.pt"
    assert message.startswith(f"step 2: {failed}: cannot write the checkpoint: No space left on device "
                              "(the disk is full). Training stopped; the checkpoints written before are intact "
                              f"(newest: {kept}). Free space in"), message
    # Step 1 whole and loadable; nothing of step 2 (no temporary file, no YAML).
    assert _checkpoint_files(run) == ["step_00000001.pt", "step_00000001.yaml"]
    assert load_checkpoint(kept).extra["step"] == 1


def test_disk_full_during_a_checkpoint_write_keeps_the_earlier_ones_and_stops_clearly(tmp_path, monkeypatch, caplog):
    import gam_depth_ros.checkpoint as checkpoint_module

    run = tmp_path / "run"
    disk = _DiskFillsOnWrite(fail_on=2)
    original = checkpoint_module._RecordingWriter.__init__
    monkeypatch.setattr(checkpoint_module._RecordingWriter, "__init__",
                        lambda self, stream: original(self, disk.wrap(stream)))
    assert _train(run, "--set", "train.max_steps=3", "--set", "train.keep_checkpoints=1") == 4
    _assert_stopped_with_step_1_intact(run, next(r.message for r in caplog.records if r.levelname == "ERROR"))
    # Space freed: --resume continues from step 1 to the end.
    monkeypatch.setattr(checkpoint_module._RecordingWriter, "__init__", original)
    assert _train(run, "--set", "train.max_steps=2", "--set", "train.keep_checkpoints=1", "--resume") == 0
    assert load_checkpoint(latest_checkpoint(run)).extra["step"] == 2


def test_a_real_full_disk_stops_the_run_with_the_earlier_checkpoints_intact(tmp_path, caplog):
    """The same on a real small file system: a tmpfs mounted over the checkpoint folder (needs root)."""
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                                           capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    subprocess.run(["umount", str(folder)], check=True)
    probe = tmp_path / "probe"
    assert _train(probe, "--set", "train.max_steps=1") == 0
    size = sum(p.stat().st_size for p in (probe / "checkpoints").iterdir())
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(1.5 * size) + (16 << 10)}", "tmpfs", str(folder)],
                   check=True)  # room for one checkpoint and its YAML, not two
    try:
        caplog.clear()
        assert _train(tmp_path / "run", "--set", "train.max_steps=3") == 4
        _assert_stopped_with_step_1_intact(tmp_path / "run",
                                           next(r.message for r in caplog.records if r.levelname == "ERROR"))
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not_a_training_checkpoint"])
def test_resume_falls_back_from_a_corrupt_newest_checkpoint(tmp_path, caplog, damage):
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    assert _train(run, "--set", "train.max_steps=2") == 0
    newest = latest_checkpoint(run)
    assert newest.name == "step_00000002.pt"
    if damage == "truncated":
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    elif damage == "garbage":
        newest.write_bytes(os.urandom(4096))
    else:  # a whole file, but only the network (a checkpoint for export, not for training)
        from gam_depth_ros.checkpoint import save_checkpoint

        checkpoint = load_checkpoint(newest)
        save_checkpoint(newest, checkpoint.state_dict, checkpoint.model_config)
    caplog.clear()
    assert _train(run, "--set", "train.max_steps=3", "--resume") == 0
    warning = next(r.message for r in caplog.records if r.levelname == "WARNING" and "--resume" in r.message)
    assert warning.startswith(f"--resume: cannot read {newest} (") and "step_00000002.pt.corrupt" in warning
    assert f"resumed from {run / 'checkpoints' / 'step_00000001.pt'} (epoch 0, step 1)" in caplog.text
    assert (newest.parent / "step_00000002.pt.corrupt").exists()
    assert load_checkpoint(latest_checkpoint(run)).extra["step"] == 3


def test_resume_with_no_readable_checkpoint_says_which_and_why(tmp_path, caplog):
    run = tmp_path / "run"
    assert _train(run, "--set", "train.max_steps=2") == 0
    for path in (run / "checkpoints").glob("*.pt"):
        path.write_bytes(b"not a checkpoint")
    caplog.clear()
    assert _train(run, "--set", "train.max_steps=3", "--resume") == 2
    error = next(r.message for r in caplog.records if r.levelname == "ERROR")
    assert error.startswith(f"--resume: no checkpoint in {run / 'checkpoints'} can be read: ")
    assert "step_00000002.pt: cannot load checkpoint safely" in error and "step_00000001.pt" in error
