"""Instrumentation with forward hooks: spikes per LIF layer, and the full workload probe."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.lif import LIF
from model.network import Synapses


class SpikeCounter:
    """Total output spikes per LIF layer (summed over images and timesteps), kept on device,
    and each layer's neuron count. Use as a context manager around forward passes.
    A LIF returns (spikes [T, B, ...], membrane).
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, LIF)}
        self.totals: dict[str, Tensor] = {}
        self.neurons: dict[str, int] = {}
        self._handles: list = []

    def __enter__(self) -> SpikeCounter:
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def count(module, inputs, outputs) -> None:
            spikes = outputs[0].detach()
            self.totals[name] = self.totals.get(name, 0) + spikes.sum(dtype=torch.float64)
            self.neurons[name] = spikes[0, 0].numel()
        return count

    def per_image(self, num_images: int) -> dict[str, float]:
        return {name: float(total) / num_images for name, total in self.totals.items()}


def fanout_map(layer: nn.Module, input_shape: torch.Size, output_shape: torch.Size) -> Tensor:
    """How many outputs each input element of `layer` drives (its exact fan-out).

    Linear: out_features for every input. Conv2d (groups 1, dilation 1): C_out times the number
    of output positions whose receptive field holds the input position, i.e. the transposed
    convolution of an all-ones output map with an all-ones kernel; at padded borders this is
    less than C_out * k * k. Returns a tensor broadcastable to one input sample.
    """
    if isinstance(layer, nn.Linear):
        return torch.full((input_shape[-1],), float(layer.out_features))
    if not isinstance(layer, nn.Conv2d) or layer.groups != 1 or layer.dilation != (1, 1) \
            or isinstance(layer.padding, str):
        raise TypeError(f"no fan-out rule for {type(layer).__name__}")
    kernel = torch.ones(1, 1, *layer.kernel_size)
    # input rows the strided windows never reach (H + 2p - k not a multiple of s) sit at the
    # far edge: output_padding restores them, with fan-out 0
    spans = [(out - 1) * s - 2 * p + k for out, s, p, k in zip(
        output_shape[-2:], layer.stride, layer.padding, layer.kernel_size, strict=True)]
    extra = tuple(int(size - span) for size, span in zip(input_shape[-2:], spans, strict=True))
    reach = F.conv_transpose2d(torch.ones(1, 1, *output_shape[-2:]), kernel, stride=layer.stride,
                               padding=layer.padding, output_padding=extra)
    return reach[0] * layer.out_channels


@dataclass
class _Sums:
    """Running sums over images of one count: sum x and sum x^2 (kept on device), and the
    number of images."""

    total: Tensor
    squares: Tensor
    images: int = 0


