"""Reproducible, resumable data order: which sample each step sees, and with which random seed.

* :class:`ResumableSampler` shards and shuffles exactly like ``DistributedSampler`` (it is one),
  can start part-way through an epoch (``--resume`` after an interruption), and hands every index
  out with a per-sample seed derived from (seed, epoch, index).
* :class:`SeededDataset` seeds ``random``, ``numpy`` and torch's CPU generator with that seed before
  loading the sample, so augmentation is the same whatever the worker count or resume point. In
  the main process (``num_workers=0``) the generators are restored afterwards, so data loading
  never shifts the training loop's random stream.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, get_worker_info


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed that depends only on (seed, epoch, index)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


LOG = logging.getLogger("training.data")


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` yielding ``(index, seed)`` pairs, optionally skipping the first items.

    Parameters
    ----------
    dataset:
        The (unwrapped) dataset; only its length is used.
    num_replicas, rank:
        Process count and this process's rank (1 and 0 without DDP).
    shuffle:
        Reshuffle every epoch (seeded by ``seed + epoch``).
    seed:
        Base seed of the order and of the per-sample seeds.
    """

    def __init__(self, dataset, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.skip = 0

    def set_position(self, epoch: int, skip: int = 0) -> None:
        """Start epoch ``epoch`` after its first ``skip`` items (of this rank)."""
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())[self.skip:]
        return iter([(index, sample_seed(self.seed, self.epoch, index)) for index in indices])

    def __len__(self) -> int:
        return max(self.num_samples - self.skip, 0)


class SeededDataset(Dataset):
    """Wraps a map-style dataset so that ``dataset[(index, seed)]`` loads ``index`` under ``seed``.

    A sample whose files cannot be read (:class:`training.data.common.DataError`, which names the
    file) is skipped with a warning and the next index is loaded instead, unless ``strict``: then
    the error stops training. At most ``MAX_SKIPS`` samples in a row are skipped.
    """

    MAX_SKIPS = 16

    def __init__(self, dataset: Dataset, strict: bool = False) -> None:
        self.dataset = dataset
        self.strict = strict

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        in_main_process = get_worker_info() is None
        if in_main_process:
            saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        random.seed(seed)
        np.random.seed(seed)
        torch.default_generator.manual_seed(seed)  # CPU only: never touches CUDA generators
        try:
            return self._load(index)
        finally:
            if in_main_process:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])

    def _load(self, index: int):
        from training.data.common import DataError

        for attempt in range(self.MAX_SKIPS + 1):
            try:
                return self.dataset[(index + attempt) % len(self)]
            except DataError as error:
                if self.strict or attempt == self.MAX_SKIPS:
                    raise
                LOG.warning("skipping an unreadable sample (data.strict: false): %s", error)
        raise AssertionError("unreachable")
