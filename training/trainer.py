"""The training loop. It only orchestrates: data (``training.data``), networks (``training.model``),
losses (``training.objective``), checkpoints (``training.checkpointing``), logs
(``training.logging_utils``) and validation (``training.validation``) live in their own modules.

One ``step`` is one batch taken from the loader (a skipped non-finite batch counts too), so a
checkpoint's (epoch, epoch_step) says exactly where in the data order a resumed run continues.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from training import losses
from training.checkpointing import (
    init_from_checkpoint,
    load_training_checkpoint,
    resume_latest,
    save_training_checkpoint,
)
from training.config import DataConfig, TrainingConfig, save_training_config
from training.data.common import DataError
from training.distributed import DistInfo, all_true, barrier
from training.logging_utils import RunLogger, image_grids, progress
from training.mask_calibration import resolve_mask
from training.model import SelfSupervisedModel
from training.objective import compute_objective
from training.sampling import ResumableSampler, SeededDataset

LOG = logging.getLogger("training")


class NonFiniteLossError(RuntimeError):
    """Too many consecutive non-finite losses: training stops instead of wasting the run."""


@dataclass
class FitResult:
    """Where a run ended."""

    step: int
    epoch: int
    nan_steps: int
    last_terms: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    validation: dict[str, float] = field(default_factory=dict)


def make_dataset(data: DataConfig, config: TrainingConfig, train: bool) -> Dataset:
    """Dataset of a data section: ``synthetic`` clips here, other sources from ``training.data``."""
    frame_ids = config.frame_ids if train else (0,)
    height, width = config.model.height, config.model.width
    if data.source == "synthetic":
        from training.data.synthetic_clip import SyntheticClipDataset

        return SyntheticClipDataset.from_options(data.options, height, width, frame_ids)
    from training.data import build_dataset  # the real sources (NYUv2 raw, folders, rosbags, eval sets)

    return build_dataset(data, frame_ids=frame_ids, height=height, width=width, train=train)


def build_model(config: TrainingConfig) -> SelfSupervisedModel:
    """The networks of a run, with ImageNet encoders when the config names weight files."""
    net = config.networks
    model = SelfSupervisedModel(
        config.model, config.frame_ids, net.depth_scales, net.residual_pose, net.pose_scale, net.pose_base_channels,
        net.pose_source, net.initial_depth,
    )
    if net.depth_imagenet_weights:
        from gam_depth_ros.networks.resnet import load_imagenet_weights

        load_imagenet_weights(model.depth_net.encoder, net.depth_imagenet_weights)
    if net.pose_imagenet_weights:
        model.pose_net.load_imagenet(net.pose_imagenet_weights)
    if net.init_checkpoint:
        init_from_checkpoint(model, net.init_checkpoint)
    return model


class Trainer:
    """Builds everything a run needs from its config, then :meth:`fit` trains.

    Parameters
    ----------
    config:
        The resolved, frozen config.
    info:
        Rank, world size and device (:func:`training.distributed.init_distributed`).
    resume:
        None, "last" (the newest checkpoint in ``output_dir``) or a checkpoint path.
    """

    def __init__(self, config: TrainingConfig, info: DistInfo | None = None, resume: str | None = None) -> None:
        self.config = config
        self.info = info or DistInfo()
        t = config.train
        device = self.info.device
        if t.cpu_threads and device.type == "cpu":
            torch.set_num_threads(t.cpu_threads)
        if device.type == "cpu":
            # Subnormal floats (saturated sigmoids' gradients, tiny Adam moments) run 10-100x slower on
            # x86. A CPU run once slowed 13x for minutes (cause not isolated; contention is the other
            # candidate); flushing them to zero is free and changes no result we can see.
            torch.set_flush_denormal(True)
        torch.manual_seed(t.seed)  # identical initial weights on every rank
        self.model = build_model(config).to(device)
        if config.networks.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.optim.lr, betas=config.optim.betas,
                                          weight_decay=config.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.optim.milestones),
                                                              config.optim.gamma)
        self.amp_dtype = _autocast_dtype(device, t.amp, t.cpu_amp_bf16)
        self.photometric = torch.compile(losses.photometric_error) if t.compile_loss else losses.photometric_error
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.epoch = self.epoch_step = self.step = self.nan_steps = self._nan_streak = 0
        _seed_all(t.seed + 1_000_003 * self.info.rank)
        if resume is not None:
            self._resume(resume)
        self.train_set = make_dataset(config.data, config, train=True)
        # the gradient-aware mask as used (gamma2 set from the data when loss.mask.gamma2_from_quantile > 0)
        self.mask = resolve_mask(config.loss.mask, self.train_set, t.seed)
        self.sampler = ResumableSampler(self.train_set, self.info.world_size, self.info.rank, True, t.seed)
        self.loader = DataLoader(
            SeededDataset(self.train_set, strict=config.data.strict), batch_size=t.batch_size, sampler=self.sampler,
            num_workers=t.num_workers,
            drop_last=True, pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(t.seed),
        )
        self.steps_per_epoch = self.sampler.num_samples // t.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(self.train_set)} training samples: less than one batch of {t.batch_size} per rank")
        self.val_loader = self._validation_loader()
        self.logger = RunLogger(t.output_dir, enabled=self.info.is_main)

    def fit(self) -> FitResult:
        """Train until ``epochs`` (or ``max_steps``, ``max_minutes``) and return where it ended."""
        t = self.config.train
        model = self._wrapped()
        self._fit_start = time.monotonic()
        result = FitResult(self.step, self.epoch, self.nan_steps)
        if self.info.is_main:
            save_training_config(self.config, Path(t.output_dir) / "config.yaml")
            LOG.info("training on %s (world size %d), %d steps/epoch, from epoch %d step %d",
                     self.info.device, self.info.world_size, self.steps_per_epoch, self.epoch, self.step)
        try:
            while self.epoch < t.epochs:
                stopped = self._run_epoch(model, result)
                val = self.config.validation
                validates = val is not None and val.every_epochs > 0  # on every rank: _validate ends in a barrier
                if stopped:  # max_steps / max_minutes: the last checkpoint gets its validation too
                    if validates:
                        result.validation = self._validate()
                    break
                self.scheduler.step()
                self.epoch, self.epoch_step = self.epoch + 1, 0
                last = self.epoch == t.epochs
                if last or (t.checkpoint_every_epochs and self.epoch % t.checkpoint_every_epochs == 0):
                    result.checkpoint = self._save()
                if validates and (last or self.epoch % val.every_epochs == 0):
                    result.validation = self._validate()
        finally:
            self.logger.close()
        result.step, result.epoch, result.nan_steps = self.step, self.epoch, self.nan_steps
        return result

    def _run_epoch(self, model, result: FitResult) -> bool:
        """Train the rest of the current epoch; True when ``max_steps`` or ``max_minutes`` stopped the run."""
        t = self.config.train
        self.sampler.set_position(self.epoch, self.epoch_step * t.batch_size)
        semantic = self.epoch < self.config.loss.semantic_epochs
        model.train()
        tick = time.perf_counter()
        remaining = self.steps_per_epoch - self.epoch_step
        for batch in progress(self.loader, remaining, t.progress_bar and self.info.is_main, f"epoch {self.epoch}"):
            data_time = time.perf_counter() - tick
            terms, outputs, batch = self._train_step(model, batch, semantic)
            self.step += 1
            self.epoch_step += 1
            step_time = time.perf_counter() - tick
            if terms is not None:
                result.last_terms = {k: float(v) for k, v in terms.items()}
                if t.log_every_steps and self.step % t.log_every_steps == 0:
                    self._log(result.last_terms, data_time, step_time)
                if t.image_every_steps and self.step % t.image_every_steps == 0:
                    self._log_images(batch, outputs)
            if t.checkpoint_every_steps and self.step % t.checkpoint_every_steps == 0:
                result.checkpoint = self._save()
            if t.max_steps and self.step >= t.max_steps:
                result.checkpoint = self._save()
                LOG.info("max_steps %d reached", t.max_steps)
                return True
            if t.max_minutes and not all_true(time.monotonic() - self._fit_start < 60 * t.max_minutes, self.info):
                result.checkpoint = self._save()  # every rank stops at the same step (one all-reduce)
                LOG.info("max_minutes %g reached after step %d", t.max_minutes, self.step)
                return True
            tick = time.perf_counter()
        return False

    def _train_step(self, model, batch: dict, semantic: bool, mark=None):
        """One optimiser step on ``batch``: (terms or None when skipped as non-finite, outputs, device batch).

        ``mark(phase)``, when given, is called as each phase ends - ``"data"`` (batch on the device),
        ``"forward"`` (networks and objective), ``"backward"``, ``"optimiser"`` - so
        ``bench/training_throughput.py`` times this very step rather than a copy of it.
        """
        mark = mark or (lambda phase: None)
        device = self.info.device
        use_poses = self.config.networks.pose_source == "data"
        if use_poses and not bool(batch["has_poses"].all()):  # checked on the CPU batch: no device sync
            raise DataError(f"networks.pose_source is 'data' but the {self.config.data.source} data at "
                            f"{self.config.data.path} gave samples without poses (a folder needs poses.txt)")
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        mark("data")
        poses, found = batch["poses"][:, 1:] if use_poses else None, None
        if self.config.networks.pose_source == "two_view_rotation":
            poses, found = batch["prior_poses"][:, 1:], batch["has_prior_pose"][:, 1:]
        with _autocast(device, self.amp_dtype):
            outputs = model(batch["images_aug"], batch["K"][:, 0], batch["inv_K"][:, 0], with_semantics=semantic,
                            poses=poses, pose_found=found)
        with torch.autocast(device.type, enabled=False):
            prior = self.config.loss.pose_prior
            prior_active = prior.weight > 0 and (prior.steps == 0 or self.step < prior.steps)
            total, terms = compute_objective(batch, outputs, self.config, semantic, self.photometric, self.mask,
                                             pose_prior_active=prior_active)
        self.optimizer.zero_grad(set_to_none=True)
        if not all_true(bool(torch.isfinite(total.detach())), self.info):
            self._skip_non_finite(total, terms)
            return None, outputs, batch
        mark("forward")
        self._nan_streak = 0
        self.scaler.scale(total).backward()
        mark("backward")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        mark("optimiser")
        return {k: v.detach() for k, v in terms.items()}, outputs, batch

    def _skip_non_finite(self, total: torch.Tensor, terms: dict) -> None:
        if self.info.distributed:
            total.backward()  # keep DDP's gradient reduction in step on every rank; grads are dropped
            self.optimizer.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():
            self.scaler.update(self.scaler.get_scale() * 0.5)
        self.nan_steps += 1
        self._nan_streak += 1
        values = {k: float(v.detach()) for k, v in terms.items()}
        LOG.warning("step %d: non-finite loss, batch skipped (%d in a row): %s", self.step, self._nan_streak, values)
        if self._nan_streak >= self.config.train.max_nan_steps:
            raise NonFiniteLossError(
                f"{self._nan_streak} consecutive non-finite losses at step {self.step} (epoch {self.epoch}); stopping. "
                f"Last terms: {values}. Lower optim.lr, check the data for NaN/inf pixels or bad intrinsics, "
                f"or resume from an earlier checkpoint in {self.config.train.output_dir}/checkpoints."
            )

    def _save(self) -> Path | None:
        path = None
        if self.info.is_main:
            path = save_training_checkpoint(
                self.config.train.output_dir, self.config, self.model, self.optimizer, self.scheduler, self.scaler,
                epoch=self.epoch, epoch_step=self.epoch_step, step=self.step, nan_steps=self.nan_steps,
                keep=self.config.train.keep_checkpoints,
            )
            LOG.info("checkpoint %s", path)
        barrier(self.info)
        return path

    def _resume(self, resume: str) -> None:
        if resume == "last":  # the newest readable one: a corrupt newest checkpoint is skipped with a warning
            state = resume_latest(self.config.train.output_dir, self.model, self.optimizer, self.scheduler,
                                  self.scaler)
        else:
            state = load_training_checkpoint(Path(resume), self.model, self.optimizer, self.scheduler, self.scaler)
        path = state.path
        if self.info.rank > 0:  # the checkpoint holds rank 0's generators; other ranks derive theirs
            _seed_all(self.config.train.seed + 1_000_003 * self.info.rank + state.step)
        self.epoch, self.epoch_step, self.step = state.epoch, state.epoch_step, state.step
        self.nan_steps = state.nan_steps
        LOG.info("resumed from %s (epoch %d, step %d)", path, self.epoch, self.step)

    def _wrapped(self):
        if not self.info.distributed:
            return self.model
        device_ids = [self.info.device.index] if self.info.device.type == "cuda" else None
        # The semantic decoder stops receiving gradients after semantic_epochs; with poses from the
        # data the initial pose decoder never gets any.
        find_unused = (self.config.loss.semantic_epochs < self.config.train.epochs
                       or self.config.networks.pose_source == "data")
        return DistributedDataParallel(self.model, device_ids=device_ids, find_unused_parameters=find_unused)

    def _validation_loader(self) -> DataLoader | None:
        val = self.config.validation
        if val is None or not val.every_epochs or not self.info.is_main:
            return None
        dataset = make_dataset(val.data, self.config, train=False)
        sampler = ResumableSampler(dataset, 1, 0, shuffle=False, seed=self.config.train.seed)
        return DataLoader(SeededDataset(dataset), batch_size=self.config.train.batch_size, sampler=sampler,
                          num_workers=self.config.train.num_workers, generator=torch.Generator().manual_seed(0))

    def _validate(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.info.is_main and self.val_loader is not None:
            from training.validation import validate

            metrics = validate(self.model, self.val_loader, self.config, self.info.device)
            if metrics:
                # ``epoch`` counts finished epochs; a run stopped mid-epoch adds the fraction it got through.
                epochs_done = self.epoch + self.epoch_step / self.steps_per_epoch
                self.logger.scalars("val", self.step, self.epoch, metrics | {"epochs_done": epochs_done})
                where = (f"after epoch {self.epoch}" if self.epoch_step == 0 else
                         f"at step {self.step} ({self.epoch_step} of {self.steps_per_epoch} steps into epoch "
                         f"{self.epoch + 1})")
                LOG.info("validation %s: %s", where, _fmt(metrics))
        barrier(self.info)
        return metrics

    def _log(self, terms: dict[str, float], data_time: float, step_time: float) -> None:
        images = self.config.train.batch_size * self.info.world_size
        values = dict(terms) | {"lr": self.optimizer.param_groups[0]["lr"], "images_per_s": images / step_time,
                                "data_time_s": data_time, "nan_steps": float(self.nan_steps)}
        if self.config.loss.mask.enabled and self.config.loss.mask.gamma2_from_quantile > 0:
            values["mask_gamma2"] = self.mask.gamma2  # set from the data at start
        self.logger.scalars("train", self.step, self.epoch, values)
        if self.info.is_main:
            LOG.info("epoch %d step %d %s", self.epoch, self.step, _fmt(values))

    def _log_images(self, batch: dict, outputs: dict) -> None:
        if not self.info.is_main:
            return
        m = self.mask
        mask = losses.gradient_aware_mask(batch["gradient"].float(), m.beta, m.gamma1, m.gamma2) if m.enabled else None
        self.logger.images(self.step, image_grids(batch["images"][:, 0], outputs["disparities"][0], mask,
                                                  outputs.get("semantic_logits")))


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _autocast_dtype(device: torch.device, amp: bool, cpu_bf16: bool) -> torch.dtype | None:
    if device.type == "cuda" and amp:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_bf16:
        return torch.bfloat16
    return None


def _seed_all(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in values.items())
