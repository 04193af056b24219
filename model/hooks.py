"""Instrumentation: count the spikes each LIF layer emits, with forward hooks."""
from __future__ import annotations

from torch import Tensor, nn

from model.lif import LIF


class SpikeCounter:
    """Total output spikes per LIF layer (summed over images and timesteps), kept on device,
    and each layer's neuron count. Use as a context manager around forward passes.
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
            self.totals[name] = self.totals.get(name, 0) + spikes.sum()
            self.neurons[name] = spikes[0].numel()
        return count

    def per_image(self, num_images: int) -> dict[str, float]:
        return {name: float(total) / num_images for name, total in self.totals.items()}
