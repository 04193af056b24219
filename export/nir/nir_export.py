"""Export a trained spiking CNN as a NIR graph and run it back through sinabs (`make nir`).

    python -m export.nir.nir_export [runs/<name>] [--images 1000]

NIR (PyPI `nir`, the neuromorphic intermediate representation) carries a trained SNN to
snnTorch, Norse, sinabs, SpikingJelly, Rockpool and Lava, and onto Loihi 2, SpiNNaker2, Xylo
and Speck. Writes runs/<name>/export/model.nir (NIR's HDF5 file) and nir_check.json: the file
loaded back by sinabs, run on the first --images test images for T steps and compared with
our network (export/nir/nir_check.py). Exits with status 1 if that check fails.

The graph walks the network's stages (model.network.Synapses.stages):

    input (C, H, W) -> conv1 (Conv2d) -> conv1_lif (LIF) -> conv1_pool (SumPool2d 2x2)
      -> conv1_spikes (Threshold 0.5) -> conv2 -> ... -> conv2_spikes -> flatten (Flatten)
      -> fc1 (Affine) -> fc1_lif (LIF) -> fc2 (Affine) -> output (fc2's output every step)

- weights: the Brevitas layers' quantized weights as real values (integer x power-of-two scale,
  exact in float32; bits and scales in the graph's metadata); zero biases (ours have none). The
  fc layers are Affine, not Linear, because sinabs 3.1.3 imports Affine only.
- LIF, one timestep of length dt = DT = 1 (the unit of time is one step): ours is
  V[t] = beta V'[t-1] + I[t]; NIR's is continuous, tau dv/dt = (v_leak - v) + r I. Holding
  I[t] over the step (zero-order hold) gives the exact update
      v(t) = exp(-dt/tau) v(t - dt) + (1 - exp(-dt/tau)) r I[t],
  which is ours for  beta = exp(-dt/tau),  i.e. tau = dt / ln(1/beta)  (beta = 0.5: 1.4427 dt),
  and (1 - beta) r = 1,  i.e. r = 1 / (1 - beta)  (beta = 0.5: r = 2),  with v_leak = 0.
  A forward-Euler importer (beta = 1 - dt/tau: snnTorch, Norse) needs tau = dt / (1 - beta)
  (2 dt) for the same beta; each LIF node states it in its metadata (`tau_forward_euler`).
  v_threshold = theta; NIR's LIF resets by subtracting v_threshold, as ours (reset="subtract").
- a k x k max pool on binary spikes: max(s1, .., sk^2) = H(s1 + .. + sk^2 - 0.5), a sum pool
  (SumPool2d, kernel k, stride k) and a threshold at 0.5, exact because the sum is an integer.
- a k x k average pool on spikes: conv<i>_pool (AvgPool2d, kernel k, stride k, padding 0) and
  no threshold: the next layer receives the spike count / k^2, a real value, as ours.

What NIR cannot state (the membrane's fixed-point grid, the input quantizer, ...) is listed in
the graph's metadata under `not_represented` and printed by the command.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import tempfile
from pathlib import Path

import nir
import numpy as np
from torch import nn

from common.atomic import write_json, write_with
from common.errors import CheckFailed, UserError, run_cli
from common.runs import EXPORT_DIR
from export.nir.nir_check import check_round_trip, summary
from model.network import SpikingCNN, Synapse
from model.quantizers import PIXEL_SCALE
from model.spec import FLOAT_BITS, ModelSpec
from quant_training.trained_run import TrainedRun, add_run_arguments

GRAPH_FILE = "model.nir"
CHECK_FILE = "nir_check.json"
FORMAT = "qsnn-nir/1"
DT = 1.0  # one timestep, the unit of time of the graph
POOL_THRESHOLD = 0.5  # max of binary spikes = H(their sum - 0.5)


def lif_tau(beta: float, dt: float = DT) -> float:
    """NIR LIF time constant for our leak per step (zero-order hold):
    beta = exp(-dt/tau)  <=>  tau = dt / ln(1/beta)."""
    return dt / math.log(1.0 / beta)


def lif_r(beta: float) -> float:
    """NIR LIF resistance that adds I[t] unscaled under zero-order hold: (1 - beta) r = 1."""
    return 1.0 / (1.0 - beta)


def euler_tau(beta: float, dt: float = DT) -> float:
    """tau a forward-Euler importer needs for the same beta:
    beta = 1 - dt/tau  <=>  tau = dt / (1 - beta)."""
    return dt / (1.0 - beta)


def check_exportable(spec: ModelSpec) -> None:
    """A one-line UserError for a network NIR cannot carry."""
    if spec.kind != "snn":
        raise UserError(f"kind={spec.kind!r} is not a spiking network; NIR export needs "
                        f"kind='snn' (an ANN has no LIF neurons)")
    if spec.pool != "after_neuron":
        raise UserError(f"pool={spec.pool!r} is not supported; allowed: after_neuron (a max pool "
                        f"on real-valued currents has no NIR node; on spikes it is exact)")
    if not 0.0 < spec.beta < 1.0:
        raise UserError(f"beta={spec.beta} has no finite NIR LIF time constant "
                        f"(tau = dt / ln(1/beta)); allowed: 0 < beta < 1")


def not_represented(spec: ModelSpec) -> dict[str, str]:
    """What the network does that the NIR graph cannot state, by name, with the reason."""
    items = {}
    if spec.quantized_state:
        items["membrane_grid"] = (
            f"V[t] = Q(beta V'[t-1] + I[t]): our membrane is rounded to a {spec.state_bits}-bit "
            f"fixed-point grid (step {spec.state_step}, round half to even) and saturates at "
            f"[-{spec.state_max}, {spec.state_max} - step] every step; NIR's LIF membrane is real")
    items["input_quantizer"] = (
        f"the input is 8-bit fixed point, p * {PIXEL_SCALE} for pixel p = 0..255 (a lossless "
        f"quantizer on such inputs); NIR has no quantizer node: feed exactly these values")
    items["spike_at_threshold"] = (
        "our neurons spike when V >= theta (H(0) = 1), NIR's LIF when v > v_threshold; they "
        "differ only when V equals theta exactly (sinabs spikes at >=, as ours)")
    if spec.reset == "zero":
        items["reset_to_zero"] = (
            "our neurons reset to V' = 0 after a spike (reset='zero'); NIR's LIF subtracts "
            "v_threshold, so the graph's neurons reset by subtraction")
    if spec.encoding == "rate":
        items["rate_encoding"] = (
            "the input spikes are drawn on the host: a Bernoulli frame with P(spike) = p/255 "
            "every step; NIR has no spike generator")
    items["readout"] = (
        f"logits = the {spec.readout} over the T = {spec.timesteps} steps of the output (fc2), "
        f"run from zero state for each image; the graph emits fc2 every step and the host "
        f"takes the {spec.readout} (prediction = argmax). NIR's I node could integrate it, but "
        f"neither sinabs 3.1.3 nor snnTorch 1.0.0 imports I")
    return items


def nir_graph(model: SpikingCNN) -> nir.NIRGraph:
    """The network as a NIR graph (see the module docstring), metadata included."""
    spec = model.spec
    check_exportable(spec)
    shape: tuple[int, ...] = (spec.in_channels, spec.image_size, spec.image_size)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(shape))}
    for stage in model.stages():
        if isinstance(stage.synapse, nn.Linear) and len(shape) > 1:
            nodes["flatten"] = nir.Flatten(input_type=np.array(shape), start_dim=0, end_dim=-1)
            shape = (math.prod(shape),)
        synapse = _synapse_node(stage.synapse, shape)
        nodes[stage.name] = synapse
        shape = tuple(int(n) for n in synapse.output_type["output"])
        if stage.neuron is not None:
            nodes[f"{stage.name}_lif"] = _lif_node(spec, shape)
        if stage.pool is not None:
            pool, shape = _pool_node(stage.pool, shape)
            nodes[f"{stage.name}_pool"] = pool
            if isinstance(pool, nir.SumPool2d):
                nodes[f"{stage.name}_spikes"] = nir.Threshold(
                    threshold=np.full(shape, POOL_THRESHOLD, np.float32))
    nodes["output"] = nir.Output(output_type=np.array(shape))
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(nodes)),
                        metadata=_graph_metadata(model))


def _synapse_node(layer: Synapse, shape: tuple[int, ...]) -> nir.NIRNode:
    """Conv2d or Affine with the layer's quantized weights as real values, zero bias."""
    weight = real_weight(layer)
    bias = np.zeros(weight.shape[0], np.float32)
    if isinstance(layer, nn.Linear):
        return nir.Affine(weight=weight, bias=bias)
    return nir.Conv2d(input_shape=shape[1:], weight=weight, stride=layer.stride,
                      padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
                      bias=bias)


