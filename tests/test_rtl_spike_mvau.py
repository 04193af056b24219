"""SpikeMVAU_rtl, the accumulate-only MVU for {0, 1} spikes: its RTL simulated with Verilator
through FINN's own rtlsim path (PrepareIP -> PrepareRTLSim -> execute_node) against
np.matmul and FINN's numpy MVAU on random spikes and INT4 / INT8 weights, under random
backpressure, its estimates against hand counts, its refusals, and SpikeMVAUToRTL."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from common.errors import UserError

FPGA_PART = "xc7z020clg400-1"
CLOCK_NS = 10.0


@pytest.fixture(scope="module")
def finn(tmp_path_factory):
    """FINN prepared (no Vivado) with its rtlsim bound to Verilator."""
    from export.finn.finn_flow import prepare_finn

    prepare_finn(tmp_path_factory.mktemp("finn_build"))
    from export.rtl.verilator_xsi import install

    install()
    import export.rtl.spike_mvau as spike_mvau

    return spike_mvau


def accumulator_type(weights: np.ndarray) -> str:
    """The smallest INTn holding every column's sum of negative and of positive weights
    (the extremes of a {0, 1} x W dot product)."""
    low = np.minimum(weights, 0).sum(axis=0).min()
    high = np.maximum(weights, 0).sum(axis=0).max()
    bits = 2
    while not (-(2 ** (bits - 1)) <= low and high < 2 ** (bits - 1)):
        bits += 1
    return f"INT{bits}"


def mvau_model(mw, mh, simd, pe, vectors, weight_type, seed, op_type="MVAU_hls",
               input_type="BINARY", name="spike_mvau_0", **attrs):
    """One MVAU node (FINN's hls domain unless op_type says otherwise) with random weights."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    rng = np.random.default_rng(seed)
    wdt = DataType[weight_type]
    weights = rng.integers(wdt.min(), wdt.max() + 1, size=(mw, mh)).astype(np.float32)
    domain = {"MVAU_hls": "finn.custom_op.fpgadataflow.hls", "MVAU": "finn.custom_op.fpgadataflow",
              "SpikeMVAU_rtl": "finn.custom_op.fpgadataflow.rtl"}[op_type]
    settings = dict(MW=mw, MH=mh, SIMD=simd, PE=pe, numInputVectors=list(vectors),
                    inputDataType=input_type, weightDataType=weight_type,
                    outputDataType=accumulator_type(weights), noActivation=1,
                    mem_mode="internal_decoupled", backend="fpgadataflow")
    settings.update(attrs)
    settings["accDataType"] = settings["outputDataType"]
    node = helper.make_node(op_type, ["inp", "weights"], ["outp"], domain=domain, name=name,
                            **settings)
    graph = helper.make_graph(
        [node], "spike_mvau",
        [helper.make_tensor_value_info("inp", TensorProto.FLOAT, [1, *vectors[1:], mw])],
        [helper.make_tensor_value_info("outp", TensorProto.FLOAT, [1, *vectors[1:], mh])],
        value_info=[helper.make_tensor_value_info("weights", TensorProto.FLOAT, [mw, mh])])
    model = ModelWrapper(helper.make_model(graph, producer_name="test"))
    model.set_tensor_datatype("inp", DataType[input_type])
    model.set_tensor_datatype("weights", wdt)
    model.set_tensor_datatype("outp", DataType[settings["outputDataType"]])
    model.set_initializer("weights", weights)
    return model


def spikes(model, seed: int) -> np.ndarray:
    shape = model.get_tensor_shape("inp")
    return np.random.default_rng(seed).integers(0, 2, size=shape).astype(np.float32)


def for_rtlsim(model, spike_mvau):
    """SpikeMVAUToRTL, then FINN's own PrepareIP, PrepareRTLSim and SetExecMode."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from finn.transformation.fpgadataflow.prepare_rtlsim import PrepareRTLSim
    from finn.transformation.fpgadataflow.set_exec_mode import SetExecMode

    model = model.transform(spike_mvau.SpikeMVAUToRTL())
    assert model.graph.node[0].op_type == "SpikeMVAU_rtl"
    model = model.transform(PrepareIP(FPGA_PART, CLOCK_NS)).transform(PrepareRTLSim())
    return model.transform(SetExecMode("rtlsim"))


def run(model, x: np.ndarray) -> np.ndarray:
    from finn.core.onnx_exec import execute_onnx

    return execute_onnx(model, {"inp": x})["outp"]


CASES = {  # (MW, MH, SIMD, PE, numInputVectors, weightDataType)
    "fc_folded": (12, 6, 3, 2, [1], "INT4"),
    "conv_parallel": (9, 4, 9, 4, [1, 3, 3], "INT8"),
    "serial": (5, 3, 1, 1, [1, 2], "INT4"),
    "unsigned_weights": (6, 4, 2, 2, [1, 2], "UINT3"),
}


@pytest.mark.parametrize("case", CASES)
def test_rtlsim_equals_numpy_mvau(finn, case):
    from qonnx.custom_op.registry import getCustomOp

    mw, mh, simd, pe, vectors, wtype = CASES[case]
    reference = mvau_model(mw, mh, simd, pe, vectors, wtype, seed=0,
                           op_type="SpikeMVAU_rtl")
    model = for_rtlsim(mvau_model(mw, mh, simd, pe, vectors, wtype, seed=0), finn)
    weights = model.get_initializer("weights")
    for trial in range(2):
        x = spikes(model, seed=trial)
        expected = np.matmul(x, weights)
        assert np.array_equal(run(reference, x), expected)  # FINN's numpy MVAU (exec_mode "")
        assert np.array_equal(run(model, x), expected)
    op = getCustomOp(model.graph.node[0])
    frames = int(np.prod(vectors))
    assert op.get_exp_cycles() == frames * (mw // simd) * (mh // pe)
    latency = int(np.ceil(np.log2(simd))) + 2  # stage 1, adder levels, output register
    assert op.get_exp_cycles() <= op.get_nodeattr("cycles_rtlsim") <= op.get_exp_cycles() + \
        latency + 4  # II = 1: the run is the schedule plus the pipeline and driver overhead


class RandomReadyCollector:
    """A SimEngine task collecting `size` output words with TREADY low at random cycles."""

    def __init__(self, sim, size: int, seed: int) -> None:
        self.size, self.buf, self.rng = size, [], np.random.default_rng(seed)
        self.vld, self.rdy, self.dat = (sim.get_bus_port("out0_V", s)
                                        for s in ("TVALID", "TREADY", "TDATA"))

    def __call__(self, sim):
        if self.rdy.as_bool() and self.vld.read().as_bool():
            self.buf.append(self.dat.read().as_hexstr())
        if len(self.buf) == self.size:
            return None
        return {self.rdy: "1" if self.rng.random() < 0.5 else "0"}


def test_backpressure_and_back_to_back_vectors(finn):
    """Three vectors streamed without a gap, input throttled, output stalled at random: the
    words are the same as numpy's (the fc model, cached from the test above)."""
    from finn.util.data_packing import npy_to_rtlsim_input, rtlsim_output_to_npy
    from qonnx.custom_op.registry import getCustomOp

    mw, mh, simd, pe, vectors, wtype = CASES["fc_folded"]
    model = for_rtlsim(mvau_model(mw, mh, simd, pe, vectors, wtype, seed=0),
                       finn)
    op = getCustomOp(model.graph.node[0])
    x = np.random.default_rng(7).integers(0, 2, size=(3, mw // simd, simd)).astype(np.float32)
    words = npy_to_rtlsim_input(x, op.get_input_datatype(0), op.get_instream_width(0))
    sim = op.get_rtlsim()
    op.reset_rtlsim(sim)
    sim.stream_input("in0_V", (format(w, "x") for w in words), throttle=(2, 1))
    collector = RandomReadyCollector(sim, 3 * mh // pe, seed=3)
    sim.enlist(collector)
    assert sim.run(cycles=2000) == []  # no watchdog fired
    op.close_rtlsim(sim)
    odt = op.get_output_datatype()
    out = rtlsim_output_to_npy([int(w, 16) for w in collector.buf], None, odt,
                               (3, mh // pe, pe), op.get_outstream_width(), odt.bitwidth())
    expected = np.matmul(x.reshape(3, mw), model.get_initializer("weights"))
    assert np.array_equal(out.reshape(3, mh), expected)


def test_refuses_what_it_cannot_implement(finn):
    from qonnx.custom_op.registry import getCustomOp

    for wtype, attrs, word in [("INT4", {"input_type": "UINT2"}, "inputDataType=UINT2"),
                               ("INT4", {"noActivation": 0}, "noActivation=0"),
                               ("INT4", {"mem_mode": "external"}, "mem_mode=external"),
                               ("BIPOLAR", {}, "weightDataType=BIPOLAR")]:
        op = getCustomOp(mvau_model(4, 2, 2, 1, [1], wtype, seed=0, op_type="SpikeMVAU_rtl",
                                    **attrs).graph.node[0])
        with pytest.raises(UserError, match=word) as error:
            op.check()
        assert "\n" not in str(error.value)
        with pytest.raises(UserError, match=word):
            op.lut_estimation()


def test_converts_binary_mvau_only(finn):
    from qonnx.custom_op.registry import getCustomOp

    binary = mvau_model(8, 4, 2, 2, [1, 2, 2], "INT4", seed=1, op_type="MVAU_hls")
    before = {a.name: helper.get_attribute_value(a) for a in binary.graph.node[0].attribute}
    converted = binary.transform(finn.SpikeMVAUToRTL())
    node = converted.graph.node[0]
    assert (node.op_type, node.domain, node.name) == (
        "SpikeMVAU_rtl", "finn.custom_op.fpgadataflow.rtl", "spike_mvau_0")
    after = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert {k: after[k] for k in before} == before  # the same layer attributes
    assert isinstance(getCustomOp(node), finn.SpikeMVAU_rtl)
    abstract = mvau_model(8, 4, 2, 2, [1], "INT4", seed=1, op_type="MVAU")
    assert abstract.transform(finn.SpikeMVAUToRTL()).graph.node[0].op_type == "SpikeMVAU_rtl"
    uint8 = mvau_model(8, 4, 2, 2, [1], "INT4", seed=1, input_type="UINT8")
    kept, changed = finn.SpikeMVAUToRTL().apply(uint8)
    assert not changed and kept.graph.node[0].op_type == "MVAU_hls"


def test_estimates_against_hand_counts(finn):
    """SIMD 9, PE 4, INT4 weights, MW 18, MH 8 (SF 2, NF 2, WMEM 4, 8-bit output):
    tree per lane: 4 adders x 5 bits + 2 x 6 + 1 x 7 + 1 x 8 = 47 LUTs; accumulator 8;
    ROM 4 words of 144 bits in LUTs: 144; buffer 9 x (1 + 1) = 18; counters 1 + 1 + 2 + 4."""
    from qonnx.custom_op.registry import getCustomOp

    model = mvau_model(18, 8, 9, 4, [1], "INT4", seed=2, op_type="SpikeMVAU_rtl",
                       outputDataType="INT8")
    op = getCustomOp(model.graph.node[0])
    assert finn.adder_tree_luts(9, 4) == 47
    assert op.lut_estimation() == 4 * (47 + 8) + 144 + 18 + 8
    assert op.dsp_estimation() == 0 and op.bram_estimation() == 0
    op.set_nodeattr("ram_style", "block")  # 4 x 144 bits: 4 RAMB18 of 36 bits
    assert op.bram_estimation() == 4
    assert op.lut_estimation() == 4 * (47 + 8) + 18 + 8
