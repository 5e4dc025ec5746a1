"""Weight averaging: one network from the uniform mean of several checkpoints of one run.

Checkpoints saved along one trajectory at a constant learning rate scatter around a region of
low training loss; their mean often lands nearer its centre than any one of them (the idea of
stochastic weight averaging, Izmailov et al. 2018), and it smooths the checkpoint-to-checkpoint
noise a validation choice would otherwise pick from. Whether it helps *here* is measured, not
assumed (docs/training.md).

Every floating-point tensor of the depth/semantic network and of the pose network is averaged,
BatchNorm running means and variances included. Integer tensors (``num_batches_tracked``) are taken
from the newest checkpoint. The mean of the statistics is not the statistics of the mean network's
activations; ``--batchnorm-frames`` re-estimates the depth network's BatchNorm statistics on
training frames (:func:`recompute_batchnorm`, as SWA does); whether that matters here is measured
too. The pose network's statistics stay averaged (it does not run on the robot).

The result is written as a ``.pt`` holding ``model``, ``model_config``, ``training_config`` (the
newest input's), ``pose`` and ``averaged_from`` (the input paths and steps). It is not a
training checkpoint (no optimiser state: an average is not a point any optimiser stood on), so
``--resume`` refuses it; ``networks.init_checkpoint``, the benchmarks, the exporter and
``scripts/package_demo_model.py`` take it like any checkpoint. Usage::

    .venv/bin/python -m training.weight_averaging --output output/avg.pt \\
        output/run/checkpoints/step_00001647.pt output/run/checkpoints/step_00003294.pt \\
        --batchnorm-frames output/rooms/train   # optional; with one checkpoint: re-estimate only
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gam_depth_ros.checkpoint import Checkpoint, CheckpointError, build_model, load_checkpoint, save_checkpoint
from gam_depth_ros.inference.preprocessing import to_network_input
from gam_depth_ros.model_config import ModelConfig
from training.data.common import read_rgb
from training.data.errors import DataError
from training.data.folder import list_frames, sequence_folders


def average_state_dicts(states: Sequence[dict[str, Any]],
                        weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """The mean of ``states`` (same keys and shapes), uniform or with ``weights`` (summing to 1);
    integer tensors from the last state.

    Raises
    ------
    ValueError
        ``states`` is empty, ``weights`` do not fit them, or the dictionaries do not share keys and
        shapes (the message names the first key that differs).
    """
    if not states:
        raise ValueError("nothing to average: no state dicts given")
    weights = [1.0 / len(states)] * len(states) if weights is None else [float(w) for w in weights]
    if len(weights) != len(states) or abs(sum(weights) - 1.0) > 1e-9 or min(weights) < 0.0:
        raise ValueError(f"weights {weights} must be {len(states)} non-negative numbers summing to 1")
    keys = list(states[-1])
    for index, state in enumerate(states):
        if list(state) != keys:
            differ = sorted(set(state) ^ set(keys))
            raise ValueError(f"state {index} has other keys than the last one (first differing: {differ[:1]})")
    averaged = {}
    for key in keys:
        tensors = [torch.as_tensor(state[key]) for state in states]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) != 1:
            raise ValueError(f"{key}: shapes differ between the states ({sorted(shapes)})")
        last = tensors[-1]
        if not last.is_floating_point():
            averaged[key] = last.clone()
            continue
        # float64 sum: the mean of many bf16/fp32 tensors does not drift with their order
        total = sum(weight * t.to(torch.float64) for weight, t in zip(weights, tensors, strict=True))
        averaged[key] = total.to(last.dtype)
    return averaged


def average_checkpoints(paths: Sequence[str | Path], output: str | Path,
                        batchnorm_frames: Sequence[str | Path] = (), frames_per_sequence: int = 2,
                        batch_size: int = 8) -> Path:
    """Write the average of the checkpoints ``paths`` (oldest first) to ``output`` (``.pt``); with
    ``batchnorm_frames`` (sequence folders, or folders of them) the depth network's BatchNorm
    statistics are then re-estimated on ``frames_per_sequence`` evenly spaced frames of each sequence.
    One checkpoint is allowed only with ``batchnorm_frames`` (re-estimation alone).

    Raises
    ------
    gam_depth_ros.checkpoint.CheckpointError
        A file cannot be read, has no pose network, or its networks differ from the others'
        (architecture or sizes); the message names the file.
    training.data.errors.DataError
        A frame folder has no frames or an unreadable image (the message names it).
    """
    if len(paths) < (1 if batchnorm_frames else 2):
        raise CheckpointError(f"averaging needs two or more checkpoints (one only to re-estimate BatchNorm "
                              f"statistics), got {len(paths)}")
    checkpoints = [load_checkpoint(path) for path in paths]
    newest = checkpoints[-1]
    for checkpoint in checkpoints:
        _check_compatible(checkpoint, newest)
    try:
        model = average_state_dicts([c.state_dict for c in checkpoints])
        pose = average_state_dicts([c.extra["pose"] for c in checkpoints])
    except ValueError as error:
        raise CheckpointError(f"{', '.join(str(p) for p in paths)}: cannot average: {error}") from error
    extra: dict[str, Any] = {}
    if batchnorm_frames:
        model, used = reestimate_batchnorm(model, newest.model_config, batchnorm_frames, frames_per_sequence,
                                           batch_size)
        extra["batchnorm_recomputed"] = {"folders": [str(f) for f in batchnorm_frames], "frames": used}
    sources = [{"path": str(c.path), "step": int(c.extra.get("step", -1))} for c in checkpoints]
    return save_checkpoint(output, model, newest.model_config, newest.training_config, pose=pose,
                           averaged_from=sources, **extra)


def reestimate_batchnorm(state: dict[str, torch.Tensor], model_config: ModelConfig, folders: Sequence[str | Path],
                         frames_per_sequence: int = 2, batch_size: int = 8) -> tuple[dict[str, torch.Tensor], int]:
    """``state`` (a depth network's weights, ``model_config``'s architecture) with its BatchNorm statistics
    re-estimated on ``frames_per_sequence`` evenly spaced frames of each sequence in ``folders``; every
    other tensor unchanged. Returns the new state and the number of frames used.

    Raises
    ------
    training.data.errors.DataError
        A folder has no sequences or frames, or an image cannot be read (the message names it).
    """
    network = build_model(Checkpoint(Path("<weights in memory>"), state, model_config, None, {}))
    frames = sequence_frames(folders, frames_per_sequence)
    used = recompute_batchnorm(network, network_batches(frames, model_config.height, model_config.width, batch_size))
    # Only the BatchNorm buffers change; the weights stay the given ones.
    return {**state, **{key: value for key, value in network.state_dict().items() if _is_batchnorm_buffer(key)}}, used


def recompute_batchnorm(network: torch.nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Replace every BatchNorm layer's running mean and variance in ``network`` by their plain
    average over ``batches`` ([B, 3, H, W] network inputs), weights untouched; returns the number of
    images seen. The network is left in eval mode.

    Raises
    ------
    ValueError
        ``batches`` is empty (the statistics would be reset to 0 / 1).
    """
    layers = [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # None: a cumulative average over the batches, not an exponential one
    seen = 0
    network.train()
    try:
        with torch.no_grad():
            for batch in batches:
                network(batch)
                seen += batch.shape[0]
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        network.eval()
    if seen == 0:
        raise ValueError("no images to estimate the BatchNorm statistics from")
    return seen


def sequence_frames(folders: Sequence[str | Path], per_sequence: int) -> list[Path]:
    """``per_sequence`` evenly spaced frames of every sequence in ``folders`` (a sequence folder, or a
    folder of them: the generator's layout), in name order."""
    frames = []
    for folder in folders:
        for sequence in sequence_folders(folder):
            listed = list_frames(sequence)
            step = max(1, len(listed) // per_sequence)
            frames.extend(listed[::step][:per_sequence])
    return frames


def network_batches(frames: Sequence[Path], height: int, width: int, batch_size: int) -> Iterator[torch.Tensor]:
    """The frames read and resized as the node does (:func:`to_network_input`), ``batch_size`` at a time."""
    for start in range(0, len(frames), batch_size):
        chunk = [to_network_input(read_rgb(path), height, width) for path in frames[start:start + batch_size]]
        yield torch.from_numpy(np.concatenate(chunk))


def _is_batchnorm_buffer(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")


def _check_compatible(checkpoint: Checkpoint, newest: Checkpoint) -> None:
    if "pose" not in checkpoint.extra:
        raise CheckpointError(f"{checkpoint.path}: no pose network (not a training checkpoint); average training "
                              "checkpoints of one run")
    if checkpoint.model_config != newest.model_config:
        raise CheckpointError(f"{checkpoint.path}: its ModelConfig differs from {newest.path}'s; average "
                              "checkpoints of one run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="training checkpoints of one run (.pt)")
    parser.add_argument("--output", required=True, type=Path, help="the averaged checkpoint to write (.pt)")
    parser.add_argument("--batchnorm-frames", nargs="+", type=Path, default=[], metavar="FOLDER",
                        help="re-estimate the depth network's BatchNorm statistics on these training sequences")
    parser.add_argument("--frames-per-sequence", type=int, default=2,
                        help="evenly spaced frames of each sequence for --batchnorm-frames (default 2)")
    args = parser.parse_args(argv)
    if args.output.suffix != ".pt":
        parser.error(f"--output {args.output}: must end in .pt (it holds the pose network too)")
    if args.frames_per_sequence < 1:
        parser.error("--frames-per-sequence must be at least 1")
    try:
        path = average_checkpoints(args.checkpoints, args.output, args.batchnorm_frames, args.frames_per_sequence)
    except (CheckpointError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    count = len(args.checkpoints)
    print(f"wrote {path}: " + (f"the mean of {count} checkpoints" if count > 1 else str(args.checkpoints[0]))
          + (", BatchNorm statistics re-estimated on the frames given" if args.batchnorm_frames else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
