"""The round trip of `make nir`: the written NIR file loaded by sinabs, run, compared with ours.

Importer: sinabs' NIR node mapping (`sinabs.nir._import_sinabs_module`, what `sinabs.from_nir`
uses), wired by `nirtorch.nir_to_torch`. sinabs is chosen because its LIF is ours: with
norm_input=False it computes v[t] = exp(-1/tau) v[t-1] + I[t] (dt = 1, the zero-order-hold
update of export/nir/nir_export.py with r (1 - beta) = 1), spikes when v >= theta (H(0) = 1, as
ours) and resets by subtracting theta. snnTorch 1.0.0's `import_from_nir` is further away: it
maps NIR's LIF to Leaky(reset_mechanism="zero"), fixes dt = 1e-4 with forward-Euler
beta = 1 - dt/tau, spikes at mem > threshold, and imports neither SumPool2d nor Threshold.
What the check adds to sinabs, each stated in the report (LOADER_ADJUSTMENTS): the current
nirtorch entry point, NIR's Threshold, nirtorch's AvgPool2d, a flattened v_leak, and one spike
per step.

The first images are run for T steps through both, on the same input frames (direct encoding:
the image every step; rate encoding: the same Bernoulli draws), from zero state, and compared
by export.lockstep: predictions (argmax of the summed readout), the readout at every step,
and per LIF layer the spikes at every (image, timestep, neuron). Two references:
- the network itself: differences are expected only from what NIR cannot state
  (`expected_differences`: the membrane's fixed-point grid, a reset to zero);
- its NIR twin: the same weights with a float membrane and subtractive reset, what the graph
  states. With fixed-point weights, and average pools (if any) of k = 2, 4, 8, .. (the spike
  count / k^2 is dyadic), every sum is exact, so the twin and sinabs must agree on every
  spike: this checks the export itself (weights, layout, tau, r, threshold, pooling).
Passed: the NIR twin agrees with sinabs on every spike and prediction (every sum exact), or on
>= MIN_AGREEMENT_PCT of the predictions (float weights, or an average pool of k = 3, 5, ..:
float32 sums in another order may round differently; `inexact_sums`). The network's own
agreement is reported beside it with its causes (`expected_differences`), as information: NIR
cannot state the membrane grid or a reset to zero, so a lightly trained network with many
membranes near the threshold may disagree on a few predictions while the file says exactly
what NIR can.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from importlib.metadata import version
from pathlib import Path

import nir
import nirtorch
import numpy as np
import sinabs
import torch
from sinabs.activation import SingleSpike
from sinabs.layers import LIFSqueeze
from sinabs.nir import _import_sinabs_module
from torch import Tensor, nn

from export.lockstep import Engine, PyTorchEngine, Trace, lockstep, network_input
from model.layers import with_power_of_two_average_pool
from model.network import SpikingCNN, build_model
from model.spec import FLOAT_BITS, ModelSpec

MIN_AGREEMENT_PCT = 99.0
SINABS_NODES = (nir.Affine, nir.Conv2d, nir.Flatten, nir.LIF, nir.SumPool2d)
LOADER_ADJUSTMENTS = {
    "entry_point": "sinabs.from_nir calls the deprecated nirtorch.load, which maps a node "
                   "sinabs does not map to None and fails on it (KeyError: the max pool's "
                   "Threshold, an AvgPool2d); the same node mapping is wired with "
                   "nirtorch.nir_to_torch, which takes added mappings (the next two)",
    "threshold": "sinabs maps no nir.Threshold (the max pool's threshold at 0.5); the check "
                 "runs NIR's definition, z = 1 if v > threshold else 0",
    "avg_pool": "sinabs maps no nir.AvgPool2d (an average pool of spikes); nirtorch's default "
                "mapping runs it: torch.nn.AvgPool2d(kernel_size, stride, padding)",
    "v_leak": "sinabs tests any(node.v_leak) with Python's any(), which fails on a (C, H, W) "
              "array; the LIF node is handed over with v_leak (zeros) flattened",
    "spike_fn": "sinabs builds LIF layers with MultiSpike (floor(v/theta) spikes per step); "
                "NIR's LIF emits at most one: spike_fn = sinabs' SingleSpike (v >= theta)",
}
ESTIMATORS = {
    "prediction_agreement_pct": "100 x images whose argmax of the summed readout is the same "
                                "/ images",
    "spike_agreement_pct": "100 x (image, timestep, neuron) entries with the same spike / entries",
    "reference_spikes_per_image": "spikes of the layer over the T steps, mean over images",
    "engine_spikes_per_image": "the same in sinabs",
    "max_abs_logit_error": "max over images, steps and classes of |readout difference|",
    "leak_per_step": "sinabs' exp(-1/tau_mem) of the imported LIF layer (ours: beta)",
}


class NIRThreshold(nn.Module):
    """NIR's Threshold node: z = 1 if v > threshold else 0."""

    threshold: Tensor  # a buffer

    def __init__(self, node: nir.Threshold) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(node.threshold, dtype=torch.float32))

    def forward(self, v: Tensor) -> Tensor:
        return (v > self.threshold).to(v.dtype)


