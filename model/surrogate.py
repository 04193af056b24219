"""The spike function S = H(x) with a surrogate gradient, and its QONNX export form.

Forward: the Heaviside step H(x) = 1 if x >= 0 else 0, x = V - theta.
Backward: dH/dx is replaced by the derivative of a smooth surrogate with slope k:

    fast_sigmoid:  1 / (k |x| + 1)^2                       (Zenke & Ganguli 2018; snnTorch)
    sigmoid:       k s(kx) (1 - s(kx)),  s = logistic
    atan:          (k / 2) / (1 + (pi k x / 2)^2)          (Fang et al. 2021; SpikingJelly)

Export: Brevitas and FINN read every 1-bit quantizer as bipolar (+-1), so a {0, 1} spike is
written as 0.5 * (BipolarQuant(x) + 1), the form that survives QONNX and FINN unchanged.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def fast_sigmoid_grad(x: Tensor, slope: float) -> Tensor:
    return x.abs().mul_(slope).add_(1.0).square_().reciprocal_()


def sigmoid_grad(x: Tensor, slope: float) -> Tensor:
    s = torch.sigmoid(slope * x)
    return s.mul(1.0 - s).mul_(slope)


def atan_grad(x: Tensor, slope: float) -> Tensor:
    return x.mul(math.pi / 2.0 * slope).square_().add_(1.0).reciprocal_().mul_(slope / 2.0)


SURROGATES: dict[str, Callable[[Tensor, float], Tensor]] = {
    "fast_sigmoid": fast_sigmoid_grad,
    "sigmoid": sigmoid_grad,
    "atan": atan_grad,
}


class Heaviside(torch.autograd.Function):
    """S = H(x) in the forward pass, the named surrogate's derivative in the backward pass."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: str, slope: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate, ctx.slope = surrogate, slope
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad_spikes * SURROGATES[ctx.surrogate](x, ctx.slope), None, None

    @staticmethod
    def symbolic(g, x, surrogate: str, slope: float):
        one = g.op("Constant", value_t=torch.tensor(1.0))
        half = g.op("Constant", value_t=torch.tensor(0.5))
        bipolar = g.op("qonnx.custom_op.general::BipolarQuant", x, one)
        bipolar.setType(x.type())  # same shape and dtype as the input
        return g.op("Mul", g.op("Add", bipolar, one), half)


def spike(x: Tensor, surrogate: str = "fast_sigmoid", slope: float = 10.0) -> Tensor:
    """S = H(x) with a surrogate gradient (see the module docstring)."""
    return Heaviside.apply(x, surrogate, slope)
