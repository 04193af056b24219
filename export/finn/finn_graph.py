"""The FINN hardware graph (`make export` writes it beside the step graph) and its check.

The hardware graph is the step graph after export.finn.finn_flow.HW_GRAPH_STEPS: FINN layers
(MVAU, sliding windows, pools, padding) and one LIF layer per LIF sub-graph, with the
membranes inside the LIF layers (state memories), integers everywhere:

    global_in   the input frame as FINN takes it: 8-bit pixels p (direct encoding) or
                spikes (rate encoding), NCHW (a host-side Transpose makes it NHWC)
    global_out  the readout layer's integer accumulator; logits_t = global_out x the
                `qsnn_output_scale` of the metadata

`HardwareGraph` runs it with qonnx one timestep at a time, the state memories fed back as the
hardware keeps them on chip; `check_hw_graph` compares it with PyTorch's `step` on the same
frames (export.lockstep): every LIF layer's spikes and membranes bit for bit at every step,
the logits exactly.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from torch import Tensor

from common.atomic import write_with
from export.finn.finn_flow import HW_GRAPH_STEPS, OUTPUT_SCALE_KEY, run_build
from export.lockstep import PyTorchEngine, StepEngine, StepOut, flat, lockstep
from model.network import QuantCNN, SpikingCNN
from model.spec import ModelSpec


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


class HardwareGraph(StepEngine):
    """A hardware graph run one frame (timestep) at a time by qonnx, its state memories
    carried as the hardware keeps them on chip: a lockstep engine (export.lockstep)."""

    name = "finn_hw_graph"

    def __init__(self, path: Path, spec: ModelSpec) -> None:
        from qonnx.core.modelwrapper import ModelWrapper

        import export.finn.finn_lif  # noqa: F401 (registers the LIF layer with qonnx)

        self.spec = spec
        self.model = ModelWrapper(str(path))
        self.lifs = [n for n in self.model.graph.node if n.op_type.startswith("LIF")]
        self.output_scale = float(self.model.get_metadata_prop(OUTPUT_SCALE_KEY) or 1.0)

    def initial_state(self, images: int) -> dict[str, np.ndarray]:
        """Zero membranes: the state memories' initial values."""
        return {n.input[1]: self.model.get_initializer(n.input[1]) for n in self.lifs}

    def step(self, frame: np.ndarray, states: dict) -> tuple[StepOut, dict]:
        """One timestep on the integer input (pixels p or spikes); spikes and membrane codes
        from channels-last back to the network's (C, H, W) order."""
        from qonnx.core.onnx_exec import execute_onnx

        feed = frame.astype(np.float32)
        context = execute_onnx(self.model, {"global_in": feed, **states},
                               return_full_exec_context=True)
        states = {name: context[name] for name in states}
        return StepOut(flat(context["global_out"] * self.output_scale),
                       [channels_first(context[n.output[0]]) for n in self.lifs],
                       [channels_first(context[n.input[1]]) for n in self.lifs]), states


def channels_first(values: np.ndarray) -> np.ndarray:
    """A batch's [B, H, W, C] maps (or [B, N] vectors) flattened in (C, H, W) order."""
    return flat(np.moveaxis(values, -1, 1) if values.ndim == 4 else values)


def check_hw_graph(path: Path, model: SpikingCNN | QuantCNN, spec: ModelSpec,
                   images: Tensor) -> dict:
    """The hardware graph against PyTorch on `images` (uint8 [N, C, H, W]): every LIF
    layer's spikes and membranes bit for bit at every step, the logits exactly."""
    report, = lockstep(spec, images, [PyTorchEngine(model), HardwareGraph(path, spec)])
    return report
