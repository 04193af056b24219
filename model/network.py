"""The seed spiking CNN and its ANN baseline, both built from a ModelSpec."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from brevitas import nn as qnn
from torch import Tensor, nn

from model.lif import LIF
from model.quantizers import PIXEL_FULL_SCALE, PixelQuant, relu_quant_kwargs, weight_quant_kwargs
from model.spec import FLOAT_BITS, ModelSpec


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
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.lif1, self.lif2, self.lif3 = LIF(spec), LIF(spec), LIF(spec)
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(spec.dropout)

    def neurons(self) -> tuple[LIF, LIF, LIF]:
        return self.lif1, self.lif2, self.lif3

    def forward(self, images: Tensor) -> Tensor:
        pixels = self.input_quant(images)
        direct_current = self.conv1(pixels) if self.spec.encoding == "direct" else None
        membranes: list[Tensor | None] = [None, None, None]
        total = 0.0
        for _ in range(self.spec.timesteps):
            current1 = direct_current
            if current1 is None:
                current1 = self.conv1(rate_frame(pixels))
            logits, membranes = self.step(current1, membranes)
            total = total + logits
        return total / self.spec.timesteps if self.spec.readout == "mean" else total

    def encode(self, frame: Tensor) -> Tensor:
        """conv1's input for one step's frame: the quantized image (direct encoding) or the
        spike frame itself (rate encoding). The exported step graph takes this frame."""
        return self.input_quant(frame) if self.spec.encoding == "direct" else frame

    def step(self, current1: Tensor, membranes: list[Tensor | None]) -> tuple[Tensor, list[Tensor]]:
        """One timestep from conv1's output current; returns fc2's output and new membranes."""
        m1, m2, m3 = membranes
        s1, m1 = self._conv_neuron(current1, self.lif1, m1)
        s2, m2 = self._conv_neuron(self.conv2(s1), self.lif2, m2)
        s3, m3 = self.lif3(self.fc1(s2.flatten(1)), m3)
        return self.fc2(self.dropout(s3)), [m1, m2, m3]

    def _conv_neuron(self, current: Tensor, lif: LIF, membrane: Tensor | None):
        if self.spec.pool == "before_neuron":
            return lif(self.pool(current), membrane)
        spikes, membrane = lif(current, membrane)
        return self.pool(spikes), membrane


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


def rate_frame(pixels: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Rate encoding: one Bernoulli spike frame, P(spike) = p / 255 for pixel value p."""
    return torch.bernoulli(pixels / PIXEL_FULL_SCALE, generator=generator)


def _relu(bits: int) -> nn.Module:
    if bits == FLOAT_BITS:
        return nn.ReLU()
    return qnn.QuantReLU(**relu_quant_kwargs(bits), return_quant_tensor=False)


def build_model(spec: ModelSpec) -> SpikingCNN | QuantCNN:
    """The network a spec describes, with freshly initialised weights."""
    return SpikingCNN(spec) if spec.kind == "snn" else QuantCNN(spec)
