"""One way to run a network step by step: T input frames, the state fed back, the readout.

    frames   = the pixels at every step (direct encoding) or T Bernoulli spike frames (rate)
    (out[t], state[t]) = step(frames[t], state[t-1]),   t = 1..T,   state[0] given (zeros)
    logits   = sum_t out[t] / T  (readout "mean")   or   sum_t out[t]  (readout "sum")

`SpikingCNN.forward` computes the same layer by layer. Every step-by-step engine (the PyTorch
step, the exported QONNX graph, onnxruntime, the FINN hardware graph) runs through
`run_timesteps` on frames from `input_frames` (export.lockstep: one way to run and compare
any engine, the RTL and C simulations and sinabs included, on the same frames).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
from torch import Tensor

from model.quantizers import PIXEL_FULL_SCALE
from model.spec import ModelSpec

FRAME_SEED = 0  # seed of the rate-encoded frames every check draws, so all engines see one input
State = TypeVar("State")
Out = Any  # a Tensor or numpy array of one step's outputs, or anything with + and /


def rate_frames(pixels: Tensor, timesteps: int, generator: torch.Generator | None = None
                ) -> Tensor:
    """Rate encoding: T Bernoulli spike frames [T, B, ...], P(spike) = p / 255 for pixel p."""
    probability = pixels / PIXEL_FULL_SCALE
    return torch.bernoulli(probability.expand(timesteps, *pixels.shape), generator=generator)


def input_frames(spec: ModelSpec, pixels: Tensor, generator: torch.Generator | None = None
                 ) -> Tensor:
    """[T, B, C, H, W]: the pixels at every step (direct) or their rate-encoded spike frames."""
    if spec.encoding == "direct":
        return pixels.expand(spec.timesteps, *pixels.shape)
    return rate_frames(pixels, spec.timesteps, generator)


def read_out(total: Out, spec: ModelSpec) -> Out:
    """The logits from the sum of the T steps' outputs: their mean or the sum itself."""
    return total / spec.timesteps if spec.readout == "mean" else total


def run_timesteps(step: Callable[[Any, State], tuple[Out, State]], frames: Iterable,
                  state: State, spec: ModelSpec) -> tuple[Out, State]:
    """Feed every frame to `step` with the state fed back; (logits read out, final state)."""
    total = None
    for frame in frames:
        out, state = step(frame, state)
        total = out if total is None else total + out
    return read_out(total, spec), state
