"""Brevitas quantizers used by the networks, as named building blocks.

All scales are powers of two (fixed point), so every synaptic current is an exact sum of
integers times one power of two: float32 computes it without rounding in any summation
order, which makes the exported graph, the HLS code and PyTorch agree bit for bit, and maps
to integer hardware with shifts.
"""
from __future__ import annotations

import math

import torch
from brevitas.core.scaling import ScalingImplType
from brevitas.quant import (
    Int8WeightPerTensorFixedPoint,
    Uint8ActPerTensorFixedPoint,
    Uint8ActPerTensorFloatMaxInit,
)

from model.spec import FLOAT_BITS

PIXEL_SCALE = 2.0**-8  # an 8-bit pixel p enters the network as p / 256
PIXEL_FULL_SCALE = 255 * PIXEL_SCALE  # a white pixel


def exact_float32_sums() -> None:
    """Keep CUDA convolutions and matrix products in IEEE float32 (process-wide).

    cuDNN convolutions default to TF32 on Ampere and later GPUs (torch.backends.cudnn
    .allow_tf32 = True), which rounds each operand to a 10-bit mantissa before multiplying: a
    float weight or a 16-bit membrane input would be rounded, and the currents would no longer
    equal the CPU's and the exported graph's. Called by `model.network.build_model`."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> network input p * PIXEL_SCALE in [0, 255/256]."""
    return images.float() * PIXEL_SCALE


class PixelQuant(Uint8ActPerTensorFloatMaxInit):
    """8-bit unsigned input with the constant scale 2^-8: pixels p / 256 pass unchanged."""

    scaling_impl_type = ScalingImplType.CONST
    max_val = PIXEL_FULL_SCALE


class LeastSquaresPowerOfTwoScale(torch.nn.Module):
    """The power-of-two weight scale with the least squared rounding error:

        s = 2^k,  k = argmin_k sum (w - 2^k clamp(round(w / 2^k), -(n-1), n-1))^2

    with n = 2^(bits-1), over the SEARCHED exponents from the smallest scale at which no weight
    saturates, 2^ceil(log2(max|w| / (n-1))), downward; the larger scale on a tie. A few large
    weights then saturate instead of every small weight rounding to zero. (Brevitas' max rule,
    Int8WeightPerTensorFixedPoint, takes 2^ceil(log2 max|w|) / n, which saturates a max|w| that
    is a power of two.) Recomputed from the weights at every call, like the max rule; no
    gradient flows through the choice. Brevitas calls it as scaling_impl(w, n) and divides
    nothing further.
    """

    SEARCHED = 16

    def __init__(self) -> None:  # Brevitas' injector needs a constructor without *args
        super().__init__()

    def forward(self, weight: torch.Tensor, int_threshold: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            n = float(int_threshold)
            peak = max(float(weight.abs().max()), 2.0**-100)  # an all-zero tensor: any scale
            largest = 2.0 ** math.ceil(math.log2(peak / (n - 1)))
            scales = largest * 2.0 ** -torch.arange(self.SEARCHED, dtype=weight.dtype,
                                                    device=weight.device)
            grid = scales.view(-1, *[1] * weight.dim())
            rounded = (weight / grid).round_().clamp_(1 - n, n - 1).mul_(grid)
            errors = (rounded - weight).square_().flatten(1).sum(1)
            return scales[int(errors.argmin())]  # argmin: the first (largest) on a tie


class Int8WeightPerTensorLeastSquaresPowerOfTwo(Int8WeightPerTensorFixedPoint):
    """Int8WeightPerTensorFixedPoint with the least-squares power-of-two scale."""

    scaling_impl = LeastSquaresPowerOfTwoScale


WEIGHT_QUANTS = {"max": Int8WeightPerTensorFixedPoint,
                 "mse": Int8WeightPerTensorLeastSquaresPowerOfTwo}  # ModelSpec.weight_scale


def weight_quant_kwargs(bits: int, scale: str = "max") -> dict:
    """Keyword arguments for a Brevitas QuantConv2d/QuantLinear with `bits`-bit weights.

    Signed, narrow range (at most 2^bits - 1 levels), one power-of-two scale per tensor:
    `scale` "max" is Brevitas' 2^ceil(log2 max|w|) / 2^(bits-1), "mse" the power of two with
    the least squared rounding error (LeastSquaresPowerOfTwoScale). `bits` == 32
    gives float weights.
    """
    if bits == FLOAT_BITS:
        return {"weight_quant": None}
    return {"weight_quant": WEIGHT_QUANTS[scale], "weight_bit_width": bits}


def relu_quant_kwargs(bits: int) -> dict:
    """Keyword arguments for the ANN's QuantReLU: unsigned, power-of-two scale."""
    return {"act_quant": Uint8ActPerTensorFixedPoint, "bit_width": bits}
