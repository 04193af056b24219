"""One way to run any engine of a network for T steps on the same frames, and one comparison.

Engines: PyTorch step by step (the definition, `PyTorchEngine`), the QONNX step graph in
qonnx and in onnxruntime (export.qonnx.verify), the FINN hardware graph
(export.finn.finn_graph), the RTL simulation (export.rtl.rtlsim), the HLS C simulation
(hls.csim), NIR in sinabs (export.nir.nir_check). Each turns the same frames into a `Trace`:

    frames               = input_frames(spec, images)     uint8 [N, T, C, H, W], drawn once
    trace.spikes[l]      [N, T, neurons] 0/1 of LIF layer l, (C, H, W) order flattened
    trace.membranes[l]   [N, T, neurons] membrane codes v = V / state_step (a float
                         membrane: V itself)
    trace.logits         [N, T, classes] the readout layer's output at step t

None where an engine cannot show a quantity (onnxruntime and the C simulation: spikes; the RTL
design and sinabs: membranes); an ANN has one step and no spikes or membranes. The prediction
is argmax_k sum_t logits[:, t, k] (the readout's mean or sum: the same argmax).

`compare` adds up one engine against a reference, batch by batch, in one report:

    spikes_bit_exact, membranes_bit_exact   every entry equal (None: not shown by both)
    max_abs_logit_error <= logit_tolerance  (logits_match; 0 for integer engines)
    identical_predictions / images
    passed = no shown spike or membrane differs, logits_match, every prediction identical
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from model.network import QuantCNN, SpikingCNN
from model.quantizers import pixels
from model.spec import ModelSpec
from model.timesteps import FRAME_SEED, read_out, run_timesteps
from model.timesteps import input_frames as encoded_frames

BATCH_IMAGES = 100
LAYERS_MAX = 1000  # ranks of a first mismatch: membranes of layer l, then spikes, then logits


def input_frames(spec: ModelSpec, images: Tensor) -> np.ndarray:
    """uint8 [N, T, C, H, W]: the image at every step (direct encoding; one step for an ANN)
    or its Bernoulli spike frames (rate), drawn image after image from FRAME_SEED."""
    if spec.kind == "ann" or spec.encoding == "direct":
        return images[:, None].repeat(1, spec.timesteps, 1, 1, 1).numpy().astype(np.uint8)
    generator = torch.Generator().manual_seed(FRAME_SEED)
    frames = [encoded_frames(spec, pixels(image[None]), generator)[:, 0] for image in images]
    return torch.stack(frames).numpy().astype(np.uint8)


def network_input(spec: ModelSpec, frames: np.ndarray) -> Tensor:
    """The network's (and step graph's) x for uint8 frames: pixels p / 256 or spikes 0/1."""
    x = torch.from_numpy(np.ascontiguousarray(frames))
    return pixels(x) if spec.encoding == "direct" else x.float()


def lif_names(spec: ModelSpec) -> list[str]:
    """The weight layers followed by a LIF neuron: the trace's spike and membrane layers."""
    return [layer.name for layer in spec.weight_layers if layer.neuron]


@dataclass
class Trace:
    """What one engine computed on N images x T steps (layout: module docstring)."""

    logits: np.ndarray
    spikes: list[np.ndarray] | None = None
    membranes: list[np.ndarray] | None = None

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.sum(1).argmax(-1)

    def read_out(self, spec: ModelSpec) -> Trace:
        """The read-out logits alone, [N, 1, classes]: what a forward pass shows."""
        return Trace(read_out(self.logits.sum(1), spec)[:, None])


@dataclass
class StepOut:
    """One engine's outputs for one step of a batch of images, each [B, ...] as in a Trace."""

    logits: np.ndarray
    spikes: list[np.ndarray] | None = None
    membranes: list[np.ndarray] | None = None


def flat(values: Any) -> np.ndarray:
    """A batch's tensor or array [B, ...] as float64 [B, entries], (C, H, W) order."""
    array = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    return array.reshape(len(array), -1).astype(np.float64)


def membrane_codes(spec: ModelSpec, membranes: Any) -> np.ndarray:
    """A batch's membranes V as codes V / state_step (a float membrane: V itself), flat."""
    return flat(membranes) / (spec.state_step if spec.quantized_state else 1.0)


def _layers(records: list, get: Callable[[Any], Any], join: Callable) -> list[np.ndarray] | None:
    """Each LIF layer's arrays across `records` joined by `join` (None where none are shown)."""
    if get(records[0]) is None:
        return None
    return [join(parts) for parts in zip(*map(get, records), strict=True)]


