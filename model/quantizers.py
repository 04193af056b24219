"""Brevitas quantizers used by the networks, as named building blocks."""
from __future__ import annotations

from brevitas.core.scaling import ScalingImplType
from brevitas.quant import Int8WeightPerTensorFloat, Uint8ActPerTensorFloatMaxInit

from model.spec import FLOAT_BITS


class PixelQuant(Uint8ActPerTensorFloatMaxInit):
    """8-bit unsigned input with a constant scale 1/255: MNIST pixels p/255 pass unchanged."""

    scaling_impl_type = ScalingImplType.CONST
    max_val = 1.0


def weight_quant_kwargs(bits: int) -> dict:
    """Keyword arguments for a Brevitas QuantConv2d/QuantLinear with `bits`-bit weights.

    Signed, narrow range (at most 2^bits - 1 levels), one float scale per tensor from the
    weights' max |w|. `bits` == 32 gives float weights.
    """
    if bits == FLOAT_BITS:
        return {"weight_quant": None}
    return {"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": bits}
