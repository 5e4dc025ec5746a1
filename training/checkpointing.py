"""Training checkpoints: atomic writes, exact resume, the resolved config beside each file.

A checkpoint ``<output_dir>/checkpoints/step_<step>.pt`` is written through
:func:`gam_depth_ros.checkpoint.save_checkpoint` (temp file, fsync, rename: a crash never leaves
a half-written checkpoint under a final name) and holds:

==================  ===============================================================
``model``           ``GamDepthNet`` state dict (exports and the node load this part)
``model_config``    ``ModelConfig`` fields
``training_config`` the resolved ``TrainingConfig`` as a plain dict
``pose``            ``PoseNetwork`` state dict
``optimizer``       Adam state
``scheduler``       step-schedule state (milestones as a plain dict)
``grad_scaler``     AMP loss-scaler state (empty dict without fp16)
``epoch``           epoch being trained when saved
``epoch_step``      batches of that epoch already done (resume skips them)
``step``            batches done in all
``rng``             python, numpy, torch CPU and CUDA generator states (tensors and numbers)
``nan_steps``       non-finite losses skipped so far
==================  ===============================================================

Everything is tensors, numbers, strings, lists and dicts, so it loads with ``weights_only=True``.
The same config is written as ``step_<step>.yaml`` next to it (before the checkpoint itself).

Storage faults: a write that fails (a full disk: ``ENOSPC``) raises :class:`CheckpointStorageError`
(the trainer stops with it) and leaves every earlier checkpoint as it was (older ones are pruned
only after a new one is complete). :func:`resume_latest` skips a newest checkpoint that cannot be
read (truncated, corrupt, not a training checkpoint), renames it ``*.pt.corrupt`` with a warning and
resumes from the previous one.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gam_depth_ros.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from training.config import TrainingConfig, config_to_dict, save_training_config
from training.weight_averaging import average_state_dicts, reestimate_batchnorm

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"step_(\d+)\.pt")
#: What a training checkpoint holds besides the network and configs (see the module docstring).
TRAINING_KEYS = ("pose", "optimizer", "scheduler", "rng", "epoch", "epoch_step", "step")
LOG = logging.getLogger("training")


class CheckpointStorageError(RuntimeError):
    """A checkpoint could not be written; training stops, the checkpoints written before are intact."""


@dataclass
class ResumeState:
    """Counters restored from a checkpoint."""

    path: Path
    epoch: int
    epoch_step: int
    step: int
    nan_steps: int
    training_config: dict[str, Any] | None


def checkpoint_path(output_dir: str | Path, step: int) -> Path:
    """``<output_dir>/checkpoints/step_<step:08d>.pt``."""
    return Path(output_dir) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step in ``output_dir``, or None."""
    found = checkpoints_newest_first(output_dir)
    return found[0] if found else None


