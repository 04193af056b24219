"""The layer list of a network: its compact form (`conv32,pool,conv64,pool,fc256`), parsed,
checked and lowered, once, into the description every back end reads.

    conv<c>[k<k>][s<s>][p<p>]  convolution to c channels, k x k kernel (default 3), stride s
                               (default 1), zero padding p on every side (default (k - 1) // 2,
                               "same" for an odd k at stride 1), then a neuron
    maxpool<k>, avgpool<k>     k x k pool with stride k of the conv before it (on its spikes
                               or on its current, ModelSpec.pool); the map shrinks to floor(H / k)
    pool                       maxpool2
    fc<n>                      fully connected to n features, then a neuron; the map before
                               the first one is flattened

Convolutions come first, then fully connected layers; a pool directly follows a conv (one
per conv). The readout (fc to the classes, no neuron) is implied. Weight layers are named by
kind and position: conv1, conv2, ..., fc1, ..., the readout being the last fc.

    H_out = floor((H + 2 p - k) / s) + 1        (convolution)
    H_out = floor(H / k)                        (pool)

`lower(spec)` gives one `Layer` per weight layer: kind, kernel, stride, padding, pool, the
shapes around it, whether its input is binary spikes (every layer of a spiking network but
the first under direct encoding, and but one after an average pool of spikes, whose input is
a spike count / k^2), the bits of one input value, and whether it is computed once per
image (the first layer of a spiking network under direct encoding: its input, the image, does
not change over the T steps).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from common.errors import UserError

if TYPE_CHECKING:
    from model.spec import ModelSpec

SEED_LAYERS = ("conv32", "pool", "conv64", "pool", "fc256")
ALLOWED = ("conv<channels>[k<kernel>][s<stride>][p<padding>] (default 3x3, stride 1, same "
           "padding), maxpool<k> / avgpool<k> / pool (= maxpool2) after a conv, fc<width>")
POOL_KINDS = ("max", "avg")
_CONV = re.compile(r"conv(\d+)(?:k(\d+))?(?:s(\d+))?(?:p(\d+))?")
_POOL = re.compile(r"(max|avg)pool(\d+)|pool")
_FC = re.compile(r"fc(\d+)")


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" | "avg"
    size: int  # k: a k x k window, stride k


@dataclass(frozen=True)
class Layer:
    """One weight layer of the lowered network and what follows it (pool, neuron).

    Shapes are (C, H, W) for maps and (features,) for vectors: `input_shape` as the layer
    receives it (before an fc flattens it), `synapse_shape` the weight layer's output,
    `output_shape` after the pool."""

    name: str
    kind: str  # "conv" | "fc"
    width: int  # output channels or features
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    pool: Pool | None = None
    neuron: bool = True  # False for the readout
    input_shape: tuple[int, ...] = ()
    synapse_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()
    binary_input: bool = False
    input_bits: int = 0  # bits of one input value: 1 for spikes, bit_length(k^2) for the
    #                     spike count of a k x k average pool, the activation bits otherwise
    computed_once: bool = False

    @property
    def pooled(self) -> bool:
        return self.pool is not None

    @property
    def fed_by_input(self) -> bool:
        """The first weight layer: its input is the network's input."""
        return self.name == "conv1"


def token_of(layer: Layer) -> str:
    """The layer in the grammar's full form, its pool joined by '+': conv6k5s1p0+avgpool2."""
    if layer.kind == "fc":
        return f"fc{layer.width}"
    conv = f"conv{layer.width}k{layer.kernel}s{layer.stride}p{layer.padding}"
    return conv + (f"+{layer.pool.kind}pool{layer.pool.size}" if layer.pool else "")


def is_seed_geometry(layer: Layer) -> bool:
    """A 3x3 stride-1 pad-1 conv with no pool or a 2x2 max pool, or an fc: what a back end
    written for the seed network builds."""
    return layer.kind == "fc" or ((layer.kernel, layer.stride, layer.padding) == (3, 1, 1)
                                  and layer.pool in (None, Pool("max", 2)))


def without_average_pool(layer: Layer) -> bool:
    """Every conv geometry, max pools, fcs: no average pool (whose output, a spike count
    / k^2, is no spike)."""
    return layer.pool is None or layer.pool.kind == "max"


def with_power_of_two_average_pool(layer: Layer) -> bool:
    """What the FINN hardware graph and the HLS generator build: every conv geometry, max
    pools, average pools of spikes whose k is a power of two (the spike count times
    2^-2log2(k), a shift), fcs."""
    pool = layer.pool
    return without_average_pool(layer) or (pool is not None and pool.size & (pool.size - 1) == 0)


WITH_POWER_OF_TWO_AVERAGE_POOL = ("convs of any kernel, stride and padding, max pools of any "
                                  "size, average pools of spikes of size 2, 4, 8, .. and fcs")


