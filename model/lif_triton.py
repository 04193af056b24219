"""`LIF.integrate` and `LIFSequence.backward` as two Triton kernels, one pass over T each.

Each program owns BLOCK neurons and loops over the timesteps with the membrane in registers,
so a sequence costs one read of the currents and one write of the spikes and charged membranes
(the torch path runs several elementwise kernels per step, each a round trip to memory).
The contract is model.lif's, on [T, N] rows:

    forward, t = 1..T:  V[t] = Q(beta V'[t-1] + I[t]),  S[t] = [V[t] >= theta],
                        V'[t] = V[t] - theta S[t] (subtract)  or  V[t] (1 - S[t]) (zero)
    backward, t = T..1: `LIFSequence`'s equations; dL/dI[t] per step, or summed over t for a
                        held current; returns dL/dV'[0]

with the operations of `LIF._integrate_block` and `quantize_state_` in the same order, so the
spikes and membranes are bit-identical to the torch path (tested under Triton's interpreter).

Floating-point contraction: Triton's NVIDIA backend fuses a*b + c into one FMA by default
(`enable_fp_fusion=True`: LLVM contraction and ptxas --fmad; triton-lang/triton PR #2495 "add
option to disable fp mul/add fusion", triton/backends/nvidia/compiler.py make_ptx/make_cubin).
torch rounds beta * V' and the sum separately, so both kernels launch with
enable_fp_fusion=False (PTX mul.rn/add.rn, which ptxas never fuses, and --fmad=false). Compiled
offline for sm_90 (triton.compile with its bundled ptxas, no GPU), the forward kernel has no
FFMA in SASS (16 with fusion on). Divisions use tl.math.div_rn: fp32 `/` is div.full there.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl
from torch import Tensor

from model.sequences import empty_steps

if TYPE_CHECKING:
    from model.lif import LIF  # the caller: model.lif imports this module, never the reverse

BLOCK = 1024  # neurons per program (fp32: 4 KiB per row and tensor)
ROUNDER = tl.constexpr(1.5 * 2**23)  # grid codes: x + R - R rounds fp32 x half to even, |x| < 2^22
HALF_PI = tl.constexpr(math.pi / 2.0)  # rad, atan surrogate


@triton.jit
def _forward_kernel(currents, membrane, spikes, charged, final, n, steps,
                    beta, threshold, step, low, high,
                    HELD: tl.constexpr, QUANTIZE: tl.constexpr, SUBTRACT: tl.constexpr,
                    BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    reset = tl.load(membrane + offsets, mask=mask)  # V'[t-1]
    if HELD:
        current = tl.load(currents + offsets, mask=mask)
    for _ in range(steps):
        if not HELD:
            current = tl.load(currents + offsets, mask=mask)
            currents += n
        v = beta * reset + current
        if QUANTIZE:  # quantize_state_: (v / step).round_().clamp_(low, high).mul_(step)
            codes = tl.math.div_rn(v, step)  # torch on CUDA: v * (1/step), same for 2^-k steps
            codes = (codes + ROUNDER) - ROUNDER  # |codes| >= 2^22 saturate (16-bit grid)
            codes = tl.clamp(codes, low, high, propagate_nan=tl.PropagateNan.ALL)
            v = codes * step
        s = (v >= threshold).to(tl.float32)
        tl.store(charged + offsets, v, mask=mask)
        tl.store(spikes + offsets, s, mask=mask)
        charged += n
        spikes += n
        reset = v - threshold * s if SUBTRACT else v * (1.0 - s)  # theta * S is exact
    tl.store(final + offsets, reset, mask=mask)


@triton.jit
def _surrogate_grad(x, SURROGATE: tl.constexpr, SLOPE: tl.constexpr):
    """model.surrogate's derivative, with the same constants (folded in float64)."""
    if SURROGATE == "fast_sigmoid":
        y = tl.abs(x) * SLOPE + 1.0
        return tl.math.div_rn(1.0, y * y)
    elif SURROGATE == "sigmoid":
        s = tl.math.div_rn(1.0, 1.0 + tl.exp(-(SLOPE * x)))
        return s * (1.0 - s) * SLOPE
    else:  # atan
        y = x * (HALF_PI * SLOPE)
        return tl.math.div_rn(1.0, y * y + 1.0) * (SLOPE / 2.0)


