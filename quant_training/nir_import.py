"""Import a NIR graph as a float run of this toolkit (`make import-nir`).

    python -m quant_training.nir_import model.nir --dataset mnist --name <run> [--timesteps T]
        [--dt 1e-4 --discretisation euler] [--pixel-divisor 255]

Reads a NIR graph (PyPI `nir`; written by snnTorch's `export_to_nir` or our own `make nir`;
sinabs 3.1.3, Norse 1.1.0 and Rockpool 3.1.0 write no CNN file nir 1.0.8 reads, see the README),
maps it onto a ModelSpec (layer list, beta, threshold, reset, readout)
with float weights and a float membrane (weight_bits = state_bits = 32), and writes
runs/<name>/ as training does: best.pt (quant_training/checkpoint.py, the mapping under
`nir_import`), metrics.json (the test accuracy) and the workload profile. `make eval`, `make qat
FROM=runs/<name>` (quantization-aware fine-tuning) and `python -m quant_training.ptq` read it.

The graph must be a chain Input -> ... -> Output in the grammar of model/layers.py:

    (Conv2d -> neuron [-> pool])* -> [Flatten] -> (Linear|Affine -> neuron)* -> Linear|Affine
      [-> LIF | IF | CubaLIF (a spiking output) | I (an integrating readout)] -> Output

    neuron = LIF | IF | CubaLIF,  pool = AvgPool2d | SumPool2d [-> Threshold (a max pool)]

Mappings (each also stated in the checkpoint's `nir_import.conversions`):
- time: one of our steps is dt of the graph's time (`--dt`, default 1: our own files' unit).
  LIF's tau dv/dt = (v_leak - v) + r I becomes V[t] = beta V'[t-1] + g I[t] with
      discretisation "exp" (zero-order hold, the inverse of `make nir`): beta = exp(-dt/tau),
          g = (1 - beta) r;
      discretisation "euler" (forward Euler: snnTorch, dt = 1e-4): beta = 1 - dt/tau,
          g = (dt/tau) r.
  IF (dv/dt = r I): beta = 1, g = r dt. CubaLIF: only without a synaptic leak (its current
  decays to 0 within one step, alpha = 0: snnTorch's Synaptic with alpha = 0), g = g_syn g_mem
  with g_syn = (1 - alpha) w_in (exp) or (dt/tau_syn) w_in (euler). v_leak must be 0.
- one beta for the network (ModelSpec.beta): tau, r, v_threshold, v_reset must be the same for
  every neuron of a layer and beta the same in every layer; else one line naming the node.
- threshold: ours is one theta for all layers. Every layer l is rescaled to
  theta = 2^round(log2 theta_1) (theta_1: the first layer's v_threshold, a power of two so
  post-training quantization puts it on the membrane grid exactly): its synapse's weights are
  multiplied by g_l theta / theta_l. The membrane is linear in (weights, threshold) under both
  resets, so every spike is unchanged.
- reset: NIR's LIF sets v = v_reset on a spike: v_reset = 0 is our reset="zero" (V'[t] =
  V[t] (1 - S[t]), snnTorch's Leaky(reset_mechanism="zero")); a graph written by our `make nir`
  states "subtract v_threshold" in each LIF node's metadata and imports as reset="subtract".
  snnTorch's export writes v_reset = 0 whatever the Leaky's reset_mechanism: its default,
  "subtract", which subtracts theta from the next step's membrane before adding the input
  without decaying it (U[t] = beta U[t-1] + I[t] - theta S[t-1]), is neither NIR's reset nor
  ours (ours decays the subtracted theta: beta (V[t-1] - theta S[t-1]) + I[t]), and cannot be
  reproduced: train with reset_mechanism="zero".
- spike: NIR (and snnTorch) spike when v > v_threshold, ours when V >= theta: they differ only
  when V equals theta exactly.
- pools after a conv's neuron, k x k, stride k, no padding: AvgPool2d is avgpool<k>; SumPool2d
  is avgpool<k> with the next layer's weights times k^2; a pool followed by NIR's Threshold
  z = H(x - t) with 0 <= t < 1 (sum) or < 1/k^2 (average) is the max of binary spikes,
  maxpool<k> (how `make nir` writes our max pools).
- readout: ours is the readout fc's output summed over the T steps (`readout`: mean = / T), from
  zero state for each image, the image held at the input every step (direct encoding). An
  Output after the last Linear/Affine: that. A spiking output (the last fc followed by a LIF,
  snnTorch's usual fc-LIF): that fc becomes a hidden fc<classes> with its neuron and the
  readout an identity matrix summed over T (`readout` sum): logits = the output spike counts,
  argmax as snnTorch's spike-count prediction. Counts, not rates: `make qat FROM=`'s
  cross-entropy on rates in [0, 1] cannot reach a confident softmax and kept pushing every
  class (measured on the README's snnTorch network, 1 epoch of QAT: 89.98 % with rates vs
  97.38 % with counts). An I node: readout "sum" with g = r dt folded into its weights.
  A leaky LI node is refused (its last value weights the steps by beta^(T - t)).
- input: ours feeds pixel p as p / 256 (model.quantizers.PIXEL_SCALE). A network trained on
  p / 255 (torchvision's ToTensor) imports with `--pixel-divisor 255`: its first layer's
  weights are multiplied by 256 / 255. Normalisation (mean, std) needs a bias: not supported.
- biases: our layers have none (every current an exact fixed-point sum): a nonzero bias is
  refused.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch

from common.atomic import write_json
from common.errors import UserError, check_choice, run_cli
from common.runs import CHECKPOINT, METRICS
from model.network import QuantCNN, SpikingCNN, build_model
from model.spec import FLOAT_BITS, ModelSpec
from quant_training.checkpoint import save_checkpoint
from quant_training.config import TrainConfig, shape_from_dataset
from quant_training.data import load_dataset, resolve_data_dir
from quant_training.datasets import DATASETS
from quant_training.profile import profile_model, write_profile
from quant_training.train import check_new_run

DISCRETISATIONS = ("exp", "euler")
PIXEL_DIVISORS = (256, 255)
OUR_FORMAT = "qsnn-nir/1"  # export.nir.nir_export.FORMAT (not imported: that module needs sinabs)
OUR_RESET = "subtract v_threshold"
SYNAPSES = (nir.Conv2d, nir.Linear, nir.Affine)
NEURONS = (nir.LIF, nir.IF, nir.CubaLIF)
POOLS = {nir.AvgPool2d: "avg", nir.SumPool2d: "sum"}
SUPPORTED = ("Input, Output, Conv2d, Linear, Affine, LIF, IF, CubaLIF, I, AvgPool2d, SumPool2d, "
             "Threshold (after a pool), Flatten")
REL_TOL = 1e-6  # parameters of one layer equal within float32 rounding


@dataclass(frozen=True)
class Timing:
    """How a graph's continuous time becomes our steps: one step is `dt`."""

    dt: float = 1.0
    discretisation: str = "exp"

    def __post_init__(self) -> None:
        check_choice("discretisation", self.discretisation, DISCRETISATIONS)
        if not self.dt > 0:
            raise UserError(f"dt={self.dt} must be > 0 (one step in the graph's unit of time)")

    def leak(self, tau: float) -> float:
        """beta per step for a time constant tau: exp(-dt/tau) or 1 - dt/tau."""
        return math.exp(-self.dt / tau) if self.discretisation == "exp" else 1 - self.dt / tau

    def gain(self, tau: float) -> float:
        """What one step adds of a held input, per unit of r I / tau: 1 - beta or dt/tau."""
        return 1 - self.leak(tau) if self.discretisation == "exp" else self.dt / tau

    def describe(self) -> str:
        if self.discretisation == "exp":
            return (f"zero-order hold at dt = {self.dt:g} per step: beta = exp(-dt/tau), "
                    f"input gain (1 - beta) r")
        return f"forward Euler at dt = {self.dt:g} per step: beta = 1 - dt/tau, input gain r dt/tau"


