"""Brevitas quantizers used by the networks, as named building blocks.

from __future__ import annotations

All scales are powers of two (fixed point), so every synaptic current is an exact sum of
integers times one power of two: float32 computes it without rounding in any summation
order, which makes the exported graph, the HLS code and PyTorch agree bit for bit, and maps
to integer hardware with shifts.
"""
from __future__ import annotations

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


def weight_quant_kwargs(bits: int) -> dict:
    """Keyword arguments for a Brevitas QuantConv2d/QuantLinear with `bits`-bit weights.

    Signed, narrow range (at most 2^bits - 1 levels), one power-of-two scale per tensor from
    the weights' max |w|. `bits` == 32 gives float weights.
    """
    if bits == FLOAT_BITS:
        return {"weight_quant": None}
    return {"weight_quant": Int8WeightPerTensorFixedPoint, "weight_bit_width": bits}


def relu_quant_kwargs(bits: int) -> dict:
    """Keyword arguments for the ANN's QuantReLU: unsigned, power-of-two scale."""
    return {"act_quant": Uint8ActPerTensorFixedPoint, "bit_width": bits}