def real_weight(layer: Synapse) -> np.ndarray:
    """The Brevitas layer's quantized weight as real values (float weights as they are)."""
    quant = layer.quant_weight()
    return getattr(quant, "value", quant).detach().cpu().numpy().astype(np.float32)


def weight_scales(model: SpikingCNN) -> dict[str, float]:
    """Each weight layer's power-of-two scale: weight = integer x scale (fixed-point weights)."""
    return {stage.name: float(stage.synapse.quant_weight().scale.detach().flatten()[0])
            for stage in model.stages()}


def _lif_node(spec: ModelSpec, shape: tuple[int, ...]) -> nir.LIF:
    """NIR's LIF for a layer of `shape`, one value per neuron (see the module docstring)."""
    def full(value: float) -> np.ndarray:
        return np.full(shape, value, np.float32)

    metadata = {"beta": spec.beta, "dt": DT, "tau_forward_euler": euler_tau(spec.beta),
                "theta": spec.threshold, "reset": "subtract v_threshold",
                "state_bits": spec.state_bits, "state_step": spec.state_step}
    return nir.LIF(tau=full(lif_tau(spec.beta)), r=full(lif_r(spec.beta)), v_leak=full(0.0),
                   v_threshold=full(spec.threshold), metadata=metadata)


def _pool_node(pool: nn.MaxPool2d | nn.AvgPool2d, shape: tuple[int, ...]
               ) -> tuple[nir.SumPool2d | nir.AvgPool2d, tuple[int, ...]]:
    """The pool's window as a node (a max pool: SumPool2d, the threshold follows; an average
    pool: AvgPool2d), and its output shape H_out = (H + 2 padding - kernel) // stride + 1."""
    kernel, stride, padding = (np.broadcast_to(np.asarray(v), (2,)).copy()
                               for v in (pool.kernel_size, pool.stride, pool.padding))
    channels, *size = shape
    out = (channels, *((np.array(size) + 2 * padding - kernel) // stride + 1).tolist())
    kind = nir.AvgPool2d if isinstance(pool, nn.AvgPool2d) else nir.SumPool2d
    node = kind(kernel_size=kernel, stride=stride, padding=padding)
    node.input_type, node.output_type = {"input": np.array(shape)}, {"output": np.array(out)}
    return node, out


def _graph_metadata(model: SpikingCNN) -> dict:
    spec = model.spec
    discretisation = (
        f"LIF: tau dv/dt = (v_leak - v) + r I with the input held over each step dt = {DT} "
        f"(zero-order hold): v[t] = exp(-dt/tau) v[t-1] + (1 - exp(-dt/tau)) r I[t]; "
        f"tau = dt / ln(1/beta) = {lif_tau(spec.beta):.7g}, r = 1/(1 - beta) = "
        f"{lif_r(spec.beta):.7g}, v_leak = 0 give our V[t] = beta V'[t-1] + I[t] with "
        f"beta = {spec.beta}; forward Euler (beta = 1 - dt/tau) needs tau = "
        f"{euler_tau(spec.beta):.7g}")
    metadata = {"format": FORMAT, "spec": json.dumps(spec.to_dict()),
                "timesteps": spec.timesteps, "dt": DT, "time_unit": "one timestep",
                "discretisation": discretisation, "encoding": spec.encoding,
                "readout": spec.readout, "weight_bits": spec.weight_bits,
                "not_represented": not_represented(spec)}
    if spec.weight_bits != FLOAT_BITS:
        metadata["weight_scales"] = weight_scales(model)
    return metadata


def check_writable(folder: Path) -> None:
    """A one-line UserError unless `folder` exists or can be created and takes new files."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise UserError(f"cannot write to {folder}: {err.strerror or err}; "
                        f"choose a writable run folder") from None


def write_graph(graph: nir.NIRGraph, path: Path) -> None:
    """NIR's HDF5 file, written atomically."""
    write_with(path, lambda tmp: nir.write(tmp, graph))


def describe(path: Path, graph: nir.NIRGraph, spec: ModelSpec) -> str:
    """What was written: node counts, the LIF constants, and what NIR does not represent."""
    counts: dict[str, int] = {}
    for node in graph.nodes.values():
        kind = type(node).__name__
        if kind not in ("Input", "Output"):
            counts[kind] = counts.get(kind, 0) + 1
    kinds = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in counts.items())
    lines = [f"{path}: NIR {nir.version} graph, {kinds}; T={spec.timesteps}, dt={DT} step, "
             f"LIF tau={lif_tau(spec.beta):.5g} (beta={spec.beta}), r={lif_r(spec.beta):.5g}, "
             f"v_threshold={spec.threshold}, subtractive reset",
             "not represented in NIR (in the file's metadata, `not_represented`):"]
    lines += [f"  {name}: {reason}" for name, reason in graph.metadata["not_represented"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m export.nir.nir_export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.add_argument("--images", type=int, default=1000, help="test images for the round trip")
    args = p.parse_args(argv)
    if args.images < 1:
        raise UserError(f"images={args.images} must be >= 1")
    run = TrainedRun.open(args)
    check_exportable(run.spec)
    model = run.model
    assert isinstance(model, SpikingCNN), "check_exportable admits SNNs only"
    out = run.path / EXPORT_DIR
    check_writable(out)
    data = run.dataset(args.data_dir)
    graph = nir_graph(model)
    write_graph(graph, out / GRAPH_FILE)
    print(describe(out / GRAPH_FILE, graph, run.spec), file=sys.stderr)
    count = min(args.images, len(data.test))
    report = check_round_trip(out / GRAPH_FILE, model, data.test.images[:count],
                              data.test.labels[:count])
    report_path = out / CHECK_FILE
    write_json(report_path, report)
    print(f"{report_path}: {summary(report)}", file=sys.stderr)
    expected = ", ".join(report["vs_network"]["expected_differences"]) or "none"
    if not report["passed"]:
        raise CheckFailed(f"NIR round trip FAILED: {report['pass_rule']} does not hold; see "
                          f"{report_path}")
    if report["vs_network"]["prediction_agreement_pct"] < 100.0:
        print(f"note: the network itself agrees with the NIR reading on "
              f"{report['vs_network']['prediction_agreement_pct']:.2f} % of the predictions, "
              f"from what NIR cannot state: {expected} (see {report_path})", file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
