"""Verify an exported step graph against the PyTorch model it came from.

The step graph runs as a lockstep engine (export.lockstep) twice: node by node in qonnx, its
spikes read off the BipolarQuant outputs b as (b + 1) / 2, and as its standard-ONNX form
(the file export_graph writes beside it) in onnxruntime, which shows no spikes. Both run T
steps per image with the membrane outputs fed back, on the same frames as PyTorch.
Required (`passed`): qonnx against PyTorch: spikes and membranes bit-exact at every step,
logits within LOGIT_TOLERANCE (float sums in another order), identical predictions;
onnxruntime against qonnx: membranes and logits bit for bit. An ANN graph: logits within
tolerance, identical predictions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from common.errors import CheckFailed
from export.lockstep import (
    PyTorchEngine,
    StepEngine,
    StepOut,
    flat,
    lockstep,
    membrane_codes,
    network_input,
)
from export.qonnx.standard_onnx import standard_path
from export.qonnx.step_graph import state_names
from model.network import QuantCNN, SpikingCNN
from model.spec import ModelSpec

LOGIT_TOLERANCE = 1e-5


class VerificationError(CheckFailed):
    """The exported graph (or C simulation) does not compute what the PyTorch model computes."""


class StepGraph(StepEngine):
    """The exported step graph (or ANN graph) in `runtime` qonnx or onnxruntime."""

    def __init__(self, graph_path: Path, spec: ModelSpec, runtime: str = "qonnx",
                 logit_tolerance: float = 0.0) -> None:
        self.spec, self.name, self.logit_tolerance = spec, runtime, logit_tolerance
        self.names = state_names(spec) if spec.kind == "snn" else []
        if runtime == "qonnx":
            from qonnx.core.modelwrapper import ModelWrapper

            self.graph = ModelWrapper(str(graph_path))
            self.spike_nodes = [n.output[0] for n in self.graph.graph.node
                                if n.op_type == "BipolarQuant"]
            self.shapes = [self.graph.get_tensor_shape(f"in_{n}") for n in self.names]
        else:
            import onnxruntime as ort

            self.session = ort.InferenceSession(str(standard_path(graph_path)),
                                                providers=["CPUExecutionProvider"])
            self.outputs = [o.name for o in self.session.get_outputs()]
            inputs = {i.name: i.shape for i in self.session.get_inputs()}
            self.shapes = [inputs[f"in_{n}"] for n in self.names]

    def initial_state(self, images: int) -> list[np.ndarray]:
        return [np.zeros(shape, np.float32) for shape in self.shapes]

    def _execute(self, feed: dict) -> dict:
        if self.name == "qonnx":
            from qonnx.core.onnx_exec import execute_onnx

            return execute_onnx(self.graph, feed, return_full_exec_context=True)
        return dict(zip(self.outputs, self.session.run(None, feed), strict=True))

    def step(self, frame: np.ndarray, states: list) -> tuple[StepOut, list]:
        feed = {"x": network_input(self.spec, frame).numpy(),
                **{f"in_{n}": s for n, s in zip(self.names, states, strict=True)}}
        out = self._execute(feed)
        if self.spec.kind == "ann":
            return StepOut(flat(out["logits"])), states
        states = [out[f"out_{n}"] for n in self.names]
        spikes = ([flat((out[name] + 1) / 2) for name in self.spike_nodes]
                  if self.name == "qonnx" else None)
        return StepOut(flat(out["logits_t"]), spikes,
                       [membrane_codes(self.spec, s) for s in states]), states


def verify_graph(graph_path: Path, model: SpikingCNN | QuantCNN, spec: ModelSpec, images: Tensor,
                 labels: Tensor) -> dict:
    """qonnx vs PyTorch and onnxruntime vs qonnx on `images` (uint8 [N, C, H, W]): the
    report (verification.json), `passed` when both comparisons pass."""
    engines = [PyTorchEngine(model), StepGraph(graph_path, spec, "qonnx", LOGIT_TOLERANCE),
               StepGraph(graph_path, spec, "onnxruntime")]
    qonnx, onnxruntime = lockstep(spec, images, engines, [("qonnx", "pytorch"),
                                                          ("onnxruntime", "qonnx")], labels)
    return {"images": qonnx["images"], "timesteps": spec.timesteps,
            "qonnx_vs_pytorch": qonnx, "onnxruntime_vs_qonnx": onnxruntime,
            "passed": qonnx["passed"] and onnxruntime["passed"]}
