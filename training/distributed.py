"""Process-group setup for ``torchrun`` (DistributedDataParallel), and the single-process fallback.

``torchrun --nproc_per_node N -m training.train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; the backend is NCCL on CUDA and gloo on CPU. Multi-node runs use torchrun's
``--nnodes``/``--rdzv-*`` options unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(force_cpu: bool = False) -> DistInfo:
    """Join the process group described by the environment (if any) and pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and not force_cpu
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, device)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_true(flag: bool, info: DistInfo) -> bool:
    """Whether ``flag`` holds on every rank (one all-reduce; local value without DDP)."""
    if not info.distributed:
        return flag
    value = torch.tensor([0 if flag else 1], device=info.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return int(value.item()) == 0


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()
