"""Leaky integrate-and-fire neurons with a fixed-point membrane, run over all timesteps at once."""
from __future__ import annotations

import importlib.util
import os
from functools import cache

import torch
from torch import Tensor, nn

from model.fixed_point import quantize_state, quantize_state_
from model.sequences import empty_steps
from model.spec import ModelSpec
from model.surrogate import SURROGATES, spike


class LIF(nn.Module):
    """A layer of leaky integrate-and-fire neurons, for a sequence of T input currents.

        V[t]  = Q(beta * V'[t-1] + I[t])            Q: membrane grid (identity for a float state)
        S[t]  = H(V[t] - theta)                     surrogate gradient in the backward pass
        V'[t] = V[t] - theta * S[t]                 reset="subtract"
        V'[t] = V[t] * (1 - S[t])                   reset="zero"

    The threshold is a multiple of the grid step, so the reset keeps V' on the grid and Q is
    needed once per step. `forward(currents [T, B, ...], membrane V'[0] or None for 0)` returns
    (spikes S[1..T], membrane V'[T]); `forward(current [B, ...], steps=T)` holds one current for
    T steps (direct encoding) and sums its gradient over time inside the kernel.

    `step` is the definition: one timestep in differentiable operations (what the exported
    graph holds). `forward` runs the same arithmetic, operation for operation, as a kernel that
    writes into preallocated [T, ...] tensors; for training it is one autograd node
    (`LIFSequence`) with a hand-written backward pass through time.
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

    def forward(self, currents: Tensor, membrane: Tensor | None = None,
                steps: int | None = None) -> tuple[Tensor, Tensor]:
        if membrane is None:
            membrane = torch.zeros_like(currents if steps else currents[0])
        if torch.is_grad_enabled() and (currents.requires_grad or membrane.requires_grad):
            return LIFSequence.apply(currents, membrane, self, steps)
        spikes, _, membrane = self.integrate(held(currents, steps), membrane)
        return spikes, membrane

    def step(self, current: Tensor, membrane: Tensor | None) -> tuple[Tensor, Tensor]:
        """One timestep in differentiable operations: (spikes S[t], reset membrane V'[t])."""
        if membrane is None:
            membrane = torch.zeros_like(current)
        charged = self.beta * membrane + current
        if self.state_bits is not None:
            charged = quantize_state(charged, self.state_step, self.state_bits)
        spikes = spike(charged - self.threshold, self.surrogate, self.slope)
        if self.reset == "subtract":
            return spikes, charged - self.threshold * spikes
        return spikes, charged * (1.0 - spikes)

    @torch.no_grad()
    def integrate(self, currents: Tensor, membrane: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`step` T times, without autograd: (spikes, charged membranes V[1..T], V'[T])."""
        if use_triton(currents):
            from model import lif_triton
            return lif_triton.integrate(self, currents, membrane)
        spikes, charged = empty_steps(currents), empty_steps(currents)
        final = torch.empty_like(membrane)
        for b in cache_blocks(currents):
            final[b] = self._integrate_block(currents[:, b], membrane[b], spikes[:, b],
                                             charged[:, b])
        return spikes, charged, final

    def _integrate_block(self, currents: Tensor, membrane: Tensor, spikes: Tensor,
                         charged: Tensor) -> Tensor:
        for t, current in enumerate(currents):
            v = torch.mul(membrane, self.beta, out=charged[t]).add_(current)
            if self.state_bits is not None:
                quantize_state_(v, self.state_step, self.state_bits)
            s = torch.ge(v, self.threshold, out=spikes[t])  # H(V - theta), in {0., 1.}
            if self.reset == "subtract":
                membrane = torch.sub(v, s, alpha=self.threshold)  # theta * S is exact
            else:
                membrane = v * (1.0 - s)
        return membrane

    def extra_repr(self) -> str:
        state = f"{self.state_bits}-bit step {self.state_step}" if self.state_bits else "float"
        return (f"beta={self.beta}, threshold={self.threshold}, reset={self.reset}, "
                f"state={state}, surrogate={self.surrogate}({self.slope})")


class LIFSequence(torch.autograd.Function):
    """`LIF.integrate` as one autograd node; saves only the charged membranes V[1..T].

    Backward, from t = T down to 1, with g' = dL/dV'[t] (given for t = T, then carried back),
    the chain rule through `LIF.step`:
        sigma = surrogate'(V[t] - theta),  S = H(V[t] - theta)
        subtract: gS = dL/dS[t] - theta g'          dL/dV[t] = g' + gS sigma
        zero:     gS = dL/dS[t] - V[t] g'           dL/dV[t] = g' (1 - S) + gS sigma
        dL/dI[t] = dL/dV[t]  (Q is straight-through),   dL/dV'[t-1] = beta dL/dV[t]
    """

    @staticmethod
    def forward(ctx, currents: Tensor, membrane: Tensor, lif: LIF,
                steps: int | None) -> tuple[Tensor, Tensor]:
        spikes, charged, membrane = lif.integrate(held(currents, steps), membrane)
        ctx.save_for_backward(charged)
        ctx.lif, ctx.held = lif, steps is not None
        return spikes, membrane

    @staticmethod
    def backward(ctx, grad_spikes: Tensor, grad_membrane: Tensor):
        (charged,) = ctx.saved_tensors
        if use_triton(charged):
            from model import lif_triton
            return (*lif_triton.backward(ctx.lif, charged, grad_spikes, grad_membrane, ctx.held),
                    None, None)
        grad_currents = torch.zeros_like(charged[0]) if ctx.held else empty_steps(charged)
        grad_initial = torch.empty_like(grad_membrane)
        for b in cache_blocks(charged):
            block = grad_currents[b] if ctx.held else grad_currents[:, b]
            grad_initial[b] = _backward_block(ctx.lif, charged[:, b], grad_spikes[:, b],
                                              grad_membrane[b], block, ctx.held)
        return grad_currents, grad_initial, None, None


KERNEL = os.environ.get("QSNN_LIF_KERNEL", "auto")  # "triton": force model.lif_triton


def use_triton(sequence: Tensor) -> bool:
    """Run the Triton kernels (model.lif_triton) for a float32 sequence on CUDA when triton is
    installed, or always when KERNEL is "triton" (on a CPU: under TRITON_INTERPRET=1)."""
    return KERNEL == "triton" or (sequence.is_cuda and sequence.dtype == torch.float32
                                  and _triton_installed())


@cache
def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def held(currents: Tensor, steps: int | None) -> Tensor:
    """The [T, B, ...] sequence: `currents` itself, or one current repeated `steps` times."""
    return currents if steps is None else currents.expand(steps, *currents.shape)


def _backward_block(lif: LIF, charged: Tensor, grad_spikes: Tensor, carried: Tensor,
                    grad_currents: Tensor, held_current: bool) -> Tensor:
    """One cache block, t = T..1; writes dL/dI[t] into grad_currents [T, b, ...], or adds
    it up over t in grad_currents [b, ...] for a held current."""
    surrogate = SURROGATES[lif.surrogate]
    for t in range(len(charged) - 1, -1, -1):
        x = charged[t] - lif.threshold
        sigma = surrogate(x, lif.slope)
        if lif.reset == "subtract":
            grad_spike = torch.sub(grad_spikes[t], carried, alpha=lif.threshold)
            kept = carried
        else:
            grad_spike = grad_spikes[t] - charged[t] * carried
            kept = carried * (x < 0)
        if held_current:
            grad = torch.addcmul(kept, grad_spike, sigma)
            grad_currents.add_(grad)
        else:
            grad = torch.addcmul(kept, grad_spike, sigma, out=grad_currents[t])
        carried = grad * lif.beta
    return carried


CACHE_BLOCK_BYTES = 1024 * 1024  # per-step working set of one block on a CPU (L2 here: 1 MiB/core)


def cache_blocks(sequence: Tensor) -> list[slice]:
    """Batch slices of a [T, B, ...] sequence for running T steps block by block: on a CPU a
    block's per-step tensors stay in cache across the elementwise passes of a step; on a GPU
    one block is the whole batch."""
    batch = sequence.shape[1]
    if sequence.device.type != "cpu":
        return [slice(0, batch)]
    size = max(1, CACHE_BLOCK_BYTES // (sequence[0, 0].numel() * sequence.element_size()))
    return [slice(b, min(b + size, batch)) for b in range(0, batch, size)]
