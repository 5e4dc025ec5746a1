"""Weight averaging: one network from the uniform mean of several checkpoints of one run.

Checkpoints saved along one trajectory at a constant learning rate scatter around a region of
low training loss; their mean often lands nearer its centre than any one of them (the idea of
stochastic weight averaging, Izmailov et al. 2018), and it smooths the checkpoint-to-checkpoint
noise a validation choice would otherwise pick from. Whether it helps *here* is measured, not
assumed (docs/training.md).

Every floating-point tensor of the depth/semantic network and of the pose network is averaged,
BatchNorm running means and variances included (checkpoints of one low-learning-rate trajectory
have close statistics; the mean is used as is rather than re-estimated on training data). Integer
tensors (``num_batches_tracked``) are taken from the newest checkpoint.

The result is written as a ``.pt`` holding ``model``, ``model_config``, ``training_config`` (the
newest input's), ``pose`` and ``averaged_from`` (the input paths and steps). It is not a
training checkpoint (no optimiser state: an average is not a point any optimiser stood on), so
``--resume`` refuses it; ``networks.init_checkpoint``, the benchmarks, the exporter and
``scripts/package_demo_model.py`` take it like any checkpoint. Usage::

    .venv/bin/python -m training.weight_averaging --output output/avg.pt \\
        output/run/checkpoints/step_00001647.pt output/run/checkpoints/step_00003294.pt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gam_depth_ros.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint


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


def average_checkpoints(paths: Sequence[str | Path], output: str | Path) -> Path:
    """Write the average of the checkpoints ``paths`` (oldest first) to ``output`` (``.pt``).

    Raises
    ------
    gam_depth_ros.checkpoint.CheckpointError
        A file cannot be read, has no pose network, or its networks differ from the others'
        (architecture or sizes); the message names the file.
    """
    if len(paths) < 2:
        raise CheckpointError(f"averaging needs two or more checkpoints, got {len(paths)}")
    checkpoints = [load_checkpoint(path) for path in paths]
    newest = checkpoints[-1]
    for checkpoint in checkpoints:
        _check_compatible(checkpoint, newest)
    try:
        model = average_state_dicts([c.state_dict for c in checkpoints])
        pose = average_state_dicts([c.extra["pose"] for c in checkpoints])
    except ValueError as error:
        raise CheckpointError(f"{', '.join(str(p) for p in paths)}: cannot average: {error}") from error
    sources = [{"path": str(c.path), "step": int(c.extra.get("step", -1))} for c in checkpoints]
    return save_checkpoint(output, model, newest.model_config, newest.training_config, pose=pose,
                           averaged_from=sources)


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
    args = parser.parse_args(argv)
    if args.output.suffix != ".pt":
        parser.error(f"--output {args.output}: must end in .pt (it holds the pose network too)")
    try:
        path = average_checkpoints(args.checkpoints, args.output)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}: the mean of {len(args.checkpoints)} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