@triton.jit
def _backward_kernel(charged, grad_spikes, grad_final, grad_currents, grad_initial, n, steps,
                     beta, threshold,  # charged, grad_spikes, grad_currents (not held): row T
                     HELD: tl.constexpr, SUBTRACT: tl.constexpr, SURROGATE: tl.constexpr,
                     SLOPE: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    carried = tl.load(grad_final + offsets, mask=mask)  # dL/dV'[t]
    if HELD:
        total = tl.zeros([BLOCK], dtype=tl.float32)  # sum over t of dL/dI[t]
    for _ in range(steps):
        v = tl.load(charged + offsets, mask=mask)
        grad_spike = tl.load(grad_spikes + offsets, mask=mask)
        x = v - threshold
        sigma = _surrogate_grad(x, SURROGATE, SLOPE)
        if SUBTRACT:
            grad_spike = grad_spike - threshold * carried
            kept = carried
        else:
            grad_spike = grad_spike - v * carried
            kept = carried * (x < 0).to(tl.float32)
        grad = kept + grad_spike * sigma  # dL/dV[t] = dL/dI[t]
        if HELD:
            total += grad
        else:
            tl.store(grad_currents + offsets, grad, mask=mask)
            grad_currents -= n
        carried = grad * beta
        charged -= n
        grad_spikes -= n
    if HELD:
        tl.store(grad_currents + offsets, total, mask=mask)
    tl.store(grad_initial + offsets, carried, mask=mask)


def integrate(lif: LIF, currents: Tensor, membrane: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`LIF.integrate` in one kernel: (spikes, charged V[1..T], V'[T]); a current held over T
    (`held()`: step stride 0) is read once."""
    spikes, charged = empty_steps(currents), empty_steps(currents)
    layout = spikes[0]  # dense: every tensor below is flat storage in this element order
    final = torch.empty_like(layout)
    is_held = currents.stride(0) == 0
    currents = _like(currents[0], layout) if is_held else _like(currents, spikes)
    half = 2.0 ** (lif.state_bits - 1) if lif.state_bits is not None else 0.0  # grid codes
    with torch.cuda.device_of(layout):
        _forward_kernel[_grid(layout)](
            currents, _like(membrane, layout), spikes, charged, final, layout.numel(),
            len(spikes), float(lif.beta), float(lif.threshold), lif.state_step, -half, half - 1.0,
            HELD=is_held, QUANTIZE=lif.state_bits is not None,
            SUBTRACT=lif.reset == "subtract", BLOCK=BLOCK, enable_fp_fusion=False)
    return spikes, charged, final


def backward(lif: LIF, charged: Tensor, grad_spikes: Tensor, grad_membrane: Tensor,
             held: bool) -> tuple[Tensor, Tensor]:
    """`LIFSequence.backward` in one kernel: (dL/dI [T, ...] or, held, [...]; dL/dV'[0])."""
    layout = charged[0]
    grad_currents = torch.empty_like(layout) if held else empty_steps(charged)
    grad_initial = torch.empty_like(layout)
    with torch.cuda.device_of(layout):
        _backward_kernel[_grid(layout)](
            charged[-1], _like(grad_spikes, charged)[-1], _like(grad_membrane, layout),
            grad_currents if held else grad_currents[-1], grad_initial, layout.numel(),
            len(charged), float(lif.beta), float(lif.threshold),
            HELD=held, SUBTRACT=lif.reset == "subtract", SURROGATE=lif.surrogate,
            SLOPE=float(lif.slope), BLOCK=BLOCK, enable_fp_fusion=False)
    return grad_currents, grad_initial


def _like(x: Tensor, layout: Tensor) -> Tensor:
    """x with the strides of the dense tensor `layout` (x itself, or a copy if they differ), so
    the kernels can index every tensor by the same flat offsets."""
    return x if x.stride() == layout.stride() else torch.empty_like(layout).copy_(x)


def _grid(layout: Tensor) -> tuple[int]:
    return (triton.cdiv(layout.numel(), BLOCK),)
