"""The spiking CNN and its ANN baseline, both built from a ModelSpec's layer list."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeAlias

import torch
from brevitas import nn as qnn
from torch import Tensor, nn

from model.layers import Layer
from model.lif import LIF
from model.quantizers import (
    PixelQuant,
    exact_float32_sums,
    relu_quant_kwargs,
    weight_quant_kwargs,
)
from model.spec import FLOAT_BITS, ModelSpec
from model.timesteps import rate_frames, read_out

Synapse: TypeAlias = qnn.QuantConv2d | qnn.QuantLinear  # a weight layer (no bias)


@dataclass(frozen=True)
class Stage:
    """A weight layer of the lowered network (`layer`: kind, geometry, pool, input kind) as
    modules: its synapse, the neuron that follows it (LIF or ReLU; None for the readout) and
    its pool (None if none)."""

    layer: Layer
    synapse: Synapse
    neuron: nn.Module | None
    pool: nn.MaxPool2d | nn.AvgPool2d | None

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def pooled(self) -> bool:
        return self.pool is not None

    @property
    def binary_input(self) -> bool:
        """Inputs are spikes in {0, 1}: accumulate-only synaptic operations."""
        return self.layer.binary_input

    @property
    def fed_by_input(self) -> bool:
        return self.layer.fed_by_input


class Synapses(nn.Module):
    """The weight layers of the spec's layer list (Brevitas), shared by both networks, each an
    attribute named as in model.layers (conv1, ..., fc1, ...; the readout is the last fc), and
    the neuron after each, named `neuron_prefix` 1, 2, ...

    No biases: with power-of-two weight and input scales every current is an exact integer
    sum (see model.quantizers), and a LIF neuron's threshold already sets its operating point.
    """

    def __init__(self, spec: ModelSpec, neuron_prefix: str) -> None:
        super().__init__()
        self.spec = spec
        self.input_quant = qnn.QuantIdentity(act_quant=PixelQuant, return_quant_tensor=False)
        self._stages: list[Stage] = []
        for index, layer in enumerate(spec.weight_layers):
            synapse = _synapse(layer, spec.weight_bits, spec.weight_scale)
            self.add_module(layer.name, synapse)
            neuron = None
            if layer.neuron:
                neuron = self._neuron()
                self.add_module(f"{neuron_prefix}{index + 1}", neuron)
            self._stages.append(Stage(layer, synapse, neuron, _pool(layer)))
        self.dropout = nn.Dropout(spec.dropout)

    def _neuron(self) -> nn.Module:
        raise NotImplementedError

    def stages(self) -> list[Stage]:
        """The network's layers in data-flow order, for profiling and export."""
        return list(self._stages)

    def neurons(self) -> list[nn.Module]:
        return [stage.neuron for stage in self._stages if stage.neuron is not None]


class SpikingCNN(Synapses):
    """Spiking CNN run for T timesteps; see ModelSpec for the topology.

    Direct encoding feeds the 8-bit image as a constant input current, so the first layer is
    computed once per image; rate encoding feeds Bernoulli spikes with P(spike) = p / 255 every
    step. logits = readout_t W_out S_L[t], readout = mean or sum over t = 1..T, S_L the spikes
    of the last LIF layer.

    `forward` runs layer by layer over all timesteps: every stateless layer (conv, pool, fc,
    dropout) runs once on the [T*B, ...] stack, each LIF layer runs its fused recurrence over
    T, and feature maps are channels-last (faster pooling and convolution on CPUs). `step` is
    the same network for one timestep with explicit membranes (the exported graph). Both give
    identical logits (with fixed-point weights: exact integer sums in any order; tested).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec, neuron_prefix="lif")
        # Module.to takes memory_format (torch._C._nn._parse_to); torch's overloads omit it
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _neuron(self) -> nn.Module:
        return LIF(self.spec)

    def forward(self, images: Tensor) -> Tensor:
        steps = self.spec.timesteps
        pixels = self.input_quant(images)
        first, *hidden, readout = self._stages
        if self.spec.encoding == "direct":  # one input current, held for T steps
            spikes, _ = _lif(first)(self._first_current(pixels), steps=steps)
        else:
            spikes, _ = _lif(first)(over_time(self._first_current, rate_frames(pixels, steps)))
        before = first
        for stage in hidden:
            inputs = self._next_inputs_over_time(before, stage, spikes)
            spikes, _ = _lif(stage)(over_time(partial(self._current, stage), inputs))
            before = stage
        inputs = self._next_inputs_over_time(before, readout, spikes)
        return read_out(over_time(readout.synapse, self.dropout(inputs)).sum(0), self.spec)

    def step(self, current: Tensor, membranes: list[Tensor | None]
             ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """One timestep from the first layer's output current (`input_current`), op by op
        through `LIF.step`: the definition `forward` computes, and the exported step graph.
        Returns the readout's output, the new membranes and each LIF layer's spikes."""
        first, *hidden, readout = self._stages
        spikes, membrane = _lif(first).step(self._pool_before(first, current), membranes[0])
        all_spikes, new_membranes = [spikes], [membrane]
        before = first
        for stage, previous in zip(hidden, membranes[1:], strict=True):
            inputs = self._next_inputs(before, stage, spikes)
            spikes, membrane = _lif(stage).step(self._current(stage, inputs), previous)
            all_spikes.append(spikes)
            new_membranes.append(membrane)
            before = stage
        logits = readout.synapse(self.dropout(self._next_inputs(before, readout, spikes)))
        return logits, new_membranes, all_spikes

    def encode(self, frame: Tensor) -> Tensor:
        """The first layer's input for one step's frame: the quantized image (direct encoding)
        or the spike frame itself (rate encoding). The exported step graph takes this frame."""
        return self.input_quant(frame) if self.spec.encoding == "direct" else frame

    def input_current(self, frame: Tensor) -> Tensor:
        """The first weight layer's output for one step's frame: `step`'s first argument."""
        return self._stages[0].synapse(self.encode(frame))

    def _first_current(self, frames: Tensor) -> Tensor:
        """The first LIF layer's input current (channels-last) from the first layer's input."""
        first = self._stages[0]
        current = first.synapse(frames).contiguous(memory_format=torch.channels_last)
        return self._pool_before(first, current)

    def _current(self, stage: Stage, inputs: Tensor) -> Tensor:
        return self._pool_before(stage, stage.synapse(inputs))

    def _pool_before(self, stage: Stage, current: Tensor) -> Tensor:
        if stage.pool is not None and self.spec.pool == "before_neuron":
            return stage.pool(current)
        return current

    def _pool_after(self, stage: Stage, spikes: Tensor) -> Tensor:
        if stage.pool is not None and self.spec.pool == "after_neuron":
            return stage.pool(spikes)
        return spikes

    def _next_inputs(self, before: Stage, stage: Stage, spikes: Tensor) -> Tensor:
        """The input of `stage` from the spikes [B, ...] of the stage `before` it: pooled
        after the neuron, flattened in front of an fc."""
        return _flat_for(stage, self._pool_after(before, spikes))

    def _next_inputs_over_time(self, before: Stage, stage: Stage, spikes: Tensor) -> Tensor:
        """`_next_inputs` for the spikes [T, B, ...] of all timesteps."""
        inputs = over_time(partial(self._pool_after, before), spikes)
        maps = isinstance(stage.synapse, nn.Linear) and inputs.dim() > 3
        return FlattenMaps.apply(inputs) if maps else inputs


