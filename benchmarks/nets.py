"""The seed spiking CNN built with each library under comparison, from one ModelSpec.

Every version computes the same function: LIF V = beta V' + I, S = H(V - theta), V' = V -
theta S (reset by subtraction, not detached), atan surrogate, conv1 computed once per image
(direct encoding), mean readout over T. snnTorch: `Leaky(reset_delay=False)` (its default
delays the reset by one step). SpikingJelly: multi-step `LIFNode(tau=1/(1-beta),
decay_input=False, v_reset=None)`, its own dropout (one mask for all timesteps). The baselines
are written the way each library's tutorials write a CNN; tests/test_bench.py checks that, with
shared weights, all of them produce our logits and gradients.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.errors import check_choice
from model.layers import is_seed_geometry
from model.network import SpikingCNN, build_model
from model.spec import ModelSpec

OURS = ("qsnn", "qsnn-int8")
SJ_CUDA_GRAPH = "spikingjelly-cudagraph"  # SpikingJelly's network, its CUDA-graph training mode
BASELINES = ("snntorch", "spikingjelly", SJ_CUDA_GRAPH)
LIBRARIES = (*OURS, *BASELINES)
WEIGHTS = ("conv1", "conv2", "fc1", "fc2")


def bench_spec(timesteps: int) -> ModelSpec:
    """Float weights and membranes, atan surrogate (identical in all three libraries)."""
    return ModelSpec(timesteps=timesteps, weight_bits=32, state_bits=32, surrogate="atan",
                     surrogate_slope=2.0)


def build(library: str, spec: ModelSpec) -> nn.Module:
    """images [B, C, H, W] -> logits [B, classes], for `library` in LIBRARIES."""
    check_choice("library", library, LIBRARIES)
    if library == "qsnn":
        return build_model(spec)
    if library == "qsnn-int8":  # what `make qat` trains by default: 8-bit weights and state
        return build_model(replace(spec, weight_bits=8, state_bits=8))
    if spec.reset != "subtract" or spec.surrogate != "atan" or spec.pool != "after_neuron":
        raise ValueError("baselines implement reset=subtract, surrogate=atan, pool=after_neuron")
    return SnnTorchCNN(spec) if library == "snntorch" else SpikingJellyCNN(spec)


def copy_weights(source: SpikingCNN, target: nn.Module) -> None:
    """Give a baseline our float weights (layer names are shared)."""
    with torch.no_grad():
        for name in WEIGHTS:
            getattr(target, name).weight.copy_(getattr(source, name).weight)


def _layers(spec: ModelSpec, conv, linear) -> dict[str, nn.Module]:
    """The seed topology's layers (conv<c1>,pool,conv<c2>,pool,fc<h>), which the baselines
    implement; a ValueError for another layer list."""
    layers = spec.weight_layers
    if [(layer.name, layer.pooled) for layer in layers] != [
            ("conv1", True), ("conv2", True), ("fc1", False), ("fc2", False)] or not all(
            map(is_seed_geometry, layers)):
        raise ValueError("baselines implement layers=conv<c1>,pool,conv<c2>,pool,fc<h> only")
    c1, c2, hidden = (layer.width for layer in layers[:3])
    return {"conv1": conv(spec.in_channels, c1, 3, padding=1, bias=False),
            "conv2": conv(c1, c2, 3, padding=1, bias=False),
            "fc1": linear(math.prod(layers[2].input_shape), hidden, bias=False),
            "fc2": linear(hidden, spec.num_classes, bias=False)}


class SnnTorchCNN(nn.Module):
    """snnTorch: a Python loop over T with one `Leaky` call per layer and step."""

    def __init__(self, spec: ModelSpec) -> None:
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        self.spec = spec
        self.conv1, self.conv2, self.fc1, self.fc2 = _layers(spec, nn.Conv2d, nn.Linear).values()
        grad = surrogate.atan(alpha=spec.surrogate_slope)
        self.lif1, self.lif2, self.lif3 = (
            snn.Leaky(beta=spec.beta, threshold=spec.threshold, spike_grad=grad,
                      reset_mechanism="subtract", reset_delay=False) for _ in range(3))
        self.dropout = nn.Dropout(spec.dropout)

    def forward(self, images: Tensor) -> Tensor:
        mem1, mem2, mem3 = self.lif1.reset_mem(), self.lif2.reset_mem(), self.lif3.reset_mem()
        current1 = self.conv1(images)
        total: Tensor | float = 0.0
        for _ in range(self.spec.timesteps):
            spikes, mem1 = self.lif1(current1, mem1)
            spikes, mem2 = self.lif2(self.conv2(F.max_pool2d(spikes, 2)), mem2)
            spikes, mem3 = self.lif3(self.fc1(F.max_pool2d(spikes, 2).flatten(1)), mem3)
            total = total + self.fc2(self.dropout(spikes))
        assert isinstance(total, Tensor), "a spec has timesteps >= 1"
        return total / self.spec.timesteps


class SpikingJellyCNN(nn.Module):
    """SpikingJelly, multi-step mode: stateless layers on [T*B] stacks, LIF over [T, B, ...]."""

    def __init__(self, spec: ModelSpec) -> None:
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        super().__init__()
        self.spec = spec
        self.functional = functional
        self.conv1, self.conv2, self.fc1, self.fc2 = _layers(
            spec, layer.Conv2d, layer.Linear).values()
        lif = lambda: neuron.LIFNode(  # noqa: E731
            tau=1.0 / (1.0 - spec.beta), decay_input=False, v_threshold=spec.threshold,
            v_reset=None, surrogate_function=surrogate.ATan(alpha=spec.surrogate_slope),
            detach_reset=False, step_mode="m")
        self.body = nn.Sequential(
            lif(), layer.MaxPool2d(2), self.conv2, lif(), layer.MaxPool2d(2), layer.Flatten(),
            self.fc1, lif(), layer.Dropout(spec.dropout), self.fc2)
        functional.set_step_mode(self.body, "m")

    def forward(self, images: Tensor) -> Tensor:
        self.functional.reset_net(self.body)
        current1 = self.conv1(images)  # single-step call: conv1 once per image
        sequence = current1.unsqueeze(0).repeat(self.spec.timesteps, 1, 1, 1, 1)
        return self.body(sequence).mean(0)