@dataclass
class Neuron:
    """A neuron node as our LIF: V[t] = beta V'[t-1] + gain I[t], spike at V >= theta."""

    name: str
    beta: float
    gain: float
    theta: float
    reset: str
    note: str


@dataclass
class Stage:
    """A weight node and what follows it: its neuron and its pool."""

    name: str
    node: nir.NIRNode
    neuron: Neuron | None = None
    pool: tuple[str, int] | None = None  # ("max" | "avg", k)
    pool_names: list[str] = field(default_factory=list)
    input_factor: float = 1.0  # the next layer's weights x this (a sum pool: k^2)
    readout: str = "mean"
    readout_gain: float = 1.0  # an I node's r dt

    @property
    def weight(self) -> np.ndarray:
        return np.asarray(self.node.weight, np.float64)


@dataclass
class Imported:
    """The graph as a float network: its spec, weights by our layer names, the mapping."""

    spec: ModelSpec
    weights: dict[str, np.ndarray]
    conversions: dict[str, Any]


def read_graph(path: Path) -> nir.NIRGraph:
    """The NIR file at `path`, or one line saying it is not one."""
    if not path.is_file():
        raise UserError(f"NIR file {path} does not exist")
    try:
        graph = nir.read(path)
    except Exception as err:  # h5py's OSError for non-HDF5, KeyError/ValueError for other HDF5
        raise UserError(f"{path} is not a NIR file ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else 'unreadable'})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise UserError(f"{path} holds a single NIR node ({type(graph).__name__}), not a graph")
    return graph


def chain(graph: nir.NIRGraph) -> list[str]:
    """The node names from the Input to the Output, refusing what is not a chain (one line)."""
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise UserError(f"node {name!r} is a nested graph (snnTorch writes a recurrent "
                            f"RLeaky/RSynaptic so); the layer list has no recurrent layers")
    successors: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for pre, post in graph.edges:
        for end in (pre, post):
            if end not in graph.nodes:
                raise UserError(f"edge {pre} -> {post} names no node {end!r}")
        successors[pre].append(post)
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise UserError(f"the graph has {len(inputs)} Input nodes {inputs}; one is needed")
    back = _back_edge(successors, inputs[0], [], set())
    if back:
        raise UserError(f"edge {back[0]} -> {back[1]} is recurrent (it closes a loop back to "
                        f"{back[1]!r}); the layer list is feed-forward")
    order, name = [inputs[0]], inputs[0]
    while successors[name]:
        if len(successors[name]) > 1:
            raise UserError(f"node {name!r} feeds {successors[name]}: a branch; the layer list "
                            f"is a chain")
        name = successors[name][0]
        order.append(name)
    if not isinstance(graph.nodes[name], nir.Output):
        raise UserError(f"the chain from {inputs[0]!r} ends at {name!r} "
                        f"({type(graph.nodes[name]).__name__}), not at an Output")
    left = sorted(set(graph.nodes) - set(order))
    if left:
        raise UserError(f"node(s) {left} are not on the chain from {inputs[0]!r} to {name!r}; "
                        f"the layer list is a chain")
    return order


def _back_edge(successors: dict[str, list[str]], name: str, path: list[str],
               done: set[str]) -> tuple[str, str] | None:
    """The first edge (depth first from `name`) that leads back to a node on the path to it."""
    path.append(name)
    for post in successors[name]:
        if post in path:
            return name, post
        if post not in done:
            back = _back_edge(successors, post, path, done)
            if back:
                return back
    done.add(path.pop())
    return None


def uniform(name: str, what: str, values: Any) -> float:
    """The one value of a per-neuron parameter, or one line saying it varies within the layer."""
    array = np.asarray(values, np.float64).ravel()
    if array.size == 0:
        raise UserError(f"node {name!r}: {what} is empty")
    low, high = float(array.min()), float(array.max())
    if not math.isclose(low, high, rel_tol=REL_TOL, abs_tol=0.0):
        raise UserError(f"node {name!r}: {what} varies within the layer ({low:g} .. {high:g}); "
                        f"ModelSpec has one value per network (a per-neuron {what} is not "
                        f"supported)")
    return high


def neuron_of(name: str, node: nir.NIRNode, timing: Timing, ours: bool) -> Neuron:
    """A LIF, IF or CubaLIF node as our LIF (see the module docstring)."""
    theta = uniform(name, "v_threshold", node.v_threshold)
    if theta <= 0:
        raise UserError(f"node {name!r}: v_threshold={theta:g} must be > 0")
    if isinstance(node, nir.IF):
        beta, gain = 1.0, uniform(name, "r", node.r) * timing.dt
        note = f"IF: beta = 1, gain = r dt = {gain:.7g}"
    else:
        if uniform(name, "v_leak", node.v_leak) != 0:
            raise UserError(f"node {name!r}: v_leak={uniform(name, 'v_leak', node.v_leak):g}; "
                            f"our neuron leaks towards 0 (v_leak = 0)")
        tau = uniform(name, "tau" if isinstance(node, nir.LIF) else "tau_mem",
                      node.tau if isinstance(node, nir.LIF) else node.tau_mem)
        beta, gain = timing.leak(tau), timing.gain(tau) * uniform(name, "r", node.r)
        note = f"tau = {tau:.7g}: beta = {beta:.7g}, gain = {gain:.7g}"
        if isinstance(node, nir.CubaLIF):
            tau_syn = uniform(name, "tau_syn", node.tau_syn)
            alpha = timing.leak(tau_syn)
            if abs(alpha) > REL_TOL:
                raise UserError(f"node {name!r}: CubaLIF with a synaptic leak alpha = "
                                f"{alpha:.6g} per step (tau_syn={tau_syn:g}); our neuron has no "
                                f"synaptic current state (alpha = 0 only)")
            w_in = uniform(name, "w_in", node.w_in)
            gain *= (1 - alpha if timing.discretisation == "exp" else timing.dt / tau_syn) * w_in
            note += f", CubaLIF alpha = 0, gain x w_in = {gain:.7g}"
    beta, gain = float(np.float32(beta)), float(np.float32(gain))  # the file's precision
    if not 0 < beta <= 1:
        raise UserError(f"node {name!r}: leak beta = {beta:.6g} per step lies outside (0, 1] "
                        f"({timing.describe()}); choose --dt / --discretisation")
    return Neuron(name, beta, gain, theta, reset_of(name, node, ours), note)


def reset_of(name: str, node: nir.NIRNode, ours: bool) -> str:
    """'subtract' for our own make nir's LIF (its metadata says so), else NIR's reset to v_reset,
    which must be 0: 'zero'."""
    if ours and node.metadata.get("reset") == OUR_RESET:
        return "subtract"
    v_reset = uniform(name, "v_reset", node.v_reset)
    if v_reset != 0:
        raise UserError(f"node {name!r}: v_reset={v_reset:g}; our neuron resets to 0 or by "
                        f"subtracting theta")
    return "zero"


def stages_of(graph: nir.NIRGraph, order: list[str], timing: Timing) -> list[Stage]:
    """The chain's weight nodes with their neurons and pools (one line for what does not fit)."""
    ours = graph.metadata.get("format") == OUR_FORMAT
    stages: list[Stage] = []
    for position, name in enumerate(order[1:-1], start=1):
        node, last = graph.nodes[name], stages[-1] if stages else None
        where = f"node {name!r} ({type(node).__name__})"
        if isinstance(node, SYNAPSES):
            if last is not None and last.neuron is None:
                raise UserError(f"{where} follows {last.name!r} with no neuron between them")
            stages.append(Stage(name, node))
        elif isinstance(node, NEURONS):
            if last is None or last.neuron is not None or last.pool is not None:
                raise UserError(f"{where} does not directly follow a Conv2d/Linear/Affine (a "
                                f"pool before the neuron, or two neurons, are not supported)")
            last.neuron = neuron_of(name, node, timing, ours)
        elif type(node) in POOLS:
            if last is None or last.neuron is None or not isinstance(last.node, nir.Conv2d) \
                    or last.pool is not None:
                raise UserError(f"{where} does not follow a conv's neuron; our pools sit after "
                                f"a conv's neuron, on its spikes")
            size = pool_size(name, node)
            last.pool, last.pool_names = ("avg", size), [name]
            last.input_factor = size * size if isinstance(node, nir.SumPool2d) else 1.0
        elif isinstance(node, nir.Threshold):
            if last is None or last.pool is None or last.pool_names[-1] != order[position - 1]:
                raise UserError(f"{where} does not follow a pool: a threshold is imported only "
                                f"as the max of binary spikes after a pool")
            as_max_pool(name, node, last)
        elif isinstance(node, nir.I):
            if last is None or last.neuron is not None or order[position + 1] != order[-1]:
                raise UserError(f"{where} is not the readout: an I node must follow the last "
                                f"Linear/Affine and precede the Output")
            last.readout, last.readout_gain = "sum", uniform(name, "r", node.r) * timing.dt
        elif isinstance(node, nir.LI):
            tau = uniform(name, "tau", node.tau)
            raise UserError(f"{where} leaks (beta = {timing.leak(tau):.6g} per step, tau="
                            f"{tau:g}): our readout adds the output over T without a leak "
                            f"(use an I node or none)")
        elif isinstance(node, nir.Delay):
            raise UserError(f"{where}: delays are not supported (every synapse acts within "
                            f"its step)")
        elif not isinstance(node, nir.Flatten):
            raise UserError(f"{where}: node type {type(node).__name__} is not supported; "
                            f"supported: {SUPPORTED}")
    if not stages:
        raise UserError("the graph has no Conv2d, Linear or Affine node")
    return stages


def pool_size(name: str, node: nir.NIRNode) -> int:
    """k of a k x k pool with stride k and no padding (one line otherwise)."""
    kernel, stride, padding = (np.broadcast_to(np.asarray(v), (2,))
                               for v in (node.kernel_size, node.stride, node.padding))
    if kernel[0] != kernel[1] or not np.array_equal(kernel, stride) or padding.any():
        raise UserError(f"node {name!r}: pool kernel {kernel.tolist()}, stride "
                        f"{stride.tolist()}, padding {padding.tolist()}; ours is k x k with "
                        f"stride k and no padding")
    return int(kernel[0])


def as_max_pool(name: str, node: nir.Threshold, stage: Stage) -> None:
    """A pool of binary spikes followed by H(x - t) is their max when the pool is 0 for no
    spike and >= 1 (sum) or >= 1/k^2 (average) for one or more: 0 <= t < that."""
    t = uniform(name, "threshold", node.threshold)
    assert stage.pool is not None
    size = stage.pool[1]
    one_spike = 1.0 if stage.input_factor != 1.0 else 1.0 / size**2
    if not 0 <= t < one_spike:
        raise UserError(f"node {name!r}: Threshold {t:g} after the pool is not a max of spikes "
                        f"(needs 0 <= t < {one_spike:g})")
    stage.pool, stage.input_factor = ("max", size), 1.0
    stage.pool_names.append(name)


def conv_token(name: str, node: nir.Conv2d) -> str:
    """conv<c>k<k>s<s>p<p> of a square, symmetric, undilated, ungrouped Conv2d."""
    out, _, kh, kw = node.weight.shape
    padding = node.padding
    if isinstance(padding, str):
        padding = {"valid": 0, "same": (kh - 1) // 2}.get(padding, -1)
    stride, pad, dilation = (np.broadcast_to(np.asarray(v), (2,))
                             for v in (node.stride, padding, node.dilation))
    if kh != kw or stride[0] != stride[1] or pad[0] != pad[1] or pad[0] < 0 \
            or (dilation != 1).any() or node.groups != 1:
        raise UserError(f"node {name!r}: Conv2d kernel {kh}x{kw}, stride {stride.tolist()}, "
                        f"padding {pad.tolist()}, dilation {dilation.tolist()}, groups "
                        f"{node.groups}; ours is k x k with one stride and padding, dilation 1, "
                        f"groups 1")
    return f"conv{out}k{kh}s{int(stride[0])}p{int(pad[0])}"


def check_no_bias(stage: Stage) -> None:
    bias = getattr(stage.node, "bias", None)
    if bias is not None and np.any(np.asarray(bias) != 0):
        raise UserError(f"node {stage.name!r} has a nonzero bias (max |b| = "
                        f"{float(np.abs(bias).max()):.3g}); our layers have none: train without "
                        f"biases (bias=False)")


def import_graph(graph: nir.NIRGraph, dataset: str, timesteps: int | None, timing: Timing,
                 pixel_divisor: int = 256) -> Imported:
    """The graph as a float ModelSpec and weights by our layer names (see the module docstring)."""
    check_choice("pixel_divisor", pixel_divisor, PIXEL_DIVISORS)
    stages = stages_of(graph, chain(graph), timing)
    hidden, readout = stages[:-1], stages[-1]
    for stage in stages:
        check_no_bias(stage)
    neurons = [s.neuron for s in stages if s.neuron is not None]
    if not neurons:
        raise UserError("the graph has no LIF, IF or CubaLIF node: not a spiking network")
    for what in ("beta", "reset"):
        values = {n.name: getattr(n, what) for n in neurons}
        first = neurons[0]
        for other in neurons[1:]:
            same = (math.isclose(other.beta, first.beta, rel_tol=REL_TOL) if what == "beta"
                    else other.reset == first.reset)
            if not same:
                raise UserError(f"node {other.name!r}: {what} = {getattr(other, what)} differs "
                                f"from node {first.name!r}'s {getattr(first, what)}; ModelSpec "
                                f"has one {what} for the network ({values})")
    theta = 2.0 ** round(math.log2(neurons[0].theta))
    tokens, weights, layer_names = [], {}, []
    factor = 256 / pixel_divisor  # ours feeds p / 256, the source p / pixel_divisor
    spiking_output = readout.neuron is not None
    convs = fcs = 0
    for stage in stages if spiking_output else hidden:
        if isinstance(stage.node, nir.Conv2d):
            convs += 1
            name = f"conv{convs}"
            tokens.append(conv_token(stage.name, stage.node))
            if stage.pool:
                tokens.append(f"{stage.pool[0]}pool{stage.pool[1]}")
        else:
            fcs += 1
            name = f"fc{fcs}"
            tokens.append(f"fc{stage.weight.shape[0]}")
        assert stage.neuron is not None
        scale = factor * stage.neuron.gain * theta / stage.neuron.theta
        weights[name] = stage.weight * scale
        layer_names.append((stage.name, name, scale))
        factor = stage.input_factor
    if spiking_output:
        classes = readout.weight.shape[0]
        weights[f"fc{fcs + 1}"] = np.eye(classes)
        layer_names.append(("(identity readout)", f"fc{fcs + 1}", 1.0))
    else:
        weights[f"fc{fcs + 1}"] = readout.weight * factor * readout.readout_gain
        layer_names.append((readout.name, f"fc{fcs + 1}", factor * readout.readout_gain))
    values = dict(kind="snn", timesteps=timesteps_of(graph, timesteps), weight_bits=FLOAT_BITS,
                  state_bits=FLOAT_BITS, beta=neurons[0].beta, threshold=theta,
                  reset=neurons[0].reset, encoding="direct", pool="after_neuron",
                  readout="sum" if spiking_output else readout.readout, layers=",".join(tokens))
    values = shape_from_dataset({**values, **input_shape_of(graph, dataset)}, dataset)
    spec = ModelSpec.from_dict(values)
    conversions = {
        "time": timing.describe(),
        "neurons": {n.name: f"{n.note}, v_threshold = {n.theta:.7g}, reset {n.reset}"
                    for n in neurons},
        "threshold": f"theta = {theta:g} = 2^round(log2 v_threshold of {neurons[0].name!r}); "
                     f"each layer's weights x gain x theta / its v_threshold",
        "layers": {ours: f"from {source!r}, weights x {scale:.7g}"
                   for source, ours, scale in layer_names},
        "input": f"pixels p / 256 (the source's p / {pixel_divisor}: first layer x "
                 f"{256 / pixel_divisor:.7g}), direct encoding",
        "readout": ("identity on the output spikes: logits = spike counts (readout sum)"
                    if spiking_output else f"the output summed over T ({readout.readout})"),
        "spike": "ours at V >= theta, NIR's at v > v_threshold (equal only at V = theta)",
    }
    return Imported(spec, weights, conversions)


def timesteps_of(graph: nir.NIRGraph, timesteps: int | None) -> int:
    """T: given, or the graph's own metadata (our make nir states it)."""
    if timesteps is not None:
        return timesteps
    if "timesteps" in graph.metadata:
        return int(graph.metadata["timesteps"])
    raise UserError("the graph does not state the number of timesteps; pass --timesteps "
                    "(TIMESTEPS=) as the source network ran it")


def input_shape_of(graph: nir.NIRGraph, dataset: str) -> dict[str, int]:
    """in_channels and image_size from the Input node, checked against the dataset."""
    node = next(n for n in graph.nodes.values() if isinstance(n, nir.Input))
    shape = tuple(int(v) for v in np.asarray(node.input_type["input"]).ravel())
    expected = DATASETS[dataset].shape
    if shape != expected:
        raise UserError(f"the graph's Input is {shape}, dataset={dataset} has images "
                        f"{expected} (C, H, W)")
    return {"in_channels": shape[0], "image_size": shape[1]}


def float_model(imported: Imported) -> SpikingCNN | QuantCNN:
    """Our float network with the imported weights (one line if a weight's shape differs)."""
    model = build_model(imported.spec)
    state = model.state_dict()
    for name, weight in imported.weights.items():
        key = f"{name}.weight"
        if tuple(state[key].shape) != weight.shape:
            raise UserError(f"layer {name}: the graph's weight has shape {weight.shape}, the "
                            f"layer list gives {tuple(state[key].shape)}")
        state[key] = torch.as_tensor(weight, dtype=torch.float32)
    model.load_state_dict(state)
    return model.eval()


def write_run(imported: Imported, source: Path, dataset: str, run_dir: Path, data_dir: Path,
              batch_size: int = 256) -> dict:
    """runs/<name>/ as training writes it: best.pt, metrics.json, the profile; the metrics."""
    check_new_run(run_dir)
    data = load_dataset(dataset, data_dir)
    model = float_model(imported)
    config = TrainConfig(dataset=dataset)
    record = {"source": str(source), "nir_version": nir.version,
              "conversions": imported.conversions}
    device = torch.device("cpu")
    test, profile = profile_model(model, imported.spec, data.test, batch_size, device,
                                  run_dir.name, dataset, "test")
    save_checkpoint(run_dir / CHECKPOINT, imported.spec, model, train_config=config.to_dict(),
                    epoch=0, nir_import=record)
    write_profile(run_dir, profile)
    metrics = {"run": run_dir.name, "spec": imported.spec.to_dict(),
               "train_config": config.to_dict(), "nir_import": record,
               "test_accuracy_pct": test.accuracy_pct, "test_loss": test.loss,
               "test_images": test.images, "command": " ".join(sys.argv)}
    write_json(run_dir / METRICS, metrics)
    return metrics


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m quant_training.nir_import", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("nir_file", type=Path, help="the NIR graph (.nir, HDF5)")
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--name", required=True, help="run folder name under --runs-dir")
    p.add_argument("--timesteps", type=int, default=None,
                   help="T (default: the graph's metadata, which our make nir writes)")
    p.add_argument("--dt", type=float, default=1.0,
                   help="one step in the graph's time unit (snnTorch: 1e-4)")
    p.add_argument("--discretisation", default="exp", help="exp (make nir) | euler (snnTorch)")
    p.add_argument("--pixel-divisor", type=int, default=256,
                   help="the source fed pixel p as p / this: 256 (ours) | 255 (ToTensor)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--data-dir", default=None, help="dataset root (default $QSNN_DATA_DIR)")
    args = p.parse_args(argv)
    check_choice("dataset", args.dataset, DATASETS)
    if args.timesteps is not None and args.timesteps < 1:
        raise UserError(f"timesteps={args.timesteps} must be >= 1")
    timing = Timing(args.dt, args.discretisation)
    imported = import_graph(read_graph(args.nir_file), args.dataset, args.timesteps, timing,
                            args.pixel_divisor)
    run_dir = Path(args.runs_dir) / args.name
    metrics = write_run(imported, args.nir_file, args.dataset, run_dir,
                        resolve_data_dir(args.data_dir))
    print(f"{args.nir_file} -> layers {','.join(imported.spec.layers)}, T="
          f"{imported.spec.timesteps}, beta={imported.spec.beta:.6g}, threshold="
          f"{imported.spec.threshold:g}, reset={imported.spec.reset}, readout="
          f"{imported.spec.readout}; float test accuracy {metrics['test_accuracy_pct']:.2f} %",
          file=sys.stderr)
    print(json.dumps(imported.conversions, indent=1), file=sys.stderr)
    print(f"run folder: {run_dir}")


if __name__ == "__main__":
    run_cli(main)