def load_with_sinabs(graph: nir.NIRGraph, timesteps: int) -> nn.Module:
    """The graph in sinabs layers: input [B*T, ...] with each image's T steps consecutive;
    returns (output [B*T, ...], nirtorch state). Call `sinabs.reset_states` between images."""
    node_map: dict[type, Callable[[nir.NIRNode], nn.Module]] = {
        kind: partial(_sinabs_module, timesteps=timesteps) for kind in SINABS_NODES}
    node_map[nir.Threshold] = NIRThreshold
    return nirtorch.nir_to_torch(graph, node_map).eval()  # nir.AvgPool2d: nirtorch's default


def _sinabs_module(node: nir.NIRNode, timesteps: int) -> nn.Module:
    """sinabs' module for `node`, with the v_leak and spike_fn adjustments (LOADER_ADJUSTMENTS)."""
    if isinstance(node, nir.LIF):
        node = copy.copy(node)
        node.v_leak = node.v_leak.ravel()
    module = _import_sinabs_module(node, batch_size=None, num_timesteps=timesteps)
    if isinstance(module, LIFSqueeze):
        module.spike_fn = SingleSpike
    return module


def _leak_per_step(layer: nn.Module) -> float:
    """A sinabs LIF layer's leak per step, exp(-1/tau_mem) (the largest, if per neuron)."""
    assert isinstance(layer, sinabs.layers.LIF), f"{type(layer).__name__} is not a sinabs LIF"
    return float(layer.alpha_mem_calculated.detach().max())


def lif_layers(graph: nir.NIRGraph) -> list[str]:
    """The graph's LIF nodes in data-flow order (the graph is a chain from `input`)."""
    after, names, node = dict(graph.edges), [], "input"
    while node in after:
        node = after[node]
        if isinstance(graph.nodes[node], nir.LIF):
            names.append(node)
    return names


def nir_twin(model: SpikingCNN) -> SpikingCNN:
    """The network as NIR states it: the same weights, a float membrane, subtractive reset."""
    twin = build_model(replace(model.spec, state_bits=FLOAT_BITS, reset="subtract"))
    assert isinstance(twin, SpikingCNN), "an SNN's spec builds a SpikingCNN"
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def expected_differences(spec: ModelSpec) -> dict[str, str]:
    """Why the graph in sinabs may differ from a network with this spec (empty: it may not)."""
    reasons = {}
    if spec.quantized_state:
        reasons["membrane_grid"] = (
            f"ours rounds V to the {spec.state_bits}-bit grid (step {spec.state_step}) and "
            f"saturates at +-{spec.state_max} every step, sinabs' membrane is float32: a neuron "
            f"near theta may spike one step earlier or later, and that spike propagates")
    if spec.reset == "zero":
        reasons["reset_to_zero"] = ("ours resets to 0 after a spike, the graph (NIR's LIF) "
                                    "subtracts theta: membranes differ after every spike")
    return {**reasons, **inexact_sums(spec)}


def inexact_sums(spec: ModelSpec) -> dict[str, str]:
    """Why float32 sums of the network may depend on their order (empty: every sum is exact,
    fixed-point weights times spikes, pixels or dyadic spike counts / k^2)."""
    reasons = {}
    if spec.weight_bits == FLOAT_BITS:
        reasons["float_weights"] = ("float weights: sums in another order round differently "
                                    "in float32")
    if not all(with_power_of_two_average_pool(layer) for layer in spec.weight_layers):
        reasons["average_pool_rounding"] = (
            "an average pool whose k is not a power of two: the spike count / k^2 is rounded "
            "in float32, so sums in another order may round differently")
    return reasons


