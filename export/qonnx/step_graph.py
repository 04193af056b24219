"""The QONNX step graph: ONE timestep of the spiking CNN with its membranes as explicit I/O.

    inputs:  x (the image under direct encoding, the spike frame under rate encoding),
             membrane_1 .. membrane_L      (V' after the previous step; zeros at t=1), one per
                                           LIF layer of the spec's layer list
    outputs: logits_t, membrane_1 .. membrane_L

Hardware runs the graph T times, keeping the membranes on chip, and reads out the mean (or
sum) of logits_t. The first layer is part of the graph; under direct encoding its input does
not change,
so a design may compute it once per image (metadata `first_layer_computed_once`). The spike
is 0.5 (BipolarQuant(V - theta) + 1) and the membrane grid a `Quant` node, the forms QONNX and
FINN read correctly. An ANN exports as one plain graph (x -> logits). The model spec and the
state shapes are stored in the ONNX metadata (key `qsnn`). Beside it goes the same graph in
standard ONNX operators, for onnxruntime (export.qonnx.standard_onnx: step.onnx / ann.onnx).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from common.atomic import write_with
from common.errors import UserError
from export.qonnx.standard_onnx import LowerToStandardONNX, standard_path
from model.network import QuantCNN, SpikingCNN
from model.quantizers import PIXEL_SCALE
from model.spec import ModelSpec

METADATA_KEY = "qsnn"
FORMAT = "qsnn-step-graph/1"


def state_names(spec: ModelSpec) -> list[str]:
    """membrane_1 .. membrane_L, one per LIF layer."""
    return [f"membrane_{index}" for index in range(1, spec.lif_layers + 1)]


class StepModule(nn.Module):
    """forward(x, m_1, .., m_L) = (logits_t, m_1', .., m_L'), the network's own `step`."""

    def __init__(self, snn: SpikingCNN) -> None:
        super().__init__()
        self.snn = snn

    def forward(self, x: Tensor, *membranes: Tensor):
        logits, membranes_out, _ = self.snn.step(self.snn.input_current(x), list(membranes))
        return (logits, *membranes_out)


def state_shapes(model: SpikingCNN) -> list[list[int]]:
    """Per-image membrane shapes, read off one step on a blank image."""
    spec = model.spec
    with torch.no_grad():
        x = torch.zeros(1, spec.in_channels, spec.image_size, spec.image_size)
        _, membranes, _ = model.step(model.input_current(x), [None] * spec.lif_layers)
    return [list(m.shape[1:]) for m in membranes]


def metadata(spec: ModelSpec, model: SpikingCNN | QuantCNN) -> dict:
    snn = spec.kind == "snn"
    return {
        "format": FORMAT, "spec": spec.to_dict(), "graph": "step" if snn else "ann",
        "timesteps": spec.timesteps, "beta": spec.beta, "threshold": spec.threshold,
        "reset": spec.reset, "encoding": spec.encoding, "weight_bits": spec.weight_bits,
        "state_bits": spec.state_bits, "state_step": spec.state_step,
        "state_names": state_names(spec) if snn else [],
        "state_shapes": state_shapes(model) if isinstance(model, SpikingCNN) else [],
        "input_scale": PIXEL_SCALE, "readout": spec.readout,
        "first_layer_computed_once": snn and spec.encoding == "direct",
    }


def export_graph(model: SpikingCNN | QuantCNN, spec: ModelSpec, path: Path) -> dict:
    """Export (atomically) the step graph of an SNN, or the graph of an ANN, and its
    standard-ONNX form at standard_path(path); return the metadata."""
    import onnx
    from brevitas.export import export_qonnx
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    standard_file = standard_path(path)  # checks the name before anything is written
    model = model.eval().cpu()
    meta = metadata(spec, model)
    x = torch.zeros(1, spec.in_channels, spec.image_size, spec.image_size)
    module: nn.Module
    if isinstance(model, SpikingCNN):
        module = StepModule(model).eval()  # export_qonnx restores this mode on the network
        args = (x, *(torch.zeros(1, *s) for s in meta["state_shapes"]))
        names_in, names_out = ("x", *meta["state_names"]), ("logits_t", *meta["state_names"])
    else:
        module, args, names_in, names_out = model, (x,), ("x",), ("logits",)
    states = set(meta["state_names"])

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_qonnx(module, args=args, export_path=str(tmp), dynamo=False)
        graph = cleanup_model(ModelWrapper(str(tmp)))
        if spec.kind == "snn" and spec.encoding == "rate":  # spike frames: tell FINN the type
            graph.set_tensor_datatype(graph.graph.input[0].name, DataType["BINARY"])
        for tensor, name in zip(graph.graph.input, names_in, strict=True):
            graph.rename_tensor(tensor.name, f"in_{name}" if name in states else name)
        for tensor, name in zip(graph.graph.output, names_out, strict=True):
            graph.rename_tensor(tensor.name, f"out_{name}" if name in states else name)
        onnx.helper.set_model_props(graph.model, {METADATA_KEY: json.dumps(meta)})
        graph.save(str(tmp))

    write_with(path, write)
    standard = ModelWrapper(str(path)).transform(LowerToStandardONNX())
    write_with(standard_file, lambda tmp: standard.save(str(tmp)))
    return meta


def read_metadata(path: Path) -> dict:
    """The metadata of an exported graph, or a UserError if the file is not one of ours."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise UserError(f"graph {path} does not exist; run `make export` first")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise UserError(f"{path} is not a readable ONNX file ({type(err).__name__})") from None
    props = {p.key: p.value for p in model.metadata_props}
    try:
        meta = json.loads(props[METADATA_KEY])
        assert meta["format"] == FORMAT
    except (KeyError, ValueError, AssertionError, TypeError):
        raise UserError(f"{path} is not a {FORMAT} graph (no '{METADATA_KEY}' metadata)") from None
    return meta