def checkpoints_newest_first(output_dir: str | Path) -> list[Path]:
    """Every ``step_*.pt`` in ``output_dir``'s checkpoint folder, highest step first."""
    folder = Path(output_dir) / CHECKPOINT_DIR
    found = [(int(m.group(1)), p) for p in folder.glob("step_*.pt") if (m := _NAME.fullmatch(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def capture_rng_state() -> dict[str, Any]:
    """Generator states of python, numpy, torch (CPU) and CUDA, in torch-safe types."""
    version, mt_state, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(mt_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(
    output_dir: str | Path, config: TrainingConfig, model, optimizer, scheduler, grad_scaler,
    *, epoch: int, epoch_step: int, step: int, nan_steps: int, keep: int = 0,
) -> Path:
    """Write the config YAML and the checkpoint of ``step``; keep only the newest ``keep`` (0 = all).

    ``model`` is the unwrapped :class:`training.model.SelfSupervisedModel`.
    """
    path = checkpoint_path(output_dir, step)
    config_path, existed = path.with_suffix(".yaml"), path.exists()
    scheduler_state = dict(scheduler.state_dict())
    scheduler_state["milestones"] = {int(k): int(v) for k, v in scheduler_state.get("milestones", {}).items()}
    try:
        save_training_config(config, config_path)
        save_checkpoint(
            path, model.depth_net.state_dict(), config.model, config_to_dict(config),
            pose=model.pose_net.state_dict(),
            optimizer=optimizer.state_dict(),
            scheduler=scheduler_state,
            grad_scaler=grad_scaler.state_dict() if grad_scaler is not None and grad_scaler.is_enabled() else {},
            epoch=epoch, epoch_step=epoch_step, step=step, nan_steps=nan_steps,
            rng=capture_rng_state(),
        )
    except (OSError, CheckpointError) as error:  # CheckpointWriteError; OSError from the YAML beside it
        if not existed:
            config_path.unlink(missing_ok=True)
        cause = str(error) if isinstance(error, CheckpointError) else f"{config_path}: {error.strerror or error}"
        newest = latest_checkpoint(output_dir)
        raise CheckpointStorageError(
            f"step {step}: {cause}. Training stopped; the checkpoints written before are intact (newest: "
            f"{newest or 'none'}). Free space in {path.parent}, then continue with --resume.") from error
    if keep > 0:
        _prune(Path(output_dir) / CHECKPOINT_DIR, keep)
    return path


def load_training_checkpoint(path: str | Path, model, optimizer=None, scheduler=None, grad_scaler=None,
                             restore_rng: bool = True) -> ResumeState:
    """Load weights (and, when given, optimiser, scheduler, scaler and RNG states) from ``path``.

    Raises
    ------
    gam_depth_ros.checkpoint.CheckpointError
        The file cannot be read or is not a training checkpoint (checked before anything is loaded).
    """
    return _restore(_read_training_checkpoint(path), model, optimizer, scheduler, grad_scaler, restore_rng)


def _read_training_checkpoint(path: str | Path) -> Checkpoint:
    checkpoint = load_checkpoint(path)
    missing = [key for key in TRAINING_KEYS if key not in checkpoint.extra]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint (no {', '.join(missing)})")
    return checkpoint


def _restore(checkpoint: Checkpoint, model, optimizer, scheduler, grad_scaler, restore_rng: bool) -> ResumeState:
    extra = checkpoint.extra
    model.depth_net.load_state_dict(checkpoint.state_dict)
    model.pose_net.load_state_dict(extra["pose"])
    if optimizer is not None:
        optimizer.load_state_dict(extra["optimizer"])
    if scheduler is not None:
        state = dict(extra["scheduler"])
        state["milestones"] = Counter(state.get("milestones", {}))
        scheduler.load_state_dict(state)
    if grad_scaler is not None and extra.get("grad_scaler"):
        grad_scaler.load_state_dict(extra["grad_scaler"])
    if restore_rng:
        restore_rng_state(extra["rng"])
    return ResumeState(checkpoint.path, int(extra["epoch"]), int(extra["epoch_step"]), int(extra["step"]),
                       int(extra.get("nan_steps", 0)), checkpoint.training_config)


def resume_latest(output_dir: str | Path, model, optimizer=None, scheduler=None, grad_scaler=None) -> ResumeState:
    """Resume from the newest readable checkpoint in ``output_dir``.

    A newer checkpoint that cannot be read (truncated, corrupt, not a training checkpoint) is renamed
    ``<name>.corrupt`` (kept for inspection, no longer picked or pruned) with a warning, and the
    previous one is tried. Weights that do not fit the run's networks are not a reason to fall back
    (older checkpoints would not fit either): that error is raised.

    Raises
    ------
    FileNotFoundError
        No checkpoint at all.
    gam_depth_ros.checkpoint.CheckpointError
        None could be read; the message lists each file and why.
    """
    candidates = checkpoints_newest_first(output_dir)
    if not candidates:
        raise FileNotFoundError(f"--resume: no checkpoint in {Path(output_dir) / CHECKPOINT_DIR}")
    failures = []
    for path in candidates:
        try:
            checkpoint = _read_training_checkpoint(path)
        except CheckpointError as error:
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            LOG.warning("--resume: cannot read %s (%s); renamed it to %s and trying the previous checkpoint",
                        path, str(error).removeprefix(f"{path}: "), aside.name)
            failures.append(str(error))
            continue
        return _restore(checkpoint, model, optimizer, scheduler, grad_scaler, True)
    raise CheckpointError(f"--resume: no checkpoint in {Path(output_dir) / CHECKPOINT_DIR} can be read: "
                          + "; ".join(failures))


def init_from_checkpoint(model, path: str | Path) -> None:
    """Fine-tuning start: copy a checkpoint's network weights into ``model`` (a ``SelfSupervisedModel``).

    The depth/semantic network always loads (its ``ModelConfig`` architecture fields must match the
    run's; the input size may differ, weights do not depend on it); the pose network loads when the
    file is a training checkpoint that holds one, else it keeps its initialisation. Optimiser,
    schedule and counters are not taken: that is ``--resume``.

    Raises
    ------
    gam_depth_ros.checkpoint.CheckpointError
        Unreadable file or weights that do not fit the run's networks, naming the file.
    """
    from gam_depth_ros.checkpoint import CheckpointError

    checkpoint = load_checkpoint(path)
    expected = model.depth_net.state_dict()
    state = {k: v for k, v in checkpoint.state_dict.items() if k in expected}  # extra depth heads dropped
    # Depth heads of scales the file lacks (an exported single-scale model) keep their initialisation.
    missing = sorted(k for k in set(expected) - set(state) if not k.startswith("depth_decoder.heads."))
    mismatched = sorted(k for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape))
    if missing or mismatched:
        raise CheckpointError(f"{path}: weights do not fit this run's networks (missing {missing[:3]}, "
                              f"shape mismatch {mismatched[:3]}); check model.base_channels and num_classes")
    model.depth_net.load_state_dict(state, strict=False)
    if "pose" in checkpoint.extra:
        try:
            model.pose_net.load_state_dict(checkpoint.extra["pose"])
        except RuntimeError as error:  # missing/unexpected keys or shapes
            raise CheckpointError(f"{path}: pose weights do not fit this run's pose network "
                                  f"({str(error).splitlines()[0]}); check networks.pose_base_channels") from error


def blend_checkpoints(start: str | Path, tuned: str | Path, tuned_weight: float, output: str | Path,
                      batchnorm_frames: Sequence[str | Path] = (), frames_per_sequence: int = 2) -> Path:
    """Write ``tuned_weight * tuned + (1 - tuned_weight) * start`` of the depth network's weights.

    Weight-space ensembling of a fine-tuned model with the one it started from (WiSE-FT, Wortsman
    et al. 2022): the fine-tuned weights stay in the starting model's basin, so the blend keeps much
    of the gain on the new data and forgets less. Tensors the start lacks (depth heads of scales an
    exported model dropped) and integer buffers are taken from ``tuned``. With ``batchnorm_frames``
    (sequence folders) the blend's BatchNorm statistics are re-estimated on ``frames_per_sequence``
    frames of each sequence instead of blended (:func:`training.weight_averaging.reestimate_batchnorm`).
    The output holds the network, its ``ModelConfig`` and the tuned run's training config, ready for export.

    Raises
    ------
    gam_depth_ros.checkpoint.CheckpointError
        Unreadable files, a weight outside [0, 1], or architectures that differ (naming the files).
    """
    if not 0.0 <= tuned_weight <= 1.0:
        raise CheckpointError(f"blend weight {tuned_weight} is outside [0, 1]")
    first, second = load_checkpoint(start), load_checkpoint(tuned)
    mismatched = sorted(k for k, v in second.state_dict.items()
                        if k in first.state_dict and tuple(first.state_dict[k].shape) != tuple(v.shape))
    if mismatched:
        raise CheckpointError(f"{start} and {tuned} have different architectures ({mismatched[:3]})")
    shared = [k for k, v in second.state_dict.items() if k in first.state_dict and v.is_floating_point()]
    mixed = average_state_dicts([{k: first.state_dict[k] for k in shared}, {k: second.state_dict[k] for k in shared}],
                                weights=[1.0 - tuned_weight, tuned_weight])
    blended = {**second.state_dict, **mixed}
    if batchnorm_frames:
        blended, _ = reestimate_batchnorm(blended, second.model_config, batchnorm_frames, frames_per_sequence)
    return save_checkpoint(output, blended, second.model_config, second.training_config)


def _prune(folder: Path, keep: int) -> None:
    found = sorted((int(m.group(1)), p) for p in folder.glob("step_*.pt") if (m := _NAME.fullmatch(p.name)))
    for _, old in found[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".yaml").unlink(missing_ok=True)