class Sinabs(Engine):
    """The graph in sinabs as a lockstep engine: all T steps of a batch in one call, from
    zero state; the spikes of every LIF node and the readout per step (no membranes)."""

    name = "sinabs"

    def __init__(self, net: nn.Module, layers: list[str], spec: ModelSpec) -> None:
        self.net, self.layers, self.spec = net, layers, spec

    @torch.no_grad()
    def run(self, frames: np.ndarray) -> Trace:
        batch, steps = frames.shape[:2]
        sinabs.reset_states(self.net)
        seen: dict[str, Tensor] = {}
        hooks = [self.net.get_submodule(name).register_forward_hook(
            lambda module, args, out, name=name: seen.__setitem__(name, out))
            for name in self.layers]
        try:
            out, _ = self.net(network_input(self.spec, frames.reshape(-1, *frames.shape[2:])))
        finally:
            for hook in hooks:
                hook.remove()

        def per_step(x: Tensor) -> np.ndarray:
            return x.reshape(batch, steps, -1).numpy().astype(np.float64)

        return Trace(per_step(out), [per_step(seen[name]) for name in self.layers])


def check_round_trip(path: Path, model: SpikingCNN, images: Tensor, labels: Tensor) -> dict:
    """Load the NIR file at `path` with sinabs, run `images` (uint8 [N, C, H, W]) for T steps,
    compare with `model` and its NIR twin; the report dict (nir_check.json)."""
    start, spec = time.perf_counter(), model.spec
    graph = nir.read(path)
    layers = lif_layers(graph)
    net = load_with_sinabs(graph, spec.timesteps)
    twin = nir_twin(model)
    engines = [PyTorchEngine(model, "network"), PyTorchEngine(twin, "nir_twin"),
               Sinabs(net, layers, spec)]
    network, twin_report = lockstep(spec, images, engines, [("sinabs", "network"),
                                                            ("sinabs", "nir_twin")], labels)
    exact_expected = not inexact_sums(spec)
    passed = (twin_report["spikes_bit_exact"]
              and twin_report["identical_predictions"] == len(labels)) if exact_expected else (
        twin_report["prediction_agreement_pct"] >= MIN_AGREEMENT_PCT)
    leaks = {name: _leak_per_step(net.get_submodule(name)) for name in layers}
    return {
        "graph": path.name, "library": f"sinabs {version('sinabs')}",
        "loader": f"nirtorch {version('nirtorch')} nir_to_torch with sinabs' NIR node mapping",
        "loader_adjustments": LOADER_ADJUSTMENTS,
        "images": len(labels), "split": "test", "timesteps": spec.timesteps,
        "encoding": spec.encoding, "estimators": ESTIMATORS, "leak_per_step": leaks,
        "vs_network": {**network, "expected_differences": expected_differences(spec)},
        "vs_nir_twin": {"network": "the same weights, float32 membrane, subtractive reset",
                        **twin_report, "expected_differences": expected_differences(twin.spec)},
        "passed": passed,
        "pass_rule": ("the NIR twin's spikes and predictions identical" if exact_expected
                      else f"the NIR twin's predictions agree >= {MIN_AGREEMENT_PCT} %"),
        "vs_network_is": "information: what NIR cannot state (expected_differences)",
        "seconds": time.perf_counter() - start,
    }


def summary(report: dict) -> str:
    """The report in one line."""
    network, twin = report["vs_network"], report["vs_nir_twin"]
    layers = ", ".join(f"{name} {layer['spike_agreement_pct']:.3f} %"
                       for name, layer in network["layers"].items())
    images = report["images"]
    return (f"round trip through {report['library']}, {images} test images x "
            f"T={report['timesteps']}: predictions agree "
            f"{network['prediction_agreement_pct']:.2f} % ({network['identical_predictions']}/"
            f"{images}; accuracy ours {network['reference_accuracy_pct']:.2f} %, sinabs "
            f"{network['engine_accuracy_pct']:.2f} %), spikes agree {layers}; NIR twin (float "
            f"membrane): spikes identical {twin['spikes_bit_exact']}, predictions "
            f"{twin['identical_predictions']}/{images}; passed {report['passed']}")