class QuantCNN(Synapses):
    """ANN baseline: the same topology with Brevitas QuantReLU of `weight_bits` bits, each
    pool after its ReLU."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec, neuron_prefix="relu")

    def _neuron(self) -> nn.Module:
        return _relu(self.spec.weight_bits)

    def forward(self, images: Tensor) -> Tensor:
        *hidden, readout = self._stages
        x = self.input_quant(images)
        for stage in hidden:
            assert stage.neuron is not None, "every stage but the readout has a neuron"
            x = stage.neuron(stage.synapse(_flat_for(stage, x)))
            x = stage.pool(x) if stage.pool is not None else x
        return readout.synapse(self.dropout(_flat_for(readout, x)))


def over_time(layer: Callable[[Tensor], Tensor], sequence: Tensor) -> Tensor:
    """A stateless layer applied to every timestep of [T, B, ...] in one call on [T*B, ...]."""
    return layer(sequence.flatten(0, 1)).unflatten(0, sequence.shape[:2])


class FlattenMaps(torch.autograd.Function):
    """[T, B, C, H, W] -> [T, B, C*H*W] in (C, H, W) order, with the gradient returned in the
    input's memory layout: max-pool's backward is several times slower when the gradient
    arrives channels-first for a channels-last input."""

    @staticmethod
    def forward(ctx, maps: Tensor) -> Tensor:
        ctx.shape = maps.shape
        channels_last = maps.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
        ctx.layout = torch.channels_last if channels_last else torch.contiguous_format
        return maps.flatten(2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        maps = grad.reshape(-1, *ctx.shape[2:]).contiguous(memory_format=ctx.layout)
        return maps.unflatten(0, ctx.shape[:2])


def _lif(stage: Stage) -> LIF:
    """The LIF after a stage of a SpikingCNN (every stage but the readout has one)."""
    assert isinstance(stage.neuron, LIF), f"{stage.name} has no LIF"
    return stage.neuron


def _synapse(layer: Layer, weight_bits: int, weight_scale: str) -> Synapse:
    """The Brevitas layer of a weight layer (no bias)."""
    wq = weight_quant_kwargs(weight_bits, weight_scale)
    if layer.kind == "conv":
        return qnn.QuantConv2d(layer.input_shape[0], layer.width, layer.kernel,
                               stride=layer.stride, padding=layer.padding, bias=False, **wq)
    return qnn.QuantLinear(math.prod(layer.input_shape), layer.width, bias=False, **wq)


POOLS: dict[str, type[nn.MaxPool2d | nn.AvgPool2d]] = {  # k x k window, stride k
    "max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def _pool(layer: Layer) -> nn.MaxPool2d | nn.AvgPool2d | None:
    return None if layer.pool is None else POOLS[layer.pool.kind](layer.pool.size)


def _flat_for(stage: Stage, x: Tensor) -> Tensor:
    """x [B, ...] as `stage`'s synapse takes it: flattened in front of an fc."""
    return x.flatten(1) if isinstance(stage.synapse, nn.Linear) else x


def _relu(bits: int) -> nn.Module:
    if bits == FLOAT_BITS:
        return nn.ReLU()
    return qnn.QuantReLU(**relu_quant_kwargs(bits), return_quant_tensor=False)


def build_model(spec: ModelSpec) -> SpikingCNN | QuantCNN:
    """The network a spec describes, with freshly initialised weights; turns TF32 off
    (`exact_float32_sums`) for the process."""
    exact_float32_sums()
    return SpikingCNN(spec) if spec.kind == "snn" else QuantCNN(spec)
