"""The FINN hardware graph (`make export` writes it beside the step graph) and its check.

The hardware graph is the step graph after export.finn_flow.HW_GRAPH_STEPS: FINN layers
(MVAU, sliding windows, pools, padding) and one LIF layer per LIF sub-graph, with the
membranes inside the LIF layers (state memories), integers everywhere:

    global_in   the input frame as FINN takes it: 8-bit pixels p (direct encoding) or
                spikes (rate encoding), NCHW (a host-side Transpose makes it NHWC)
    global_out  the readout layer's integer accumulator; logits_t = global_out x the
                `qsnn_output_scale` of the metadata

`check_hw_graph` runs it with qonnx for T timesteps per image, the state memories fed back
as the hardware keeps them on chip, and compares with PyTorch's `step` on the same frames:
every LIF layer's spikes and membranes bit for bit at every step, the logits exactly.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from common.atomic import write_with
from export.finn_flow import HW_GRAPH_STEPS, OUTPUT_SCALE_KEY, run_build
from model.quantizers import PIXEL_SCALE, pixels
from model.spec import ModelSpec
from model.timesteps import FRAME_SEED, input_frames, run_timesteps


def hw_graph_path(step_graph: Path) -> Path:
    """step.qonnx.onnx -> step_hw.onnx (ann.qonnx.onnx -> ann_hw.onnx)."""
    return step_graph.with_name(step_graph.name.split(".")[0] + "_hw.onnx")


def write_hw_graph(step_graph: Path) -> Path:
    """Run the hardware-graph steps on the exported graph; write the result atomically."""
    with tempfile.TemporaryDirectory() as scratch:
        model = run_build(step_graph, Path(scratch), HW_GRAPH_STEPS)
    path = hw_graph_path(step_graph)
    write_with(path, lambda tmp: model.save(str(tmp)))
    return path


class HardwareGraph:
    """A hardware graph run one frame (timestep) at a time, its state memories carried."""

    def __init__(self, path: Path) -> None:
        from qonnx.core.modelwrapper import ModelWrapper

        import export.finn_lif  # noqa: F401 (registers the LIF layer with qonnx)

        self.model = ModelWrapper(str(path))
        self.lifs = [n for n in self.model.graph.node if n.op_type.startswith("LIF")]
        self.output_scale = float(self.model.get_metadata_prop(OUTPUT_SCALE_KEY) or 1.0)
        self.states: dict[str, np.ndarray] = {}

    def start_image(self) -> None:
        """Zero membranes: the state memories' initial values."""
        self.states = {n.input[1]: self.model.get_initializer(n.input[1]) for n in self.lifs}

    def step(self, frame: np.ndarray) -> dict:
        """One timestep: the full execution context (logits_t, spikes, new membranes)."""
        from qonnx.core.onnx_exec import execute_onnx

        context = execute_onnx(self.model, {"global_in": frame, **self.states},
                               return_full_exec_context=True)
        self.states = {name: context[name] for name in self.states}
        context["logits_t"] = context["global_out"] * self.output_scale
        return context


def check_hw_graph(path: Path, model: nn.Module, spec: ModelSpec, images: Tensor,
                   engine=None) -> dict:
    """Compare the hardware graph with PyTorch on `images` (uint8 [N, C, H, W]), or another
    engine of the same design: an object with `lifs` (the graph's LIF nodes), `start_image()`
    and `step(frame) -> context` (spikes under each LIF node's output name, `logits_t`, and
    the membranes under each LIF node's state input if it can show them: else
    membranes_bit_exact is None)."""
    model = model.eval().cpu()
    start = time.perf_counter()
    graph = engine or HardwareGraph(path)
    generator = torch.Generator().manual_seed(FRAME_SEED)
    report = {"images": len(images), "timesteps": spec.timesteps, "lif_layers": len(graph.lifs),
              "spikes_bit_exact": True,
              "membranes_bit_exact": True if getattr(graph, "shows_membranes", True) else None,
              "logits_exact": True,
              "identical_predictions": 0, "hw_spikes": 0, "first_mismatch": None}

    def mismatch(key: str, what: str) -> None:
        report[key] = False
        report["first_mismatch"] = report["first_mismatch"] or what

    def step(numbered: tuple[int, int, Tensor], states: list) -> tuple[np.ndarray, list]:
        """PyTorch's step and the hardware graph's, compared; both logits stacked."""
        index, t, frame = numbered
        with torch.no_grad():
            logits, states, spikes = model.step(model.input_current(frame), states)
        context = graph.step(_graph_input(spec, frame))
        where = f"at t={t} (image {index})"
        layers = zip(graph.lifs, spikes, states, strict=True)
        for layer, (node, s, v) in enumerate(layers, start=1):
            report["hw_spikes"] += int(context[node.output[0]].sum())
            if not np.array_equal(_channels_last(s), context[node.output[0]]):
                mismatch("spikes_bit_exact", f"spikes of LIF layer {layer} differ {where}")
            if report["membranes_bit_exact"] is not None and not np.array_equal(
                    _channels_last(v) / spec.state_step, context[node.input[1]]):
                mismatch("membranes_bit_exact", f"membrane {layer} differs {where}")
        if not np.array_equal(logits.numpy(), context["logits_t"]):
            mismatch("logits_exact", f"logits differ {where}")
        return np.stack([logits.numpy()[0], context["logits_t"][0]]), states

    for index, image in enumerate(images, start=1):
        graph.start_image()
        frames = [(index, t, frame) for t, frame in
                  enumerate(input_frames(spec, pixels(image[None]), generator), start=1)]
        logits, _ = run_timesteps(step, frames, [None] * len(graph.lifs), spec)
        report["identical_predictions"] += int(logits[0].argmax() == logits[1].argmax())
    report["passed"] = all(report[k] is not False for k in (
        "spikes_bit_exact", "membranes_bit_exact", "logits_exact"))
    report["seconds"] = time.perf_counter() - start
    return report


def _graph_input(spec: ModelSpec, frame: Tensor) -> np.ndarray:
    """The hardware graph's input: integer pixels p = x / 2^-8 (direct), or the spikes."""
    if spec.encoding == "direct":
        return (frame / PIXEL_SCALE).numpy()
    return frame.numpy()


def _channels_last(tensor: Tensor) -> np.ndarray:
    return (tensor.permute(0, 2, 3, 1) if tensor.dim() == 4 else tensor).numpy()
