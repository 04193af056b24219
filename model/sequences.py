"""Storage for sequences [T, ...] of per-timestep tensors (shared by the LIF kernels)."""
from __future__ import annotations

import torch
from torch import Tensor


def empty_steps(sequence: Tensor) -> Tensor:
    """Uninitialised storage shaped like `sequence` [T, ...] whose every step has the memory
    layout of one step (channels-last stays channels-last, also for a sequence that is one
    step expanded over T)."""
    step = torch.empty_like(sequence[0])
    return torch.empty_strided(sequence.shape, (step.numel(), *step.stride()),
                               dtype=step.dtype, device=step.device)