class WorkloadProbe:
    """Per-image counts for every stage and timestep of a network, from forward hooks.

    For each Stage (weight layer + neuron) and call t of its weight layer:
      input_events = nonzero inputs;
      synops       = sum_i x_i * fanout_i   if the stage's input is binary (accumulates),
      dense_macs   = sum_i fanout_i          otherwise (every connection is computed);
    and for each timestep t of its neuron: output_events = nonzero outputs (spikes for a LIF);
    and for each call t of its k x k pool (stride k) with P pooled outputs:
      pool_ops     = P (k^2 - 1)                  (a dense pool's two-input operations),
      pool_events  = nonzero inputs inside the windows (an event-driven pool's operations).
    A call may carry several timesteps: a weight layer's input [n*B, ...] holds n of them (B
    images per forward pass), a LIF's spikes are [T, B, ...]. Counts are accumulated as sums
    and sums of squares over images (no host syncs), so `summary()` gives the mean and
    standard deviation per image.
    """

    def __init__(self, model: Synapses) -> None:
        self.model = model
        self.stages = model.stages()
        self.shapes: dict[str, dict[str, list[int]]] = {}  # stage -> input/output/neuron shape
        self.fanouts: dict[str, Tensor] = {}  # stage -> fan-out of one input sample
        self._sums: dict[tuple[str, str, int], _Sums] = {}
        self._calls: dict[str, int] = {}
        self._batch = 0  # images in the current forward pass
        self._handles: list = []

    def __enter__(self) -> WorkloadProbe:
        self._handles.append(self.model.register_forward_pre_hook(self._new_forward))
        for stage in self.stages:
            self._handles.append(stage.synapse.register_forward_hook(self._synapse_hook(stage)))
            if stage.neuron is not None:
                self._handles.append(stage.neuron.register_forward_hook(self._neuron_hook(stage)))
            if stage.pool is not None:
                self._handles.append(stage.pool.register_forward_hook(self._pool_hook(stage)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _new_forward(self, module, inputs) -> None:
        self._calls.clear()
        self._batch = len(inputs[0])

    def _tick(self, key: str) -> int:
        t = self._calls.get(key, 0)
        self._calls[key] = t + 1
        return t

    def _synapse_hook(self, stage):
        def hook(module, inputs, output) -> None:
            x = inputs[0].detach()
            shapes = self.shapes.setdefault(stage.name, {})
            shapes.update(input=list(x.shape[1:]), output=list(output.shape[1:]))
            fanout = self._fanout(stage.name, module, x.shape, output.shape).to(x.device)
            for x_t in x.unflatten(0, (-1, self._batch)):
                t = self._tick(f"{stage.name}/synapse")
                self._add(stage.name, "input_events", t, (x_t != 0).flatten(1).sum(1))
                if stage.binary_input:
                    self._add(stage.name, "synops", t, (x_t * fanout).flatten(1).sum(1))
                else:
                    macs = fanout.expand(x_t.shape[1:]).sum().expand(x_t.shape[0])
                    self._add(stage.name, "dense_macs", t, macs)
        return hook

    def _neuron_hook(self, stage):
        def hook(module, inputs, output) -> None:
            steps = output[0] if isinstance(output, tuple) else output[None]  # LIF or ReLU
            self.shapes.setdefault(stage.name, {})["neuron"] = list(steps.shape[2:])
            for y_t in steps.detach():
                t = self._tick(f"{stage.name}/neuron")
                self._add(stage.name, "output_events", t, (y_t != 0).flatten(1).sum(1))
        return hook

    def _pool_hook(self, stage):
        k = stage.layer.pool.size

        def hook(module, inputs, output) -> None:
            height, width = output.shape[-2] * k, output.shape[-1] * k  # rows the windows read
            windows = inputs[0].detach()[..., :height, :width]
            dense = float(output[0].numel() * (k * k - 1))
            for x_t in windows.unflatten(0, (-1, self._batch)):
                t = self._tick(f"{stage.name}/pool")
                self._add(stage.name, "pool_events", t, (x_t != 0).flatten(1).sum(1))
                self._add(stage.name, "pool_ops", t, x_t.new_full((len(x_t),), dense))
        return hook

    def _fanout(self, name: str, module, input_shape, output_shape) -> Tensor:
        if name not in self.fanouts:
            self.fanouts[name] = fanout_map(module, input_shape, output_shape)
        return self.fanouts[name]

    def _add(self, stage: str, metric: str, t: int, per_image: Tensor) -> None:
        v = per_image.double()
        sums = self._sums.setdefault((stage, metric, t), _Sums(v.new_zeros(()), v.new_zeros(())))
        sums.total += v.sum()
        sums.squares += (v * v).sum()
        sums.images += len(v)

    def summary(self) -> dict[str, dict[str, dict[int, tuple[float, float]]]]:
        """{stage: {metric: {t: (mean per image, std across images)}}}, t counted from 0."""
        out: dict = {}
        for (stage, metric, t), sums in sorted(self._sums.items(), key=lambda item: item[0]):
            mean = float(sums.total) / sums.images
            var = max(float(sums.squares) / sums.images - mean * mean, 0.0)
            out.setdefault(stage, {}).setdefault(metric, {})[t] = (mean, var ** 0.5)
        return out
