"""Weight averaging of one run's checkpoints (training/weight_averaging.py) on real tiny-run checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gam_depth_ros.checkpoint import CheckpointError, build_model, load_checkpoint, save_checkpoint
from gam_depth_ros.inference.preprocessing import to_network_input
from training.checkpointing import load_training_checkpoint
from training.config import load_training_config
from training.data.common import read_rgb
from training.data.errors import DataError
from training.data.folder import list_frames
from training.weight_averaging import average_checkpoints, average_state_dicts, main, recompute_batchnorm

TINY = Path(__file__).resolve().parents[1] / "config" / "train_tiny.yaml"
NARROW = ("model.base_channels=16", "networks.pose_base_channels=16")


def _config(output_dir: Path, *overrides: str):
    return load_training_config(TINY, [
        f"train.output_dir={output_dir}", "validation=null", "train.progress_bar=false", "optim.milestones=[]",
        "train.checkpoint_every_epochs=0", "data.options={num_samples: 2, seed: 0}", *overrides,
    ])


@pytest.fixture(scope="module")
def three_checkpoints(tmp_path_factory) -> list[Path]:
    from training.trainer import Trainer

    torch.set_num_threads(2)
    folder = tmp_path_factory.mktemp("run")
    # Narrow networks (16 base channels): three checkpoints of 51 MB instead of 367 MB in the temporary folder.
    Trainer(_config(folder, "train.epochs=10", "train.max_steps=3", "train.checkpoint_every_steps=1",
                    "train.keep_checkpoints=0", "optim.lr=1.0e-3", *NARROW)).fit()
    paths = sorted((folder / "checkpoints").glob("step_*.pt"))
    assert [p.name for p in paths] == ["step_00000001.pt", "step_00000002.pt", "step_00000003.pt"]
    yield paths
    shutil.rmtree(folder)  # a module fixture's folder would otherwise stay to the session's end


def test_mean_of_hand_made_states_keeps_dtypes_and_takes_counters_from_the_last():
    states = [
        {"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([2.0], dtype=torch.bfloat16), "n": torch.tensor(3)},
        {"w": torch.tensor([3.0, 6.0]), "h": torch.tensor([4.0], dtype=torch.bfloat16), "n": torch.tensor(7)},
    ]
    mean = average_state_dicts(states)
    assert torch.equal(mean["w"], torch.tensor([2.0, 4.0]))
    assert mean["h"].dtype == torch.bfloat16 and float(mean["h"]) == 3.0
    assert mean["n"].dtype == torch.int64 and int(mean["n"]) == 7  # num_batches_tracked: the newest, not a mean
    with pytest.raises(ValueError, match="w: shapes differ"):
        average_state_dicts([states[0], {**states[1], "w": torch.zeros(3)}])
    with pytest.raises(ValueError, match="other keys"):
        average_state_dicts([states[0], {"w": states[1]["w"]}])
    with pytest.raises(ValueError, match="nothing to average"):
        average_state_dicts([])


def test_average_of_a_runs_checkpoints_is_their_mean_and_loads_everywhere(three_checkpoints, tmp_path):
    from training.trainer import build_model as build_training_model

    output = average_checkpoints(three_checkpoints, tmp_path / "mean.pt")
    loaded = [load_checkpoint(p) for p in three_checkpoints]
    averaged = load_checkpoint(output)
    moved = 0
    for key, value in averaged.state_dict.items():
        if value.is_floating_point():
            expected = sum(c.state_dict[key].double() for c in loaded) / 3
            assert torch.allclose(value.double(), expected, atol=1e-7), key
            moved += int(not torch.equal(loaded[0].state_dict[key], loaded[2].state_dict[key]))
        else:
            assert torch.equal(value, loaded[2].state_dict[key]), key
    assert moved > 10  # three optimiser steps at lr 1e-3 moved the weights: the mean is not a copy
    for key, value in averaged.extra["pose"].items():
        if value.is_floating_point():
            expected = sum(c.extra["pose"][key].double() for c in loaded) / 3
            assert torch.allclose(value.double(), expected, atol=1e-7), key
    assert [s["step"] for s in averaged.extra["averaged_from"]] == [1, 2, 3]
    assert averaged.model_config == loaded[2].model_config
    # Fine-tuning start, runtime network and the exporter's loader take it; --resume does not.
    model = build_training_model(_config(tmp_path / "ft", f"networks.init_checkpoint={output}", *NARROW))
    assert torch.equal(model.depth_net.state_dict()["encoder.conv1.weight"],
                       averaged.state_dict["encoder.conv1.weight"])
    build_model(averaged)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_training_checkpoint(output, model)


def test_bad_inputs_stop_with_the_file_named(three_checkpoints, tmp_path, capsys):
    with pytest.raises(CheckpointError, match="two or more"):
        average_checkpoints(three_checkpoints[:1], tmp_path / "one.pt")
    weights_only = load_checkpoint(three_checkpoints[0])
    bare = save_checkpoint(tmp_path / "bare.pt", weights_only.state_dict, weights_only.model_config)
    with pytest.raises(CheckpointError, match=r"bare\.pt: no pose network"):
        average_checkpoints([bare, three_checkpoints[1]], tmp_path / "x.pt")
    missing = tmp_path / "missing.pt"
    assert main([str(three_checkpoints[0]), str(missing), "--output", str(tmp_path / "y.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert not (tmp_path / "y.pt").exists()
    with pytest.raises(SystemExit):
        main([str(p) for p in three_checkpoints] + ["--output", str(tmp_path / "z.safetensors")])
    assert main([str(p) for p in three_checkpoints] + ["--output", str(tmp_path / "cli.pt")]) == 0
    assert "mean of 3 checkpoints" in capsys.readouterr().out


def test_weighted_mean_and_its_checks():
    states = [{"w": torch.tensor([0.0, 10.0])}, {"w": torch.tensor([1.0, 20.0])}]
    assert torch.allclose(average_state_dicts(states, weights=[0.3, 0.7])["w"], torch.tensor([0.7, 17.0]))
    assert torch.equal(average_state_dicts(states, weights=[0.0, 1.0])["w"], states[1]["w"])  # exact at the ends
    for bad in ([0.5], [0.6, 0.6], [1.5, -0.5]):
        with pytest.raises(ValueError, match="summing to 1"):
            average_state_dicts(states, weights=bad)


def test_recompute_batchnorm_is_the_plain_average_of_the_batches_statistics():
    layer = torch.nn.BatchNorm2d(2, momentum=0.3)
    weight_before = layer.weight.detach().clone()
    layer.running_mean.fill_(5.0)
    first = torch.tensor([1.0, 3.0, 5.0, 7.0]).view(2, 2, 1, 1).repeat(1, 1, 1, 2)   # channel 0: 1,1,5,5
    second = torch.tensor([2.0, 2.0, 2.0, 2.0]).view(2, 2, 1, 1).repeat(1, 1, 1, 2)  # channel 0: 2,2,2,2
    assert recompute_batchnorm(layer, [first, second]) == 4
    # channel 0: batch means 3 and 2 -> 2.5; unbiased variances 16/3 and 0 -> 8/3
    # channel 1: values 3,3,7,7 then 2,2,2,2: means 5 and 2 -> 3.5; variances 16/3 and 0 -> 8/3
    assert torch.allclose(layer.running_mean, torch.tensor([2.5, 3.5]))
    assert torch.allclose(layer.running_var, torch.tensor([8 / 3, 8 / 3]))
    assert layer.momentum == 0.3 and not layer.training  # restored, eval mode
    assert torch.equal(layer.weight, weight_before)
    with pytest.raises(ValueError, match="no images"):
        recompute_batchnorm(layer, [])


def test_batchnorm_statistics_recomputed_on_training_frames(three_checkpoints, tmp_path):
    from room_fixtures import write_tiny_rich_rooms

    rooms = write_tiny_rich_rooms(tmp_path / "rooms", sequences=2, frames=8)
    plain = load_checkpoint(average_checkpoints(three_checkpoints, tmp_path / "mean.pt"))
    result = load_checkpoint(average_checkpoints(three_checkpoints, tmp_path / "mean_bn.pt", [rooms],
                                                 frames_per_sequence=3))
    assert result.extra["batchnorm_recomputed"]["frames"] == 6
    changed = [key for key in plain.state_dict if not torch.equal(plain.state_dict[key], result.state_dict[key])]
    assert changed and all(key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")
                           for key in changed)
    assert "encoder.bn1.running_mean" in changed
    # The first BatchNorm layer's statistics by hand: conv1 of the 6 normalised frames (0, 2, 4 of each).
    network = build_model(plain)
    size = plain.model_config.height, plain.model_config.width
    paths = [path for i in range(2) for path in list_frames(rooms / f"seq_{i:04d}")[:6:2]]
    frames = [to_network_input(read_rgb(path), *size) for path in paths]
    image = torch.from_numpy(np.concatenate(frames))
    encoder = network.encoder
    with torch.no_grad():
        features = encoder.conv1((image - encoder.input_mean) / encoder.input_std)
    assert torch.allclose(result.state_dict["encoder.bn1.running_mean"], features.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(result.state_dict["encoder.bn1.running_var"], features.var(dim=(0, 2, 3)), rtol=1e-4)
    # Re-estimation alone: one checkpoint (without --batchnorm-frames that is an error, tested above).
    one = [str(three_checkpoints[2]), "--output", str(tmp_path / "one.pt"), "--batchnorm-frames", str(rooms)]
    assert main(one) == 0
    assert torch.equal(load_checkpoint(tmp_path / "one.pt").state_dict["encoder.conv1.weight"],
                       load_checkpoint(three_checkpoints[2]).state_dict["encoder.conv1.weight"])
    with pytest.raises(DataError, match="nor a folder of them"):
        average_checkpoints(three_checkpoints, tmp_path / "bad.pt", [tmp_path / "empty"])
