"""Verify an exported graph against the PyTorch model it came from.

The step graph is executed with qonnx over T steps per image, its membrane outputs fed back
as inputs, on the same input frames as PyTorch (rate encoding: the same Bernoulli draws).
Required: spikes (the BipolarQuant outputs vs the LIF outputs) and membranes bit-exact at
every step, logits within LOGIT_TOLERANCE, identical predictions. An ANN graph: logits within
tolerance, identical predictions. The graph's standard-ONNX form (the file export_graph writes
beside it) runs in onnxruntime on every same input and must give qonnx's outputs bit for bit.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from common.errors import CheckFailed
from export.standard_onnx import standard_path
from export.step_graph import state_names
from model.quantizers import pixels
from model.spec import ModelSpec
from model.timesteps import FRAME_SEED, input_frames, run_timesteps

LOGIT_TOLERANCE = 1e-5


class VerificationError(CheckFailed):
    """The exported graph (or C simulation) does not compute what the PyTorch model computes."""


@dataclass
class _Tally:
    images: int = 0
    graph_correct: int = 0
    torch_correct: int = 0
    same_prediction: int = 0
    max_logit_error: float = 0.0
    membranes_exact: bool = True
    spikes_exact: bool = True
    onnxruntime_exact: bool = True
    spikes_compared: int = 0
    first_mismatch: str | None = None

    def mismatch(self, what: str) -> None:
        self.first_mismatch = self.first_mismatch or what


class _Graphs:
    """The exported graph run by qonnx, and its standard-ONNX file by onnxruntime."""

    def __init__(self, graph_path, tally: _Tally) -> None:
        import onnxruntime as ort
        from qonnx.core.modelwrapper import ModelWrapper

        self.graph = ModelWrapper(str(graph_path))
        self.session = ort.InferenceSession(str(standard_path(graph_path)),
                                            providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.tally = tally

    def run(self, feed: dict, where: str) -> dict:
        """qonnx's full execution context; onnxruntime's outputs are checked against it."""
        from qonnx.core.onnx_exec import execute_onnx

        context = execute_onnx(self.graph, feed, return_full_exec_context=True)
        for name, value in zip(self.outputs, self.session.run(None, feed), strict=True):
            if not np.array_equal(value, context[name]):
                self.tally.onnxruntime_exact = False
                self.tally.mismatch(f"onnxruntime differs from qonnx in {name} {where}")
        return context


def verify_graph(graph_path, model: nn.Module, spec: ModelSpec, images: Tensor,
                 labels: Tensor) -> dict:
    """Compare graph and model on `images` (uint8, [N, C, H, W]); returns the report dict."""
    model = model.eval().cpu()
    start = time.perf_counter()
    tally = _Tally()
    graph = _Graphs(graph_path, tally)
    frames = torch.Generator().manual_seed(FRAME_SEED)
    for image, label in zip(images, labels, strict=True):
        x = pixels(image[None])
        if spec.kind == "snn":
            graph_logits, torch_logits = _run_steps(graph, model, spec, x, frames, tally)
        else:
            graph_logits, torch_logits = _run_ann(graph, model, x)
        tally.max_logit_error = max(tally.max_logit_error,
                                    float(np.abs(graph_logits - torch_logits).max()))
        tally.images += 1
        tally.graph_correct += int(graph_logits.argmax() == label)
        tally.torch_correct += int(torch_logits.argmax() == label)
        tally.same_prediction += int(graph_logits.argmax() == torch_logits.argmax())
    snn = spec.kind == "snn"
    report = {
        "images": tally.images, "timesteps": spec.timesteps,
        "membranes_bit_exact": tally.membranes_exact if snn else None,
        "spikes_bit_exact": tally.spikes_exact if snn else None,
        "onnxruntime_bit_exact": tally.onnxruntime_exact,
        "spike_tensors_compared": tally.spikes_compared,
        "max_abs_logit_error": tally.max_logit_error, "logit_tolerance": LOGIT_TOLERANCE,
        "identical_predictions": tally.same_prediction,
        "graph_accuracy_pct": 100.0 * tally.graph_correct / max(tally.images, 1),
        "torch_accuracy_pct": 100.0 * tally.torch_correct / max(tally.images, 1),
        "first_mismatch": tally.first_mismatch, "seconds": time.perf_counter() - start,
    }
    report["passed"] = (tally.membranes_exact and tally.spikes_exact and tally.onnxruntime_exact
                        and tally.max_logit_error <= LOGIT_TOLERANCE
                        and tally.same_prediction == tally.images)
    return report


def _run_ann(graph: _Graphs, model: nn.Module, x: Tensor) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        expected = model(x).numpy()
    out = graph.run({"x": x.numpy()}, f"(image {graph.tally.images + 1})")
    return out["logits"][0], expected[0]


def _run_steps(graph: _Graphs, model, spec: ModelSpec, x: Tensor, frames: torch.Generator,
               tally: _Tally) -> tuple[np.ndarray, np.ndarray]:
    """Both engines in lockstep over T steps, states and spikes compared at every step;
    returns (graph logits, torch logits)."""
    spike_nodes = [n.output[0] for n in graph.graph.graph.node if n.op_type == "BipolarQuant"]
    names = state_names(spec)
    torch_states = [torch.zeros(1, *graph.graph.get_tensor_shape(f"in_{n}")[1:]) for n in names]

    def step(numbered: tuple[int, Tensor], states: tuple[list, list]):
        (t, frame), (torch_states, graph_states) = numbered, states
        with torch.no_grad():  # StepModule's computation, with the spikes it passes through
            torch_logits, torch_states, spikes = model.step(model.input_current(frame),
                                                            torch_states)
        feed = {"x": frame.numpy(),
                **{f"in_{n}": s for n, s in zip(names, graph_states, strict=True)}}
        context = graph.run(feed, f"at t={t + 1} (image {tally.images + 1})")
        graph_states = [context[f"out_{n}"] for n in names]
        _compare_states(t, names, graph_states, torch_states, tally)
        _compare_spikes(t, [(context[name] + 1) / 2 for name in spike_nodes], spikes, tally)
        both = np.stack([context["logits_t"][0], torch_logits.numpy()[0]])
        return both, (torch_states, graph_states)

    logits, _ = run_timesteps(step, enumerate(input_frames(spec, x, frames)),
                              (torch_states, [s.numpy() for s in torch_states]), spec)
    return logits[0], logits[1]


def _compare_states(t: int, names: list[str], graph_states, torch_states, tally: _Tally
                    ) -> None:
    for name, g, p in zip(names, graph_states, torch_states, strict=True):
        if not np.array_equal(g, p.numpy()):
            tally.membranes_exact = False
            tally.mismatch(f"{name} differs at t={t + 1} (max {np.abs(g - p.numpy()).max():.3g})")


def _compare_spikes(t: int, graph_spikes, torch_spikes, tally: _Tally) -> None:
    if len(graph_spikes) != len(torch_spikes):
        tally.spikes_exact = False
        tally.mismatch(f"{len(graph_spikes)} spike tensors in the graph, {len(torch_spikes)} LIFs")
        return
    for layer, (g, p) in enumerate(zip(graph_spikes, torch_spikes, strict=True), start=1):
        tally.spikes_compared += 1
        if not np.array_equal(g, p.numpy()):
            tally.spikes_exact = False
            tally.mismatch(f"spikes of LIF layer {layer} differ at t={t + 1}")
