"""QONNX step-graph export and verification, FINN estimate builds, and their bad inputs."""
import json
import shutil

import onnx
import pytest
import torch

from common.errors import UserError
from export.finn.fpga_estimate import main as fpga_main
from export.qonnx.qonnx_export import main as export_main
from export.qonnx.step_graph import export_graph, read_metadata
from export.qonnx.verify import verify_graph
from model.network import build_model
from model.spec import ModelSpec
from quant_training.checkpoint import save_checkpoint
from quant_training.config import TrainConfig
from quant_training.engine import train_one_epoch
from quant_training.step import TrainStep

TINY = dict(layers="conv4,pool,conv8,pool,fc16", timesteps=3, weight_bits=4)


def tiny_model(spec: ModelSpec, data=None, seed: int = 0):
    """Random weights, or one epoch on `data` when given."""
    torch.manual_seed(seed)
    model = build_model(spec)
    if data is not None:
        step = TrainStep(model, torch.optim.Adam(model.parameters(), lr=2e-3))
        train_one_epoch(step, data.train, 64, torch.device("cpu"),
                        torch.Generator().manual_seed(seed), "train")
    return model.eval()


@pytest.mark.parametrize("encoding", ["direct", "rate"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("trained", [False, True])
def test_step_graph_is_bit_exact(tmp_path, mnist_small, encoding, reset, trained):
    spec = ModelSpec(encoding=encoding, reset=reset, **TINY)
    model = tiny_model(spec, mnist_small if trained else None)
    path = tmp_path / "step.qonnx.onnx"
    meta = export_graph(model, spec, path)
    assert not model.training  # export leaves the network in evaluation mode
    assert meta["state_shapes"] == [[4, 28, 28], [8, 14, 14], [16]]
    assert read_metadata(path)["spec"] == spec.to_dict()
    report = verify_graph(path, model, spec, mnist_small.test.images[:4],
                          mnist_small.test.labels[:4])
    assert report["passed"], report
    graph, onnxruntime = report["qonnx_vs_pytorch"], report["onnxruntime_vs_qonnx"]
    assert graph["membranes_bit_exact"] and graph["spikes_bit_exact"]
    assert onnxruntime["membranes_bit_exact"] and onnxruntime["max_abs_logit_error"] == 0
    assert onnxruntime["spikes_bit_exact"] is None  # the standard-ONNX graph shows no spikes
    compared = {name: layer["entries_compared"] for name, layer in graph["layers"].items()}
    assert compared == {"conv1": 4 * spec.timesteps * 4 * 28 * 28,  # images x T x neurons
                        "conv2": 4 * spec.timesteps * 8 * 14 * 14, "fc1": 4 * spec.timesteps * 16}
    assert graph["max_abs_logit_error"] <= 1e-5


@pytest.mark.parametrize("encoding, reset", [("direct", "subtract"), ("rate", "zero")])
def test_standard_onnx_graph_runs_bit_exact_in_onnxruntime(tmp_path, mnist_small, encoding,
                                                           reset):
    """The standard-ONNX file export_graph writes (Quant / BipolarQuant lowered to standard
    operators): onnxruntime = qonnx, every output of every step, membranes fed back."""
    import numpy as np
    import onnxruntime as ort
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from export.qonnx.standard_onnx import standard_path

    spec = ModelSpec(encoding=encoding, reset=reset, **TINY)
    path = tmp_path / "step.qonnx.onnx"
    meta = export_graph(tiny_model(spec, mnist_small), spec, path)
    assert standard_path(path) == tmp_path / "step.onnx"
    lowered = onnx.load(str(standard_path(path)))
    assert {n.domain for n in lowered.graph.node} == {""}
    session = ort.InferenceSession(str(standard_path(path)), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    graph = ModelWrapper(str(path))
    image = mnist_small.test.images[:1].float() / 256
    states = {f"in_{n}": np.zeros([1, *s], np.float32)
              for n, s in zip(meta["state_names"], meta["state_shapes"], strict=True)}
    frames = torch.Generator().manual_seed(0)
    for _ in range(spec.timesteps):
        x = image if encoding == "direct" else torch.bernoulli(image * 256 / 255, generator=frames)
        feed = {"x": x.numpy(), **states}
        ours = dict(zip(names, session.run(None, feed), strict=True))
        theirs = execute_onnx(graph, feed)
        for name in names:
            np.testing.assert_array_equal(ours[name], theirs[name])
        states = {f"in_{n}": ours[f"out_{n}"] for n in meta["state_names"]}
    assert any(state.any() for state in states.values())


def test_a_graph_path_without_the_qonnx_suffix_is_one_line_and_writes_nothing(tmp_path):
    """g.onnx would be its own standard-ONNX form: refused before anything is written."""
    spec = ModelSpec(**TINY)
    with pytest.raises(UserError, match=r"^graph path .*g\.onnx must end in \.qonnx\.onnx"):
        export_graph(tiny_model(spec), spec, tmp_path / "g.onnx")
    assert not list(tmp_path.iterdir())


def test_standard_onnx_rejects_unknown_qonnx_operators():
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    from export.qonnx.standard_onnx import LowerToStandardONNX

    node = helper.make_node("Trunc", ["x"], ["y"], domain="qonnx.custom_op.general")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])])
    with pytest.raises(UserError, match="no standard-ONNX form for QONNX operator Trunc"):
        ModelWrapper(helper.make_model(graph)).transform(LowerToStandardONNX())