def refuse_unbuildable(layers: tuple[Layer, ...], backend: str,
                       builds: Callable[[Layer], bool], allowed: str) -> None:
    """One line naming the first layer `backend` cannot build, and what it builds."""
    for layer in layers:
        if not builds(layer):
            raise UserError(f"{backend} cannot build layer {layer.name} ({token_of(layer)}); "
                            f"it builds {allowed}")


def split_tokens(layers: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The tokens of `conv32,pool,...` (one string, or several, each possibly comma-joined)."""
    items = [layers] if isinstance(layers, str) else list(layers)
    return tuple(t.strip() for item in items for t in str(item).split(",") if t.strip())


def lower(spec: ModelSpec) -> tuple[Layer, ...]:
    """The spec's weight layers, readout included, with shapes, pools and input kinds; a
    one-line UserError naming the first token that does not fit."""
    layers = parse_layers(spec.layers, (spec.in_channels, spec.image_size, spec.image_size),
                          spec.num_classes)
    snn = spec.kind == "snn"
    lowered = []
    for index, layer in enumerate(layers):
        first = index == 0
        pooled_by = layers[index - 1].pool if index else None
        counts = (pooled_by is not None and pooled_by.kind == "avg"
                  and spec.pool == "after_neuron")
        binary = snn and not counts and (not first or spec.encoding == "rate")
        once = snn and first and spec.encoding == "direct"
        bits = (1 if binary else (pooled_by.size ** 2).bit_length() if counts and pooled_by
                else spec.input_bits if first else spec.weight_bits)
        lowered.append(replace(layer, binary_input=binary, input_bits=bits, computed_once=once))
    return tuple(lowered)


def parse_layers(tokens: tuple[str, ...], input_shape: tuple[int, int, int], classes: int
                 ) -> tuple[Layer, ...]:
    """The weight layers of a token list with their shapes, readout included (input kinds
    left to `lower`)."""
    if not tokens:
        raise UserError(f"layers='' is empty; allowed: {ALLOWED}, comma-separated")
    parsed: list[Layer] = []
    shape: tuple[int, ...] = input_shape
    for position, token in enumerate(tokens, start=1):
        try:
            shape = _add_token(parsed, token, shape)
        except ValueError as why:
            raise UserError(f"layers={','.join(tokens)!r}: {token!r} (token {position}) {why}; "
                            f"allowed: {ALLOWED}, convolutions before fully connected layers"
                            ) from None
    readout = sum(layer.kind == "fc" for layer in parsed) + 1
    return (*parsed, Layer(f"fc{readout}", "fc", classes, neuron=False, input_shape=shape,
                           synapse_shape=(classes,), output_shape=(classes,)))


def _add_token(parsed: list[Layer], token: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Apply one token to the layers parsed so far (in place); the shape after it, or a
    ValueError saying why the token does not fit there."""
    last = parsed[-1] if parsed else None
    if pool := _POOL.fullmatch(token):
        size = int(pool.group(2)) if pool.group(2) else 2
        if last is None or last.kind != "conv" or last.pooled:
            raise ValueError("must directly follow a conv")
        if size < 2:
            raise ValueError(f"has a {size}x{size} window (k >= 2)")
        if size > shape[-1]:
            raise ValueError(f"would shrink the {shape[-1]}x{shape[-1]} map below 1x1")
        out = (shape[0], shape[1] // size, shape[2] // size)
        parsed[-1] = replace(last, pool=Pool(pool.group(1) or "max", size), output_shape=out)
        return out
    if conv := _CONV.fullmatch(token):
        if last is not None and last.kind == "fc":
            raise ValueError("follows a fully connected layer")
        width, kernel, stride = (int(conv.group(i)) if conv.group(i) else d
                                 for i, d in ((1, 0), (2, 3), (3, 1)))
        padding = int(conv.group(4)) if conv.group(4) else (kernel - 1) // 2
        for value, what in ((width, "channels"), (kernel, "kernel"), (stride, "stride")):
            if value < 1:
                raise ValueError(f"has 0 {what}")
        if padding >= kernel:
            raise ValueError(f"pads {padding} >= its kernel {kernel}")
        side = (shape[-1] + 2 * padding - kernel) // stride + 1
        if side < 1:
            raise ValueError(f"does not fit the {shape[-1]}x{shape[-1]} map")
        out = (width, side, side)
        count = sum(layer.kind == "conv" for layer in parsed) + 1
        parsed.append(Layer(f"conv{count}", "conv", width, kernel, stride, padding,
                            input_shape=shape, synapse_shape=out, output_shape=out))
        return out
    if fc := _FC.fullmatch(token):
        width = int(fc.group(1))
        if width < 1:
            raise ValueError("has 0 features")
        if last is None:
            raise ValueError("cannot come first: the first layer must be a conv")
        count = sum(layer.kind == "fc" for layer in parsed) + 1
        parsed.append(Layer(f"fc{count}", "fc", width, input_shape=shape,
                            synapse_shape=(width,), output_shape=(width,)))
        return (width,)
    raise ValueError("is not a layer")