def stack(steps: list[StepOut]) -> Trace:
    """One batch's records of steps 1..T -> a Trace [B, T, ...]."""
    def over_steps(parts: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack(parts, axis=1)

    return Trace(over_steps([out.logits for out in steps]),
                 _layers(steps, lambda out: out.spikes, over_steps),
                 _layers(steps, lambda out: out.membranes, over_steps))


def concatenate(traces: list[Trace]) -> Trace:
    """Traces of consecutive images as one."""
    return Trace(np.concatenate([t.logits for t in traces]),
                 _layers(traces, lambda t: t.spikes, np.concatenate),
                 _layers(traces, lambda t: t.membranes, np.concatenate))


class Engine(ABC):
    """Anything with a name, a logit tolerance and run(frames) -> Trace."""

    name: str
    logit_tolerance = 0.0  # max |logit difference| allowed against the reference

    @abstractmethod
    def run(self, frames: np.ndarray) -> Trace: ...


class StepEngine(Engine):
    """An engine run one frame (timestep) at a time, its state carried from step to step,
    from the initial (zero) state: `run` is model.timesteps' T-step loop, over all images
    at once when the engine takes a batch, else image by image (graphs of batch 1)."""

    spec: ModelSpec
    batched = False

    @abstractmethod
    def initial_state(self, images: int) -> Any: ...

    @abstractmethod
    def step(self, frame: np.ndarray, state: Any) -> tuple[StepOut, Any]:
        """One step on uint8 frames [B, C, H, W]: the outputs and the next state."""

    def run(self, frames: np.ndarray) -> Trace:
        groups = [frames] if self.batched else [frames[i:i + 1] for i in range(len(frames))]
        return concatenate([self._run_group(group) for group in groups])

    def _run_group(self, frames: np.ndarray) -> Trace:
        steps: list[StepOut] = []

        def recorded(frame: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
            out, state = self.step(frame, state)
            steps.append(out)
            return out.logits, state

        run_timesteps(recorded, frames.swapaxes(0, 1), self.initial_state(len(frames)),
                      self.spec)
        return stack(steps)


class PyTorchEngine(StepEngine):
    """The network's own `step` (SpikingCNN.step: the definition the others are checked
    against), or an ANN's forward pass."""

    batched = True

    def __init__(self, model: SpikingCNN | QuantCNN, name: str = "pytorch") -> None:
        self.model, self.spec, self.name = model.eval().cpu(), model.spec, name

    def initial_state(self, images: int) -> list[Tensor | None]:
        return [None] * self.spec.lif_layers if self.spec.kind == "snn" else []

    @torch.no_grad()
    def step(self, frame: np.ndarray, membranes: list) -> tuple[StepOut, list]:
        x = network_input(self.spec, frame)
        if isinstance(self.model, QuantCNN):  # an ANN
            return StepOut(flat(self.model(x))), membranes
        logits, membranes, spikes = self.model.step(self.model.input_current(x), membranes)
        return StepOut(flat(logits), [flat(s) for s in spikes],
                       [membrane_codes(self.spec, v) for v in membranes]), membranes


@dataclass
class Comparison:
    """One engine against a reference, added up batch by batch (report: module docstring)."""

    engine: str
    reference: str
    layers: list[str]
    timesteps: int
    logit_tolerance: float = 0.0
    images: int = 0
    same_predictions: int = 0
    reference_correct: int = 0
    engine_correct: int = 0
    labelled: bool = False
    max_logit_error: float = 0.0
    spikes_equal: dict[str, int] | None = field(default_factory=dict)
    spike_entries: dict[str, int] = field(default_factory=dict)
    spike_totals: dict[str, list[float]] = field(default_factory=dict)
    membranes_exact: bool | None = True
    layer_count_differs: bool = False
    first_mismatch: str | None = None

    def add(self, reference: Trace, trace: Trace, labels: np.ndarray | None = None) -> None:
        """Add one batch; the first mismatch is the earliest (image, step), a membrane before
        the spikes it causes, an earlier layer before a later one, logits last."""
        differences: list[tuple[int, int, int, str]] = []
        ours, theirs = reference.predictions, trace.predictions
        self.same_predictions += int((ours == theirs).sum())
        if labels is not None:
            self.labelled = True
            self.reference_correct += int((ours == labels).sum())
            self.engine_correct += int((theirs == labels).sum())
        logit_error = np.abs(reference.logits - trace.logits)
        self.max_logit_error = max(self.max_logit_error, float(logit_error.max()))
        differences += _differences(logit_error > self.logit_tolerance, 2 * LAYERS_MAX, "logits")
        if reference.membranes is None or trace.membranes is None:
            self.membranes_exact = None
        elif self.membranes_exact is not None:
            for index, (name, a, b) in enumerate(zip(self.layers, reference.membranes,
                                                     trace.membranes, strict=True)):
                differences += _differences(a != b, index, f"membranes of {name}")
            self.membranes_exact = self.membranes_exact and not any(
                what.startswith("membranes") for *_, what in differences)
        differences += self._add_spikes(reference.spikes, trace.spikes)
        if differences and self.first_mismatch is None:
            image, step, _, what = min(differences)
            self.first_mismatch = f"{what} differ at t={step + 1} (image {self.images + image + 1})"
        self.images += len(trace.logits)

    def _add_spikes(self, reference: list | None, spikes: list | None
                    ) -> list[tuple[int, int, int, str]]:
        if reference is None or spikes is None or self.spikes_equal is None:
            self.spikes_equal = None
            return []
        if len(reference) != len(spikes):
            self.spikes_equal = None
            self.layer_count_differs = True
            return [(0, 0, LAYERS_MAX, f"{self.engine}'s {len(spikes)} spike layers and "
                              f"{self.reference}'s {len(reference)}")]
        differences = []
        for index, (name, a, b) in enumerate(zip(self.layers, reference, spikes, strict=True)):
            self.spikes_equal[name] = self.spikes_equal.get(name, 0) + int((a == b).sum())
            self.spike_entries[name] = self.spike_entries.get(name, 0) + a.size
            totals = self.spike_totals.setdefault(name, [0.0, 0.0])
            totals[0], totals[1] = totals[0] + float(a.sum()), totals[1] + float(b.sum())
            differences += _differences(a != b, LAYERS_MAX + index, f"spikes of {name}")
        return differences

    def report(self) -> dict:
        n = max(self.images, 1)
        spikes_exact = (False if self.layer_count_differs else None if self.spikes_equal is None
                        else all(self.spikes_equal[k] == self.spike_entries[k]
                                 for k in self.layers))
        logits_match = self.max_logit_error <= self.logit_tolerance
        layers = None if self.spikes_equal is None else {name: {
            "entries_compared": self.spike_entries[name],
            "spike_agreement_pct": 100.0 * self.spikes_equal[name] / self.spike_entries[name],
            "reference_spikes_per_image": self.spike_totals[name][0] / n,
            "engine_spikes_per_image": self.spike_totals[name][1] / n,
        } for name in self.layers}
        return {
            "engine": self.engine, "reference": self.reference, "images": self.images,
            "timesteps": self.timesteps, "spikes_bit_exact": spikes_exact,
            "membranes_bit_exact": self.membranes_exact,
            "max_abs_logit_error": self.max_logit_error,
            "logit_tolerance": self.logit_tolerance, "logits_match": logits_match,
            "identical_predictions": self.same_predictions,
            "prediction_agreement_pct": 100.0 * self.same_predictions / n,
            "reference_accuracy_pct": 100.0 * self.reference_correct / n if self.labelled
            else None,
            "engine_accuracy_pct": 100.0 * self.engine_correct / n if self.labelled else None,
            "layers": layers, "engine_spikes_per_image": None if layers is None else
            sum(layer["engine_spikes_per_image"] for layer in layers.values()),
            "first_mismatch": self.first_mismatch,
            "passed": spikes_exact is not False and self.membranes_exact is not False
            and logits_match and self.same_predictions == self.images,
        }


def _differences(differs: np.ndarray, rank: int, what: str) -> list[tuple[int, int, int, str]]:
    """The first (image, step) where `differs` [N, T, ...] holds, as a sortable candidate."""
    where = np.argwhere(differs.reshape(*differs.shape[:2], -1).any(-1))
    return [(int(where[0][0]), int(where[0][1]), rank, what)] if len(where) else []


def lockstep(spec: ModelSpec, images: Tensor, engines: Sequence[Engine],
             pairs: Sequence[tuple[str, str]] | None = None, labels: Tensor | None = None,
             batch: int = BATCH_IMAGES) -> list[dict]:
    """Run every engine once on the same frames of `images` (uint8 [N, C, H, W]), `batch`
    images at a time, and compare each (engine, reference) pair of names (default: every
    engine against the first); one `Comparison` report per pair, with the engine's seconds."""
    by_name = {engine.name: engine for engine in engines}
    pairs = pairs or [(engine.name, engines[0].name) for engine in engines[1:]]
    frames = input_frames(spec, images)
    layers = lif_names(spec) if spec.kind == "snn" else []
    comparisons = [Comparison(name, reference, layers, frames.shape[1],
                              by_name[name].logit_tolerance) for name, reference in pairs]
    seconds = dict.fromkeys(by_name, 0.0)
    for first in range(0, len(frames), batch):
        part = slice(first, first + batch)
        traces = {}
        for name, engine in by_name.items():
            start = time.perf_counter()
            traces[name] = engine.run(frames[part])
            seconds[name] += time.perf_counter() - start
        truth = None if labels is None else labels[part].numpy()
        for comparison in comparisons:
            comparison.add(traces[comparison.reference], traces[comparison.engine], truth)
    return [{**c.report(), "seconds": seconds[c.engine]} for c in comparisons]


def summary(report: dict) -> str:
    """A comparison report in one line."""
    def exact(key: str) -> str:
        return "not shown" if report[key] is None else str(report[key])

    return (f"{report['engine']} vs {report['reference']}, {report['images']} images x "
            f"T={report['timesteps']}: spikes bit-exact {exact('spikes_bit_exact')}, membranes "
            f"bit-exact {exact('membranes_bit_exact')}, max |logit difference| "
            f"{report['max_abs_logit_error']:.2g} (allowed {report['logit_tolerance']:g}), "
            f"identical predictions {report['identical_predictions']}/{report['images']}; "
            f"{'passed' if report['passed'] else 'FAILED: ' + str(report['first_mismatch'])}")
