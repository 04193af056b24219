"""The layer list of a network: its compact form (`conv32,pool,conv64,pool,fc256`), parsed and
checked, and the shapes it implies.

    conv<channels>   3x3 convolution, padding 1, stride 1 (+ a neuron)
    pool             2x2 max pool of the conv before it (on its spikes or on its current,
                     ModelSpec.pool); it halves the map, rounding down
    fc<width>        fully connected (+ a neuron); the map before the first one is flattened

Convolutions come first, then fully connected layers; the readout (fc to the classes, no
neuron) is implied. Weight layers are named by kind and position: conv1, conv2, ..., fc1, ...,
the readout being the last fc.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from common.errors import UserError

SEED_LAYERS = ("conv32", "pool", "conv64", "pool", "fc256")
ALLOWED = "conv<channels> (3x3, pad 1), pool (2x2 max after a conv), fc<width>"
_TOKEN = re.compile(r"(conv|fc)(\d+)|pool")


@dataclass(frozen=True)
class WeightLayer:
    """One weight layer: its name, kind ("conv" or "fc"), output width (channels or features),
    whether a 2x2 max pool follows it, and whether a neuron follows it (not the readout)."""

    name: str
    kind: str
    width: int
    pooled: bool
    neuron: bool = True


def split_tokens(layers: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The tokens of `conv32,pool,...` (one string, or several, each possibly comma-joined)."""
    items = [layers] if isinstance(layers, str) else list(layers)
    return tuple(t.strip() for item in items for t in str(item).split(",") if t.strip())


def parse_layers(tokens: tuple[str, ...], image_size: int, classes: int) -> tuple[WeightLayer, ...]:
    """The weight layers of a checked token list, readout included; a one-line UserError
    naming the first bad token otherwise."""
    if not tokens:
        raise UserError(f"layers='' is empty; allowed: {ALLOWED}, comma-separated")
    parsed: list[WeightLayer] = []
    size = image_size
    for position, token in enumerate(tokens, start=1):
        try:
            size = _add_token(parsed, token, size)
        except ValueError as why:
            raise UserError(f"layers={','.join(tokens)!r}: {token!r} (token {position}) {why}; "
                            f"allowed: {ALLOWED}, convolutions before fully connected layers"
                            ) from None
    readout = sum(layer.kind == "fc" for layer in parsed) + 1
    return (*parsed, WeightLayer(f"fc{readout}", "fc", classes, pooled=False, neuron=False))


def _add_token(parsed: list[WeightLayer], token: str, size: int) -> int:
    """Apply one token to the layers parsed so far (in place); the map size after it, or a
    ValueError saying why the token does not fit there."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise ValueError("is not a layer")
    last = parsed[-1] if parsed else None
    if token == "pool":
        if last is None or last.kind != "conv" or last.pooled:
            raise ValueError("must directly follow a conv")
        if size < 2:
            raise ValueError(f"would shrink the {size}x{size} map below 1x1")
        parsed[-1] = replace(last, pooled=True)
        return size // 2
    kind, width = match.group(1), int(match.group(2))
    if width < 1:
        raise ValueError(f"has {width} {'channels' if kind == 'conv' else 'features'}")
    if last is None and kind != "conv":
        raise ValueError("cannot come first: the first layer must be a conv")
    if kind == "conv" and last is not None and last.kind == "fc":
        raise ValueError("follows a fully connected layer")
    count = sum(layer.kind == kind for layer in parsed) + 1
    parsed.append(WeightLayer(f"{kind}{count}", kind, width, pooled=False))
    return size


def input_shapes(layers: tuple[WeightLayer, ...], in_channels: int, image_size: int
                 ) -> list[tuple[int, ...]]:
    """Per weight layer, the shape of its input before any flattening: (C, H, W) after the
    previous layer's pool, or (features,) after an fc. A conv's output map has its input's
    H x W (3x3, pad 1)."""
    shapes: list[tuple[int, ...]] = [(in_channels, image_size, image_size)]
    for layer in layers[:-1]:
        if layer.kind == "conv":
            side = shapes[-1][-1] // 2 if layer.pooled else shapes[-1][-1]
            shapes.append((layer.width, side, side))
        else:
            shapes.append((layer.width,))
    return shapes
