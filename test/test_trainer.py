"""The training pipeline on tiny synthetic clips (64x96, CPU): conventions, overfit, resume, DDP, NaNs."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from gam_depth_ros.checkpoint import build_model as build_runtime_model
from gam_depth_ros.checkpoint import load_checkpoint
from training import geometry, losses
from training.checkpointing import latest_checkpoint
from training.config import config_from_dict, load_training_config
from training.data.sample import SAMPLE_KEYS
from training.data.synthetic_clip import SyntheticClipDataset
from training.model import SelfSupervisedModel

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "config" / "train_tiny.yaml"
H, W = 64, 96


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def tiny_config(output_dir: Path, *overrides: str):
    return load_training_config(TINY, [
        f"train.output_dir={output_dir}", "validation=null", "train.log_every_steps=1", "train.progress_bar=false",
        "train.checkpoint_every_epochs=0", "train.keep_checkpoints=2", "optim.milestones=[]", *overrides,
    ])


def test_synthetic_clip_follows_the_sample_schema():
    dataset = SyntheticClipDataset(2, H, W, (0, -2, -1, 1, 2))
    sample = dataset[1]
    assert set(sample) == set(SAMPLE_KEYS)
    assert sample["images"].shape == (5, 3, H, W) and sample["K"].shape == (4, 4, 4)
    assert torch.allclose(sample["K"][1, :2, :3], sample["K"][0, :2, :3] / 2)
    assert torch.allclose(sample["K"][0] @ sample["inv_K"][0], torch.eye(4), atol=1e-5)
    assert sample["segments"].max() > 0 and bool(sample["has_structure"])
    directions = sample["vanishing_directions"]
    assert torch.allclose(directions @ directions.T, torch.eye(3), atol=1e-5)
    assert torch.equal(dataset[1]["images"], sample["images"])  # a pure function of (seed, index)


def test_ground_truth_depth_and_pose_explain_the_synthetic_views():
    """Warping each source with the true depth and T_source_target reproduces the target (renderer and
    geometry agree on frames and directions); the inverse pose does not."""
    dataset = SyntheticClipDataset(2, H, W, (0, -2, -1, 1, 2), step_m=0.08, turn_rad=0.03)
    for index in range(2):
        sample, T = dataset[index], dataset.relative_poses(index)
        K, inv_K = sample["K"][:1].expand(4, 4, 4), sample["inv_K"][:1].expand(4, 4, 4)
        depth = sample["depth_gt"].expand(4, 1, H, W)
        sources, target = sample["images"][1:], sample["images"][:1].expand(4, 3, H, W)

        def error(T_source_target, sources=sources, depth=depth, K=K, inv_K=inv_K, target=target):
            warped = geometry.warp(sources, depth, K, inv_K, T_source_target)
            return losses.photometric_error(warped, target, 0.85)[..., 4:-4, 4:-4].mean()

        assert error(T) < 0.3 * error(geometry.invert(T))  # measured: 0.023-0.032 vs 0.10-0.15


def test_initial_poses_compose_along_the_frame_chain():
    """With a pose network that returns the true T_later_earlier of each consecutive pair, the model's
    target->source poses equal the true ones (T_2_0 = T_2_1 @ T_1_0; negative frames inverted)."""
    config = load_training_config(TINY, ["frame_ids=[0,-2,-1,1,2]"])
    model = SelfSupervisedModel(config.model, config.frame_ids)
    torch.manual_seed(0)
    world_from_cam = {f: geometry.pose_vector_to_matrix(torch.randn(1, 3) * 0.2, torch.randn(1, 3)) for f in
                      (-2, -1, 0, 1, 2)}

    def true_pose(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        frames = zip(first[:, 0, 0, 0].round().long().tolist(), second[:, 0, 0, 0].round().long().tolist())
        return torch.cat([geometry.invert(world_from_cam[b]) @ world_from_cam[a] for a, b in frames])

    model.pose_net.forward = true_pose  # type: ignore[method-assign]
    images = torch.tensor(config.frame_ids, dtype=torch.float32).view(1, 5, 1, 1, 1).expand(2, 5, 3, H, W)
    T = model._initial_poses(images)
    for s, frame in enumerate(config.frame_ids[1:]):
        expected = geometry.invert(world_from_cam[frame]) @ world_from_cam[0]
        assert torch.allclose(T[:, s], expected.expand(2, 4, 4), atol=1e-5), frame


def test_forward_shapes_and_residual_refinement():
    config = load_training_config(TINY, ["frame_ids=[0,-1,1]"])
    model = SelfSupervisedModel(config.model, config.frame_ids)
    sample = SyntheticClipDataset(2, H, W, config.frame_ids)
    batch = torch.utils.data.default_collate([sample[0], sample[1]])
    out = model(batch["images_aug"], batch["K"][:, 0], batch["inv_K"][:, 0])
    assert [tuple(d.shape) for d in out["disparities"]] == [(2, 1, H // 2**s, W // 2**s) for s in range(4)]
    assert out["semantic_logits"].shape == (2, 40, H, W)
    assert out["T_source_target"].shape == (2, 2, 4, 4)
    assert not torch.allclose(out["T_source_target"], out["T_initial"])  # the residual decoder contributes
    out = model(batch["images_aug"], batch["K"][:, 0], batch["inv_K"][:, 0], with_semantics=False)
    assert "semantic_logits" not in out


def test_short_overfit_lowers_the_loss(tmp_path):
    from training.trainer import Trainer

    # Measured (2 threads): total 0.387 -> 0.283 (x0.73), photometric 0.027 -> 0.013 (x0.48) after 20 steps.
    config = tiny_config(tmp_path, "data.options={num_samples: 2, seed: 0, step_m: 0.08}", "train.batch_size=2",
                         "train.epochs=100", "train.max_steps=20", "loss.semantic_epochs=100")
    trainer = Trainer(config)
    assert float(torch.tensor(1e-39) * 1.0) == 0.0  # CPU training flushes subnormals (they run 10-100x slower)
    rows: list[dict[str, float]] = []
    trainer._log = lambda terms, data_time, step_time: rows.append(terms)  # type: ignore[method-assign]
    trainer.fit()
    first = {k: sum(r[k] for r in rows[:3]) / 3 for k in ("total", "photometric")}
    last = {k: sum(r[k] for r in rows[-3:]) / 3 for k in ("total", "photometric")}
    assert len(rows) == 20
    assert last["total"] < 0.85 * first["total"], (first, last)
    assert last["photometric"] < 0.75 * first["photometric"], (first, last)


def _parameters(model, buffers: bool = True) -> dict[str, torch.Tensor]:
    """Trainable parameters (and BatchNorm statistics when ``buffers``), detached."""
    named = dict(model.named_parameters()) | (dict(model.named_buffers()) if buffers else {})
    return {k: v.detach().clone() for k, v in named.items()}


def test_resume_after_interruption_reproduces_the_uninterrupted_run(tmp_path):
    """Stop after 3 steps (mid-epoch), resume through the CLI to step 6: the learning-rate drop at epoch
    1, the semantic loss switching off after epoch 0, the data order and the noise all continue exactly."""
    from training.train import main
    from training.trainer import Trainer

    # 16 base channels: checkpoints of 51 MB instead of 367 MB in the temporary folder.
    common = ["data.options={num_samples: 4, seed: 0}", "train.batch_size=1", "train.epochs=3",
              "optim.milestones=[1]", "loss.semantic_epochs=1", "optim.lr=1e-3",
              "model.base_channels=16", "networks.pose_base_channels=16"]
    straight = Trainer(tiny_config(tmp_path / "straight", *common, "train.max_steps=6"))
    result = straight.fit()
    assert result.step == 6 and result.epoch == 1

    interrupted = tmp_path / "interrupted"
    args = ["--config", str(TINY), "--set", f"train.output_dir={interrupted}", "--set", "validation=null",
            "--set", "train.checkpoint_every_epochs=0", "--set", "train.progress_bar=false"]
    args += [item for override in common for item in ("--set", override)]
    assert main(args + ["--set", "train.max_steps=3"]) == 0
    assert latest_checkpoint(interrupted).name == "step_00000003.pt"
    assert main(args + ["--set", "train.max_steps=6", "--resume"]) == 0
    resumed = Trainer(tiny_config(interrupted, *common, "train.max_steps=6"), resume="last")
    assert resumed.step == 6

    expected, actual = _parameters(straight.model), _parameters(resumed.model)
    assert expected.keys() == actual.keys()
    mismatched = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert not mismatched, mismatched[:5]
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)

    # The checkpoint loads safely (weights_only) with its config beside it, and the runtime can build from it.
    path = latest_checkpoint(interrupted)
    checkpoint = load_checkpoint(path)
    assert checkpoint.extra["step"] == 6 and checkpoint.training_config["train"]["max_steps"] == 6
    assert load_training_config(path.with_suffix(".yaml")) == config_from_dict(checkpoint.training_config)
    net = build_runtime_model(checkpoint)
    assert torch.equal(net.state_dict()["encoder.conv1.weight"], straight.model.depth_net.encoder.conv1.weight)
    assert not list(path.parent.glob(".*.tmp"))  # no temporary files left behind


def test_max_minutes_stops_the_run_with_a_checkpoint(tmp_path, monkeypatch):
    """A wall-time budget (a GPU lease): the run stops at the first step past it and checkpoints there."""
    import time
    import types

    from training import trainer as trainer_module

    clock = iter(range(0, 10_000, 20))  # seconds: each reading 20 s after the last
    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(
        monotonic=lambda: float(next(clock)), perf_counter=time.perf_counter))
    config = tiny_config(tmp_path, "data.options={num_samples: 8, seed: 0}", "train.batch_size=1",
                         "train.epochs=2", "train.max_minutes=1")
    result = trainer_module.Trainer(config).fit()
    # start at 0 s; after steps 1 and 2 the clock reads 20 and 40 s, after step 3 it reads 60 s: stop
    assert result.step == 3 and result.epoch == 0
    assert latest_checkpoint(tmp_path).name == "step_00000003.pt"
    with pytest.raises(ValueError, match="max_minutes must be >= 0"):
        tiny_config(tmp_path, "train.max_minutes=-1")


def test_cli_rejects_unknown_config_keys(tmp_path, capsys):
    from training.train import main

    assert main(["--config", str(TINY), "--set", "optim.learning_rate=1"]) == 2
    assert "unknown key" in capsys.readouterr().err


class _PoisonedDataset(torch.utils.data.Dataset):
    """Synthetic clips whose listed samples carry NaN pixels."""

    def __init__(self, bad: set[int], size: int = 3) -> None:
        self.clips = SyntheticClipDataset(size, H, W, (0, -1, 1))
        self.bad = bad

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int):
        sample = self.clips[index]
        if index in self.bad:
            sample["images"][0, :, :4, :4] = float("nan")
        return sample


def test_non_finite_losses_are_skipped_then_stop_the_run(tmp_path, monkeypatch):
    from training import trainer as trainer_module

    config = tiny_config(tmp_path, "train.batch_size=1", "train.epochs=1", "train.max_nan_steps=2")
    monkeypatch.setattr(trainer_module, "make_dataset", lambda *args, **kwargs: _PoisonedDataset({1}))
    result = trainer_module.Trainer(config).fit()
    assert result.step == 3 and result.nan_steps == 1
    assert all(torch.isfinite(p).all() for p in result_parameters(tmp_path))

    monkeypatch.setattr(trainer_module, "make_dataset", lambda *args, **kwargs: _PoisonedDataset({0, 1, 2}))
    with pytest.raises(trainer_module.NonFiniteLossError, match="2 consecutive non-finite"):
        trainer_module.Trainer(tiny_config(tmp_path / "all_bad", "train.batch_size=1", "train.max_nan_steps=2")).fit()


def result_parameters(output_dir: Path) -> list[torch.Tensor]:
    return list(load_checkpoint(latest_checkpoint(output_dir)).state_dict.values())


def _ddp_worker(rank: int, world_size: int, port: int, output_dir: str, out: str, overrides: tuple[str, ...]) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from training.distributed import init_distributed, shutdown_distributed
    from training.trainer import Trainer

    info = init_distributed(force_cpu=True)
    try:
        config = tiny_config(Path(output_dir), "data.options={num_samples: 4, seed: 0}", "train.batch_size=1",
                             "train.epochs=1", "train.max_steps=2", "networks.channels_last=true", *overrides)
        trainer = Trainer(config, info)
        result = trainer.fit()
        # BatchNorm statistics are per rank between DDP's buffer broadcasts; parameters must agree.
        parameters = _parameters(trainer.model, buffers=False)
        torch.save({"parameters": parameters, "total": result.last_terms["total"]}, f"{out}/{rank}.pt")
    finally:
        shutdown_distributed()


@pytest.mark.parametrize("overrides", [
    # validation at the stop: rank 0 scores, every rank meets its barrier
    ("loss.semantic_epochs=0", "validation={data: {source: synthetic, options: {num_samples: 2, seed: 5}}}"),
    # poses from the data: the initial pose decoder gets no gradient, with semantics on throughout
    ("loss.semantic_epochs=1", "networks.pose_source=data", "networks.initial_depth=2.0"),
], ids=["pose_network", "data_poses"])
def test_ddp_with_two_cpu_processes_keeps_parameters_identical(tmp_path, overrides):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, str(tmp_path / "run"), str(tmp_path), overrides), nprocs=2)
    rank0, rank1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in range(2))
    assert rank0["total"] != rank1["total"]  # each rank trained on its own shard
    mismatched = [k for k in rank0["parameters"] if not torch.equal(rank0["parameters"][k], rank1["parameters"][k])]
    assert not mismatched, mismatched[:5]
    initial = SelfSupervisedModel(load_training_config(TINY).model, (0, -1, 1))
    trained = rank0["parameters"]["depth_net.encoder.conv1.weight"]
    assert not torch.equal(initial.depth_net.encoder.conv1.weight, trained)


def test_image_grids_for_tensorboard():
    from training.logging_utils import image_grids

    grids = image_grids(torch.rand(3, 3, H, W), torch.rand(3, 1, H, W), torch.rand(3, 1, H, W),
                        torch.randn(3, 40, H, W), max_images=2)
    assert set(grids) == {"target", "disparity", "mask", "semantics"}
    assert all(grid.shape == (2, H, W, 3) and grid.dtype.name == "uint8" for grid in grids.values())


def test_validation_runs_each_epoch_through_the_metrics_module(tmp_path):
    from training.trainer import Trainer

    config = load_training_config(TINY, [
        f"train.output_dir={tmp_path}", "train.progress_bar=false", "train.epochs=1", "train.batch_size=2",
        "data.options={num_samples: 2, seed: 0}", "validation.data.options={num_samples: 3, seed: 5}",
    ])
    result = Trainer(config).fit()
    assert result.validation["images"] == 3
    assert 0 < result.validation["abs_rel"] < 10 and 0 <= result.validation["delta1"] <= 1
    header, row = (tmp_path / "val_log.csv").read_text().splitlines()
    assert header.startswith("step,epoch,abs_rel") and row.startswith("1,1,")

    # A run stopped by max_steps mid-epoch validates its last checkpoint as well.
    stopped = load_training_config(TINY, [
        f"train.output_dir={tmp_path / 'stopped'}", "train.progress_bar=false", "train.epochs=2",
        "train.batch_size=1", "train.max_steps=3", "data.options={num_samples: 2, seed: 0}",
        "validation.data.options={num_samples: 3, seed: 5}", "model.base_channels=16", "networks.pose_base_channels=16",
    ])
    result = Trainer(stopped).fit()
    assert result.step == 3 and result.validation["images"] == 3
    rows = (tmp_path / "stopped" / "val_log.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:2] for row in rows] == [["2", "1"], ["3", "1"]]  # epoch 1's end, then the stop
    assert [row.split(",")[-1] for row in rows] == ["1.0", "1.5"]  # epochs_done: the stop is half into epoch 2


def test_init_checkpoint_starts_a_fine_tuning_run_from_trained_weights(tmp_path):
    from gam_depth_ros.checkpoint import CheckpointError
    from training.trainer import Trainer, build_model

    first = Trainer(tiny_config(tmp_path / "a", "train.max_steps=1", "data.options={num_samples: 2, seed: 0}")).fit()
    saved = load_checkpoint(first.checkpoint)
    model = build_model(tiny_config(tmp_path / "b", f"networks.init_checkpoint={first.checkpoint}"))
    for key, value in model.depth_net.state_dict().items():
        assert torch.equal(value, saved.state_dict[key]), key
    for key, value in model.pose_net.state_dict().items():
        assert torch.equal(value, saved.extra["pose"][key]), key
    with pytest.raises(CheckpointError, match="do not fit"):
        build_model(tiny_config(tmp_path / "c", f"networks.init_checkpoint={first.checkpoint}",
                                "model.base_channels=32"))


def test_train_step_marks_its_phases_for_the_throughput_benchmark(tmp_path):
    from training.trainer import Trainer

    trainer = Trainer(tiny_config(tmp_path, "data.options={num_samples: 2, seed: 0}", "train.batch_size=2"))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    phases: list[str] = []
    terms, _, batch = trainer._train_step(trainer.model, next(iter(trainer.loader)), True, phases.append)
    assert phases == ["data", "forward", "backward", "optimiser"]  # what bench/training_throughput.py times
    assert terms is not None and float(terms["total"]) > 0 and batch["images_aug"].shape[0] == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))  # the step stepped
