"""The LIF layer as a FINN hardware layer: the hardware graph of a tiny network checked bit for
bit against PyTorch over T steps, the op's shapes, streams, folding and estimates against
hand counts, its HLS code, and the one-line refusals of graphs it cannot map."""
import numpy as np
import pytest
from onnx import helper
from test_export import TINY, tiny_model

from common.errors import UserError
from export.finn.finn_graph import check_hw_graph, hw_graph_path, write_hw_graph
from export.qonnx.step_graph import export_graph
from model.spec import ModelSpec


@pytest.mark.parametrize("encoding, reset", [("direct", "subtract"), ("rate", "zero")])
def test_hardware_graph_is_bit_exact_against_torch(tmp_path, mnist_small, encoding, reset):
    spec = ModelSpec(encoding=encoding, reset=reset, **TINY)
    model = tiny_model(spec, mnist_small)
    graph = tmp_path / "step.qonnx.onnx"
    export_graph(model, spec, graph)
    path = write_hw_graph(graph)
    assert path == hw_graph_path(graph) == tmp_path / "step_hw.onnx"
    report = check_hw_graph(path, model, spec, mnist_small.test.images[:3])
    assert report["passed"], report
    assert len(report["layers"]) == 3 and report["identical_predictions"] == 3
    assert report["membranes_bit_exact"] and report["max_abs_logit_error"] == 0
    assert report["engine_spikes_per_image"] > 0  # the layers fired: not vacuous
    from export.finn.finn_graph import HardwareGraph

    hw = HardwareGraph(path, spec)
    kinds = {node.op_type for node in hw.model.graph.node}
    assert kinds <= {"Transpose", "FMPadding", "ConvolutionInputGenerator", "MVAU", "LIF",
                     "Pool"}, kinds  # no float elementwise layers, no membrane thresholds
    assert [i.name for i in hw.model.graph.input] == ["global_in"]  # membranes inside
    from qonnx.custom_op.registry import getCustomOp

    from export.finn.folding import frames_per_inference

    held = [getCustomOp(node).get_nodeattr("heldInput") for node in hw.lifs]
    assert held == ([1, 0, 0] if encoding == "direct" else [0, 0, 0])
    frames = frames_per_inference(hw.model)  # conv1 once per image under direct encoding
    conv1 = {"Transpose", "FMPadding", "ConvolutionInputGenerator", "MVAU"}
    before_lif1 = [n for n in hw.model.graph.node[:list(hw.model.graph.node).index(hw.lifs[0])]]
    assert {n.op_type for n in before_lif1} == conv1
    assert all(frames[n.name] == (1 if encoding == "direct" else 3) for n in before_lif1)
    assert all(frames[n.name] == 3 for n in hw.model.graph.node if n not in before_lif1)
    from export.finn.fpga_estimate import _without_held_input

    unheld = _without_held_input(path, tmp_path / "unheld_hw.onnx")  # the best-fit variant
    if encoding == "direct":
        assert set(frames_per_inference(HardwareGraph(unheld, spec).model).values()) == {3}
    else:
        assert unheld is None  # nothing held, no variant


def test_hardware_graph_of_a_non_seed_topology_is_bit_exact(tmp_path, mnist_small):
    """Two convs before a pool, an odd map pooled (7 -> 3), two fc LIF layers."""
    spec = ModelSpec(layers="conv4,conv4,pool,conv8,pool,conv8,pool,fc16,fc16", timesteps=2,
                     weight_bits=4)
    model = tiny_model(spec, mnist_small)
    graph = tmp_path / "step.qonnx.onnx"
    export_graph(model, spec, graph)
    report = check_hw_graph(write_hw_graph(graph), model, spec, mnist_small.test.images[:3])
    assert report["passed"], report
    assert len(report["layers"]) == 6 and report["engine_spikes_per_image"] > 0


def test_a_wrong_shift_in_the_lif_layer_is_caught(tmp_path, mnist_small):
    from qonnx.custom_op.registry import getCustomOp

    from export.finn.finn_graph import HardwareGraph

    spec = ModelSpec(**TINY)
    model = tiny_model(spec, mnist_small)
    graph = tmp_path / "step.qonnx.onnx"
    export_graph(model, spec, graph)
    hw = HardwareGraph(write_hw_graph(graph), spec)
    op = getCustomOp(hw.lifs[1])
    op.set_nodeattr("leakShift", op.get_nodeattr("leakShift") + 1)  # beta / 2
    hw.model.save(str(tmp_path / "step_hw.onnx"))
    report = check_hw_graph(tmp_path / "step_hw.onnx", model, spec, mnist_small.test.images[:3])
    assert not report["passed"] and report["first_mismatch"].startswith("membranes of conv2")


def test_a_float_membrane_is_refused_in_one_line(tmp_path):
    spec = ModelSpec(state_bits=32, **TINY)
    graph = tmp_path / "step.qonnx.onnx"
    export_graph(tiny_model(spec), spec, graph)
    with pytest.raises(UserError, match=r"^LIF layer 1 \(membrane_1\): float membrane "
                                        r"\(state_bits=32\)"):
        write_hw_graph(graph)


