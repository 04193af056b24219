"""Leaky integrate-and-fire neuron with a fixed-point membrane."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from model.fixed_point import quantize_state
from model.spec import ModelSpec
from model.surrogate import spike


class LIF(nn.Module):
    """One timestep of a layer of leaky integrate-and-fire neurons.

        V[t]  = Q(beta * V'[t-1] + I[t])            Q: membrane grid (identity for a float state)
        S[t]  = H(V[t] - theta)                     surrogate gradient in the backward pass
        V'[t] = V[t] - theta * S[t]                 reset="subtract"
        V'[t] = V[t] * (1 - S[t])                   reset="zero"

    The threshold is a multiple of the grid step, so the reset keeps V' on the grid and Q is
    needed once per step. `forward(current, membrane)` returns (spikes S[t], membrane V'[t]);
    a membrane of None means V'[0] = 0.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.beta = spec.beta
        self.threshold = spec.threshold
        self.reset = spec.reset
        self.surrogate = spec.surrogate
        self.slope = spec.surrogate_slope
        self.state_bits = spec.state_bits if spec.quantized_state else None
        self.state_step = spec.state_step

    def forward(self, current: Tensor, membrane: Tensor | None) -> tuple[Tensor, Tensor]:
        if membrane is None:
            membrane = torch.zeros_like(current)
        membrane = self.beta * membrane + current
        if self.state_bits is not None:
            membrane = quantize_state(membrane, self.state_step, self.state_bits)
        spikes = spike(membrane - self.threshold, self.surrogate, self.slope)
        if self.reset == "subtract":
            membrane = membrane - self.threshold * spikes
        else:
            membrane = membrane * (1.0 - spikes)
        return spikes, membrane

    def extra_repr(self) -> str:
        state = f"{self.state_bits}-bit step {self.state_step}" if self.state_bits else "float"
        return (f"beta={self.beta}, threshold={self.threshold}, reset={self.reset}, "
                f"state={state}, surrogate={self.surrogate}({self.slope})")
