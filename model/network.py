"""The seed spiking CNN and its ANN baseline, both built from a ModelSpec."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from brevitas import nn as qnn
from torch import Tensor, nn

from model.lif import LIF
from model.quantizers import PixelQuant, relu_quant_kwargs, weight_quant_kwargs
from model.spec import FLOAT_BITS, ModelSpec
from model.timesteps import rate_frames, read_out


@dataclass(frozen=True)
class Stage:
    """A weight layer and the neuron that follows it (LIF or ReLU; None for the readout)."""

    name: str
    synapse: nn.Module
    neuron: nn.Module | None
    pooled: bool  # a 2x2 max pool follows the weight layer (before or after the neuron)
    binary_input: bool  # inputs are spikes in {0, 1}: accumulate-only synaptic operations


class Synapses(nn.Module):
    """The four weight layers shared by both networks: conv1, conv2, fc1, fc2 (Brevitas).

    No biases: with power-of-two weight and input scales every current is an exact integer
    sum (see model.quantizers), and a LIF neuron's threshold already sets its operating point.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        c1, c2 = spec.conv_channels
        wq = weight_quant_kwargs(spec.weight_bits)
        self.input_quant = qnn.QuantIdentity(act_quant=PixelQuant, return_quant_tensor=False)
        self.conv1 = qnn.QuantConv2d(spec.in_channels, c1, 3, padding=1, bias=False, **wq)
        self.conv2 = qnn.QuantConv2d(c1, c2, 3, padding=1, bias=False, **wq)
        self.fc1 = qnn.QuantLinear(spec.flat_features, spec.hidden, bias=False, **wq)
        self.fc2 = qnn.QuantLinear(spec.hidden, spec.num_classes, bias=False, **wq)

    def neurons(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        raise NotImplementedError

    def stages(self) -> list[Stage]:
        """The network's layers in data-flow order, for profiling and export."""
        n1, n2, n3 = self.neurons()
        snn = self.spec.kind == "snn"
        first_binary = snn and self.spec.encoding == "rate"
        return [Stage("conv1", self.conv1, n1, True, first_binary),
                Stage("conv2", self.conv2, n2, True, snn),
                Stage("fc1", self.fc1, n3, False, snn),
                Stage("fc2", self.fc2, None, False, snn)]


class SpikingCNN(Synapses):
    """Spiking CNN run for T timesteps; see ModelSpec for the topology.

    Direct encoding feeds the 8-bit image as a constant input current, so conv1 is computed
    once per image; rate encoding feeds Bernoulli spikes with P(spike) = p / 255 every step.
    logits = readout_t fc2(S3[t]), readout = mean or sum over t = 1..T.

    `forward` runs layer by layer over all timesteps: every stateless layer (conv, pool, fc,
    dropout) runs once on the [T*B, ...] stack, each LIF layer runs its fused recurrence over
    T, and feature maps are channels-last (faster pooling and convolution on CPUs). `step` is
    the same network for one timestep with explicit membranes (the exported graph). Both give
    identical logits (with fixed-point weights: exact integer sums in any order; tested).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.lif1, self.lif2, self.lif3 = LIF(spec), LIF(spec), LIF(spec)
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(spec.dropout)
        self.to(memory_format=torch.channels_last)

    def neurons(self) -> tuple[LIF, LIF, LIF]:
        return self.lif1, self.lif2, self.lif3

    def forward(self, images: Tensor) -> Tensor:
        steps = self.spec.timesteps
        pixels = self.input_quant(images)
        if self.spec.encoding == "direct":  # one input current, held for T steps
            s1, _ = self.lif1(self._current1(pixels), steps=steps)
        else:
            s1, _ = self.lif1(over_time(self._current1, rate_frames(pixels, steps)))
        s2, _ = self.lif2(over_time(self._current2, s1))
        s3, _ = self.lif3(over_time(self.fc1, FlattenMaps.apply(over_time(self._pool_after, s2))))
        return read_out(over_time(self.fc2, self.dropout(s3)).sum(0), self.spec)

    def step(self, current1: Tensor, membranes: list[Tensor | None]
             ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """One timestep from conv1's output current, op by op through `LIF.step`: the
        definition `forward` computes, and the exported step graph. Returns fc2's output, the
        new membranes and each LIF layer's spikes."""
        m1, m2, m3 = membranes
        s1, m1 = self.lif1.step(self._pool_before(current1), m1)
        s2, m2 = self.lif2.step(self._current2(s1), m2)
        s3, m3 = self.lif3.step(self.fc1(self._pool_after(s2).flatten(1)), m3)
        return self.fc2(self.dropout(s3)), [m1, m2, m3], [s1, s2, s3]

    def encode(self, frame: Tensor) -> Tensor:
        """conv1's input for one step's frame: the quantized image (direct encoding) or the
        spike frame itself (rate encoding). The exported step graph takes this frame."""
        return self.input_quant(frame) if self.spec.encoding == "direct" else frame

    def _current1(self, frames: Tensor) -> Tensor:
        """LIF1's input current (channels-last) from conv1's input."""
        return self._pool_before(self.conv1(frames).contiguous(memory_format=torch.channels_last))

    def _current2(self, spikes1: Tensor) -> Tensor:
        return self._pool_before(self.conv2(self._pool_after(spikes1)))

    def _pool_before(self, current: Tensor) -> Tensor:
        return self.pool(current) if self.spec.pool == "before_neuron" else current

    def _pool_after(self, spikes: Tensor) -> Tensor:
        return self.pool(spikes) if self.spec.pool == "after_neuron" else spikes


class QuantCNN(Synapses):
    """ANN baseline: the same topology with Brevitas QuantReLU of `weight_bits` bits."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.relu1, self.relu2, self.relu3 = (_relu(spec.weight_bits) for _ in range(3))
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(spec.dropout)

    def neurons(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        return self.relu1, self.relu2, self.relu3

    def forward(self, images: Tensor) -> Tensor:
        x = self.pool(self.relu1(self.conv1(self.input_quant(images))))
        x = self.pool(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(x.flatten(1)))
        return self.fc2(self.dropout(x))


def over_time(layer: nn.Module, sequence: Tensor) -> Tensor:
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


def _relu(bits: int) -> nn.Module:
    if bits == FLOAT_BITS:
        return nn.ReLU()
    return qnn.QuantReLU(**relu_quant_kwargs(bits), return_quant_tensor=False)


def build_model(spec: ModelSpec) -> SpikingCNN | QuantCNN:
    """The network a spec describes, with freshly initialised weights."""
    return SpikingCNN(spec) if spec.kind == "snn" else QuantCNN(spec)
