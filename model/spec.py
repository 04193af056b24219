"""The model spec: the one description of a network, saved inside every checkpoint.
Importable without torch (reports read specs without building networks).

Training, evaluation, export, profiling and HLS all rebuild the network from it with
`model.network.build_model(spec)`; nobody re-types hyper-parameters.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from common.errors import UserError, check_choice
from model.layers import SEED_LAYERS, Layer, lower, split_tokens

KINDS = ("snn", "ann")
WEIGHT_BITS = (2, 4, 8, 32)  # 32 = float weights
WEIGHT_SCALES = ("max", "mse")  # model.quantizers.weight_quant_kwargs
STATE_BITS = (4, 8, 16, 32)  # 32 = float membrane
RESETS = ("subtract", "zero")
ENCODINGS = ("direct", "rate")
POOLS = ("after_neuron", "before_neuron")
READOUTS = ("mean", "sum")
FLOAT_BITS = 32
SURROGATE_NAMES = ("fast_sigmoid", "sigmoid", "atan")  # model.surrogate.SURROGATES' keys


@dataclass(frozen=True)
class ModelSpec:
    """Architecture, neuron, encoding and quantization of one network.

    `layers` is the topology (model/layers.py), by default the seed network
    conv32,pool,conv64,pool,fc256: Conv(in->32, 3x3, pad 1) + LIF + MaxPool(2) -> Conv(32->64)
    + LIF + MaxPool(2) -> FC(64*(H/4)*(W/4) -> 256) + LIF + Dropout -> FC(256 -> classes); the
    readout is the output layer summed or averaged over the T timesteps. `pool` says whether
    a pool sits after the LIF of its conv (on spikes) or before it (on the current).
    `kind="ann"` replaces every LIF by a quantized ReLU of `weight_bits` bits (pools after it)
    and runs one pass (timesteps = 1).
    """

    kind: str = "snn"
    timesteps: int = 10
    weight_bits: int = 8
    weight_scale: str = "max"  # each tensor's power-of-two scale: from max |w|, or least MSE
    input_bits: int = 8  # pixels are 8-bit: the input quantizer is lossless
    state_bits: int = 8
    state_max: float = 2.0  # membrane grid: [-state_max, state_max), step = 2 state_max / 2^bits
    beta: float = 0.5
    threshold: float = 0.5
    reset: str = "subtract"
    surrogate: str = "fast_sigmoid"
    surrogate_slope: float = 10.0
    encoding: str = "direct"
    pool: str = "after_neuron"
    readout: str = "mean"
    in_channels: int = 1
    image_size: int = 28
    layers: tuple[str, ...] = SEED_LAYERS
    num_classes: int = 10
    dropout: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", split_tokens(self.layers))
        check_choice("kind", self.kind, KINDS)
        check_choice("weight_bits", self.weight_bits, WEIGHT_BITS)
        check_choice("weight_scale", self.weight_scale, WEIGHT_SCALES)
        check_choice("input_bits", self.input_bits, (8,))
        check_choice("state_bits", self.state_bits, STATE_BITS)
        check_choice("reset", self.reset, RESETS)
        check_choice("surrogate", self.surrogate, sorted(SURROGATE_NAMES))
        check_choice("encoding", self.encoding, ENCODINGS)
        check_choice("pool", self.pool, POOLS)
        check_choice("readout", self.readout, READOUTS)
        _check_int("timesteps", self.timesteps, low=1)
        if self.kind == "ann" and self.timesteps != 1:
            raise UserError(f"timesteps={self.timesteps} is not allowed for kind='ann'; use 1")
        _check_range("beta", self.beta, 0.0, 1.0)
        _check_range("dropout", self.dropout, 0.0, 1.0, high_open=True)
        for name in ("threshold", "surrogate_slope", "state_max"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name}={getattr(self, name)!r} must be > 0")
        for name in ("in_channels", "image_size", "num_classes"):
            _check_int(name, getattr(self, name), low=1)
        lower(self)  # a UserError if the layer list does not fit
        if self.quantized_state:
            self._check_state_grid()

    @property
    def quantized_state(self) -> bool:
        return self.state_bits != FLOAT_BITS

    @property
    def state_step(self) -> float:
        """LSB of the membrane's fixed-point grid (0 for a float membrane)."""
        return 2 * self.state_max / 2**self.state_bits if self.quantized_state else 0.0

    @property
    def weight_layers(self) -> tuple[Layer, ...]:
        """The lowered network (model.layers.lower): its weight layers in data-flow order,
        the implied readout last."""
        return lower(self)

    @property
    def lif_layers(self) -> int:
        """Number of layers with a neuron (every weight layer but the readout)."""
        return len(self.weight_layers) - 1

    def _check_state_grid(self) -> None:
        if not math.log2(self.state_max).is_integer():
            raise UserError(f"state_max={self.state_max} must be a power of two (fixed point)")
        if not (self.threshold / self.state_step).is_integer() or self.threshold >= self.state_max:
            raise UserError(
                f"threshold={self.threshold} must be a multiple of the membrane step "
                f"{self.state_step} (state_bits={self.state_bits}, state_max={self.state_max}) "
                f"and below state_max"
            )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layers"] = ",".join(self.layers)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Rebuild a spec, rejecting keys this version does not know; a spec written before
        the layer list (conv_channels=[c1, c2], hidden=h) opens as conv{c1},pool,conv{c2},pool,
        fc{h}."""
        if not isinstance(data, dict):
            raise UserError(f"model spec must be a mapping, got {type(data).__name__}")
        data = _with_layer_list(data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown model spec key(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


def _with_layer_list(data: dict[str, Any]) -> dict[str, Any]:
    """An old spec dict's conv_channels and hidden mapped onto `layers`."""
    if "conv_channels" not in data and "hidden" not in data:
        return data
    data = dict(data)
    (c1, c2), hidden = data.pop("conv_channels", (32, 64)), data.pop("hidden", 256)
    data.setdefault("layers", f"conv{c1},pool,conv{c2},pool,fc{hidden}")
    return data


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{name}={value!r} must be an integer >= {low}")


def _check_range(name: str, value: float, low: float, high: float, high_open: bool = False) -> None:
    above = value >= high if high_open else value > high
    if not isinstance(value, (int, float)) or value < low or above:
        bracket = ")" if high_open else "]"
        raise UserError(f"{name}={value!r} must lie in [{low}, {high}{bracket}")