def test_ann_graph_verifies(tmp_path, mnist_small):
    spec = ModelSpec(kind="ann", timesteps=1, layers="conv4,pool,conv8,pool,fc16", weight_bits=4)
    model = tiny_model(spec, mnist_small)
    path = tmp_path / "ann.qonnx.onnx"
    export_graph(model, spec, path)
    report = verify_graph(path, model, spec, mnist_small.test.images[:4],
                          mnist_small.test.labels[:4])
    graph = report["qonnx_vs_pytorch"]
    assert report["passed"] and graph["membranes_bit_exact"] is None
    assert graph["spikes_bit_exact"] is None and graph["identical_predictions"] == 4


def test_verification_catches_a_wrong_graph(tmp_path, mnist_small):
    spec = ModelSpec(**TINY)
    model = tiny_model(spec, mnist_small)
    path = tmp_path / "step.qonnx.onnx"
    export_graph(model, spec, path)
    graph = onnx.load(str(path))
    leak = next(init for init in graph.graph.initializer
                if onnx.numpy_helper.to_array(init).size == 1
                and float(onnx.numpy_helper.to_array(init)) == spec.beta)
    leak.CopyFrom(onnx.numpy_helper.from_array(
        onnx.numpy_helper.to_array(leak) * 0 + 0.75, leak.name))  # wrong beta in the graph
    onnx.save(graph, str(path))
    report = verify_graph(path, model, spec, mnist_small.test.images[:4],
                          mnist_small.test.labels[:4])
    graph = report["qonnx_vs_pytorch"]
    assert not report["passed"] and not graph["membranes_bit_exact"]
    assert graph["first_mismatch"].startswith("membranes of conv")


