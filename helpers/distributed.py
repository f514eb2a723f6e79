"""Training on several processes with DDP (part of the training engine).

Hand-written infrastructure above the lessons. `torchrun --nproc_per_node N -m helpers train ...` starts N
processes and tells each its RANK, LOCAL_RANK and WORLD_SIZE; this module joins them into one job:

- `setup_distributed` joins the process group (nccl on CUDA, gloo on a CPU) or returns a single process;
- `rank_batch` gives each process its slice of one global batch, so N processes see exactly the examples
  one process would;
- `gather_rng_states` collects every process's random states for the checkpoint;
- `StopRequest` turns Ctrl-C into a flag that all processes check together, so they stop at the same step.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from helpers.data import get_batch


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 when there is none)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_type: str) -> Distributed:
    """Join the process group that torchrun describes in RANK, WORLD_SIZE and LOCAL_RANK (nccl on CUDA,
    gloo on CPU); without those variables, a single process."""
    if "RANK" not in os.environ:
        return Distributed()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)  # else every process would put its work (and nccl's) on GPU 0
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), local_rank, dist.get_world_size())


def rank_batch(data, block_size: int, batch_size: int, ddp: Distributed, device: str,
               generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """This process's slice of a global batch. Every process draws the same global batch from an identically
    seeded generator and keeps its own batch_size // world_size rows, so a run on k processes sees exactly
    the examples that one process sees with the same batch_size."""
    x, y = get_batch(data, block_size, batch_size, generator=generator)
    rows = slice(ddp.rank * batch_size // ddp.world_size, (ddp.rank + 1) * batch_size // ddp.world_size)
    x, y = x[rows], y[rows]
    if torch.device(device).type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


def mean_over_processes(values: Tensor, ddp: Distributed) -> Tensor:
    """The mean of a tensor over all processes (an all-reduce: every process must call it)."""
    if ddp.world_size > 1:
        dist.all_reduce(values)
        values /= ddp.world_size
    return values


def gather_rng_states(rng: dict, ddp: Distributed) -> list[dict]:
    """Every process's random states, in rank order (a collective: every process must call it). Each process
    draws its own dropout masks, so a resumed run must give each its own states back."""
    if ddp.world_size == 1:
        return [rng]
    states = [None] * ddp.world_size
    dist.all_gather_object(states, rng)
    return states


class StopRequest:
    """Under DDP, Ctrl-C (SIGINT) or SIGTERM only sets a flag instead of raising KeyboardInterrupt at once.

    A process interrupted in the middle of a collective would leave the others waiting in it forever. The
    loop asks `requested()` at each log step, all processes together, and they stop at the same step."""

    def __init__(self, ddp: Distributed):
        self.ddp, self.flag, self.previous = ddp, False, {}
        if ddp.world_size > 1:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.flag = True

    def requested(self, device: str) -> bool:
        """Whether any process was asked to stop (a collective under DDP)."""
        if self.ddp.world_size == 1:
            return False
        flag = torch.tensor([float(self.flag)], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
