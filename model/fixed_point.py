"""Fixed-point quantization of the membrane state with a straight-through gradient.

    Q(x) = step * clamp(round(x / step), -2^(b-1), 2^(b-1) - 1)

round() is round-half-to-even, as in torch.round and QONNX's `Quant` node (rounding_mode
ROUND), so the exported graph computes the same grid. The backward pass is the identity
(straight-through estimator), as snnTorch's `state_quant` does.
"""
from __future__ import annotations

import torch
from torch import Tensor


class FixedPointSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, step: float, bits: int) -> Tensor:
        return _to_grid_(x / step, step, bits)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        return grad, None, None

    @staticmethod
    def symbolic(g, x, step: float, bits: int):
        def const(value: float):
            return g.op("Constant", value_t=torch.tensor(float(value)))

        out = g.op(
            "qonnx.custom_op.general::Quant", x, const(step), const(0.0), const(bits),
            signed_i=1, narrow_i=0, rounding_mode_s="ROUND",
        )
        out.setType(x.type())  # same shape and dtype as the input
        return out


def quantize_state(x: Tensor, step: float, bits: int) -> Tensor:
    """Q(x) on the signed `bits`-bit grid of spacing `step` (see the module docstring)."""
    return FixedPointSTE.apply(x, step, bits)


def quantize_state_(x: Tensor, step: float, bits: int) -> Tensor:
    """Q(x) computed in place, without autograd (the fused LIF kernel's form)."""
    return _to_grid_(x.div_(step), step, bits)


def _to_grid_(codes: Tensor, step: float, bits: int) -> Tensor:
    """x / step -> Q(x), in place on `codes`."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return codes.round_().clamp_(low, high).mul_(step)