def lif_node(shape=(1, 14, 14, 8), pe=4, state_bits=8, reset="subtract", **attrs):
    from qonnx.custom_op.registry import getCustomOp

    import export.finn.finn_lif  # noqa: F401 (registers LIF / LIF_hls)

    node = helper.make_node(
        "LIF_hls", ["a", "v"], ["s"], domain="finn.custom_op.fpgadataflow.hls", name="LIF_hls_0",
        backend="fpgadataflow", NumChannels=shape[-1], numInputVectors=list(shape[:-1]), PE=pe,
        inputDataType="INT12", numSteps=4, stateBits=state_bits, stateFrac=6, leakShift=1,
        currentFrac=9, thetaCode=32, resetMode=reset, **attrs)
    return getCustomOp(node)


def test_lif_op_shapes_streams_cycles_and_estimates():
    from hw_model.fpga import lif_datapath_luts

    op = lif_node()  # 14 x 14 x 8 = 1568 neurons, PE 4
    assert op.get_normal_input_shape() == (1, 14, 14, 8)
    assert op.get_folded_input_shape() == (1, 14, 14, 2, 4)
    assert op.get_instream_width() == 4 * 12 and op.get_outstream_width() == 4
    assert op.get_instream_width(1) == 0  # the state memory is not a stream
    assert op.get_exp_cycles() == 1568 // 4
    lif = op.neuron()  # F = 9 > Q + K = 7: x = (v << 2) + a, round by 3
    assert (lif.shift_v, lif.shift_a, lif.round_shift, lif.x_bits) == (2, 0, 3, 13)
    # 392 words of 4 x 8 = 32 bits > 128 words: BRAM18, 512 x 36 -> 1
    assert op.bram_estimation() == 1 and op.uram_estimation() == 0 and op.dsp_estimation() == 0
    counters = 9 + 2  # ceil(log2 392) address bits, ceil(log2 4) timestep bits
    assert op.lut_estimation() == 4 * lif_datapath_luts(8, 13, 3) + counters
    small = lif_node(shape=(1, 16), pe=1)  # 16 words: LUTRAM, one RAM64M x ceil(8 / 3)
    assert small.bram_estimation() == 0
    assert small.lut_estimation() == lif_datapath_luts(8, 13, 3) + 4 + 2 + 3 * 4
    assert lif_node(ram_style="block", shape=(1, 16), pe=1).bram_estimation() == 1
    held = lif_node(heldInput=1)  # + 392 words of 4 x 12 = 48 bits of held currents: 2 x 512 x 36
    assert held.bram_estimation() == 1 + 2
    assert held.lut_estimation() == op.lut_estimation() + 4 * 12


def test_lif_op_executes_the_integer_neuron_and_keeps_its_membrane():
    from common.integer_lif import IntegerLIF

    op = lif_node(shape=(1, 6), pe=2, reset="zero")
    rng = np.random.default_rng(0)
    current = rng.integers(-2048, 2048, (1, 6)).astype(np.float32)
    context = {"a": current, "v": np.zeros((1, 6), np.float32), "s": np.zeros((1, 6))}
    expected_v = np.zeros((1, 6), np.int64)
    for _ in range(3):
        op.execute_node(context, None)
        spikes, expected_v = op.neuron().step(expected_v, current)
        np.testing.assert_array_equal(context["s"], spikes)
        np.testing.assert_array_equal(context["v"], expected_v)
    assert isinstance(op.neuron(), IntegerLIF) and op.neuron().reset == "zero"
    context["a"] = current + 0.5
    with pytest.raises(UserError, match="needs integer input currents"):
        op.execute_node(context, None)


def test_lif_hls_code_calls_the_shared_kernel(tmp_path):
    op = lif_node()
    op.docompute()
    op.blackboxfunction()
    call = op.code_gen_dict["$DOCOMPUTE$"][0]
    assert call.startswith("lif_layer<1568, 4, 4, 12, 8, 13, 2, 0, 3, 32, 0, 0>(in0_V, out0_V)")
    assert "ap_uint<48>> &in0_V" in op.code_gen_dict["$BLACKBOXFUNCTION$"][0]
    op.generate_params(None, tmp_path)
    assert (tmp_path / "lif.h").read_text().count("void lif_layer(") == 1


def test_fold_lif_takes_the_smallest_pe_that_meets_the_target():
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    from export.finn.folding import FoldLIF

    graph = helper.make_graph([lif_node(pe=1).onnx_node], "g", [], [])
    model = ModelWrapper(qonnx_make_model(graph))

    def folded_pe(target_cycles: float) -> int:
        node = model.transform(FoldLIF(target_cycles)).graph.node[0]
        return getCustomOp(node).get_nodeattr("PE")

    assert folded_pe(400) == 4  # 1568 neurons: PE 4 -> 392 cycles
    assert folded_pe(1) == 8  # unreachable: every channel in parallel


def test_the_analytic_model_uses_finns_weight_stream_limit():
    from finn.custom_op.fpgadataflow.hlsbackend import MAX_ALLOWED_AP_INT_W

    from hw_model.fpga import MAX_WEIGHT_STREAM_BITS

    assert MAX_WEIGHT_STREAM_BITS == MAX_ALLOWED_AP_INT_W  # hw_model cannot import finn