def test_foreign_onnx_file_is_rejected(tmp_path):
    path = tmp_path / "other.onnx"
    node = onnx.helper.make_node("Relu", ["x"], ["y"])
    graph = onnx.helper.make_graph(
        [node], "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph), str(path))
    with pytest.raises(UserError, match="is not a qsnn-step-graph/1 graph"):
        read_metadata(path)
    path.write_bytes(b"garbage")
    with pytest.raises(UserError, match="is not a readable ONNX file"):
        read_metadata(path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist_small, data_dir):
    """A run folder with a 1-epoch tiny SNN and its verified export."""
    runs = tmp_path_factory.mktemp("runs")
    spec = ModelSpec(**TINY)
    model = tiny_model(spec, mnist_small)
    run = runs / "tiny"
    save_checkpoint(run / "best.pt", spec, model, train_config=TrainConfig(limit=600).to_dict(),
                    epoch=1)
    export_main([str(run), "--data-dir", str(data_dir), "--images", "3"])
    return run


def test_make_export_writes_graph_and_verification(tiny_run):
    report = json.loads((tiny_run / "export" / "verification.json").read_text())
    assert report["passed"] and report["images"] == 3 and report["graph"] == "step.qonnx.onnx"
    assert report["onnxruntime_vs_qonnx"]["passed"]
    standard = onnx.load(str(tiny_run / "export" / "step.onnx"))
    assert {node.domain for node in standard.graph.node} == {""}
    hw = report["hw_graph"]
    assert hw["graph"] == "step_hw.onnx" and hw["passed"] and len(hw["layers"]) == 3
    assert (tiny_run / "export" / "step_hw.onnx").exists()


def test_finn_estimate_build_of_a_tiny_network(tiny_run):
    fpga_main([str(tiny_run), "--part", "xc7z020clg400-1", "--target-fps", "2000"])
    out = tiny_run / "fpga" / "xc7z020clg400-1"
    summary = json.loads((out / "summary.json").read_text())
    assert {"estimate_layer_resources.json", "estimate_layer_cycles.json",
            "estimate_network_performance.json"} <= {p.name for p in (out / "report").iterdir()}
    assert (out / "folding_config.json").exists() and (out / "summary.csv").exists()
    mvaus = [layer for layer in summary["layers"] if layer["op_type"].startswith("MVAU")]
    assert len(mvaus) == 4 and all(layer["lut"] > 0 for layer in mvaus)
    lifs = [layer for layer in summary["layers"] if layer["op_type"] == "LIF_rtl"]
    assert len(lifs) == 3 and all(layer["lut"] > 0 and layer["pe"] >= 1 for layer in lifs)
    assert summary["float_layers"] == [] and all(layer["lut"] is not None
                                                 for layer in summary["layers"])
    finn_report = json.loads((out / "report" / "estimate_layer_resources.json").read_text())
    assert set(summary["lif_layers"]) <= set(finn_report)
    assert summary["fits"] is True and summary["totals"]["lut"] > 0
    assert summary["latency_per_inference_cycles"] == (
        summary["critical_path_cycles"] + 2 * summary["cycles_per_timestep"])
    assert summary["target_met"] == (summary["throughput_inferences_per_s"] >= 2000)


def test_bad_export_and_fpga_inputs(tmp_path, tiny_run):
    with pytest.raises(UserError, match="does not exist"):
        export_main([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"has no best\.pt"):
        fpga_main([str(tmp_path / "empty")])
    with pytest.raises(UserError, match="part='xc9z999' is not supported; allowed: "):
        fpga_main([str(tiny_run), "--part", "xc9z999"])
    with pytest.raises(UserError, match="needs Xilinx Vivado/Vitis"):
        fpga_main([str(tiny_run), "--build"])
    stale = tmp_path / "stale"
    shutil.copytree(tiny_run, stale)
    (stale / "export" / "step_hw.onnx").unlink()
    with pytest.raises(UserError, match=r"step_hw\.onnx does not exist; run `make export` first"):
        fpga_main([str(stale)])


@pytest.mark.parametrize("layers", ["conv4k5p0,maxpool3,conv8k5p0,fc16", "conv4s2,conv8s2,fc16",
                                    "conv4k5p0,avgpool2,conv8,avgpool2,fc16"])
def test_kernels_strides_paddings_and_pools_export_bit_exact_to_finn(tmp_path, mnist_small,
                                                                     layers):
    from export.finn.finn_graph import check_hw_graph, write_hw_graph

    spec = ModelSpec(layers=layers, timesteps=2, weight_bits=4)
    model = tiny_model(spec)
    path = tmp_path / "step.qonnx.onnx"
    export_graph(model, spec, path)
    images, labels = mnist_small.test.images[:2], mnist_small.test.labels[:2]
    report = verify_graph(path, model, spec, images, labels)
    graph = report["qonnx_vs_pytorch"]
    assert report["passed"] and graph["spikes_bit_exact"] and graph["membranes_bit_exact"]
    hw = check_hw_graph(write_hw_graph(path), model, spec, images)
    assert hw["passed"] and hw["spikes_bit_exact"] and hw["membranes_bit_exact"]
    assert hw["max_abs_logit_error"] == 0 and hw["engine_spikes_per_image"] > 0


def test_an_average_pool_finn_cannot_shift_is_refused_by_finn_in_one_line(tmp_path, data_dir):
    spec = ModelSpec(layers="conv4k5p0,avgpool3,fc16", timesteps=2, weight_bits=4)
    run = tmp_path / "avg"
    save_checkpoint(run / "best.pt", spec, tiny_model(spec),
                    train_config=TrainConfig(limit=600).to_dict(), epoch=1)
    with pytest.raises(UserError, match=r"written and verified \(verification.json\), but the "
                                        r"FINN hardware graph cannot build layer conv1 "
                                        r"\(conv4k5s1p0\+avgpool3\)"):
        export_main([str(run), "--data-dir", str(data_dir), "--images", "1"])
    assert json.loads((run / "export" / "verification.json").read_text())["images"] == 1
