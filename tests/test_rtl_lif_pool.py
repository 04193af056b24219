"""The project's SystemVerilog layers (export/rtl) through FINN's own RTL path: PrepareIP and
PrepareRTLSim on a one-node model, simulated on Verilator by FINN's rtlsim driver.

LIF_rtl over T frames (two images per run, so the frame counter's restart is checked) against
common.integer_lif.IntegerLIF stepped in numpy; a wrong leak in the RTL parameters is caught; the
handshakes survive input bubbles and output stalls. Pool_rtl against FINN's numpy Pool, alone
and behind FINN's own depthwise sliding window (ConvolutionInputGenerator_rtl); SpecializeLayers
picks it; AvgPool and non-binary inputs are refused in one line."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
from onnx import TensorProto, helper

from common.errors import UserError
from common.integer_lif import IntegerLIF

PART, CLK_NS = "xc7z020clg400-1", 10.0
IMAGES = 2


@pytest.fixture(scope="module", autouse=True)
def finn_on_verilator(tmp_path_factory):
    """FINN prepared (no Vivado), its rtlsim bound to Verilator, the RTL ops registered."""
    from export.finn.finn_flow import prepare_finn

    prepare_finn(tmp_path_factory.mktemp("finn_build"))
    from export.rtl.verilator_xsi import install

    install()
    from export.rtl import lif_rtl, pool_rtl  # noqa: F401 (they register LIF_rtl, Pool_rtl)


def one_node_model(node, inputs: dict, outputs: dict, initializers: dict | None = None):
    """A model of one node; inputs/outputs: name -> (shape, FINN datatype name)."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    def info(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))

    graph = helper.make_graph([node], "one_node", [info(n, s) for n, (s, _) in inputs.items()],
                              [info(n, s) for n, (s, _) in outputs.items()])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="test_rtl_lif_pool"))
    for name, (_, dtype) in {**inputs, **outputs}.items():
        model.set_tensor_datatype(name, DataType[dtype])
    for name, value in (initializers or {}).items():
        model.set_initializer(name, value)
    return model


def compiled(model):
    """FINN's code generation and Verilator build of every node (builds are cached)."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from finn.transformation.fpgadataflow.prepare_rtlsim import PrepareRTLSim

    return model.transform(PrepareIP(PART, CLK_NS)).transform(PrepareRTLSim())


# --- LIF_rtl -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LifCase:
    name: str
    pe: int
    shape: tuple  # numInputVectors + (NumChannels,)
    current: str  # FINN datatype of the currents
    state_bits: int
    q: int  # stateFrac
    k: int  # leakShift
    f: int  # currentFrac
    theta: int
    reset: str
    held: int
    ram_style: str
    steps: int = 3

    def neuron(self) -> IntegerLIF:
        from qonnx.core.datatype import DataType

        dtype = DataType[self.current]
        return IntegerLIF(self.state_bits, self.q, self.k, self.f,
                          dtype.bitwidth() + int(not dtype.signed()), self.theta, self.reset)


CASES = [
    # PE 1, LUTRAM, subtract, a live input every frame, round by 1
    LifCase("lif_a", 1, (1, 2, 3), "INT6", 6, 2, 1, 3, 10, "subtract", 0, "distributed"),
    # PE 2, BRAM, zero reset, held input; INT10 into 6-bit membranes saturates both ways
    LifCase("lif_b", 2, (1, 3, 4), "INT10", 6, 2, 2, 4, 20, "zero", 1, "block", steps=4),
    # PE 3, LUTRAM, held input, membrane shifted (F > Q + K), round by 4
    LifCase("lif_c", 3, (1, 2, 6), "INT8", 8, 3, 2, 7, 4, "subtract", 1, "distributed"),
    # PE 2, BRAM, live input, INT12 into 8-bit membranes saturates both ways, current shifted
    LifCase("lif_d", 2, (1, 4, 2), "INT12", 8, 0, 1, 0, 100, "subtract", 0, "block"),
    # one word (PE = all neurons), no leak and no rounding, unsigned currents, held, zero reset
    LifCase("lif_e", 4, (1, 4), "UINT4", 5, 1, 0, 0, 9, "zero", 1, "distributed"),
]


def lif_model(case: LifCase, leak_shift: int | None = None):
    node = helper.make_node(
        "LIF_rtl", ["a", "v"], ["s"], domain="finn.custom_op.fpgadataflow.rtl", name=case.name,
        backend="fpgadataflow", NumChannels=case.shape[-1], numInputVectors=list(case.shape[:-1]),
        PE=case.pe, inputDataType=case.current, numSteps=case.steps, stateBits=case.state_bits,
        stateFrac=case.q, leakShift=case.k if leak_shift is None else leak_shift,
        currentFrac=case.f, thetaCode=case.theta, resetMode=case.reset, heldInput=case.held,
        ram_style=case.ram_style)
    return one_node_model(node, {"a": (case.shape, case.current)}, {"s": (case.shape, "BINARY")},
                          {"v": np.zeros(case.shape, np.float32)})


def random_currents(case: LifCase, seed: int) -> np.ndarray:
    """(images, frames in per image) + shape, over the current type's whole range."""
    from qonnx.core.datatype import DataType

    dtype = DataType[case.current]
    frames = 1 if case.held else case.steps
    rng = np.random.default_rng(seed)
    return rng.integers(dtype.min(), dtype.max() + 1, (IMAGES, frames, *case.shape))


def expected_spikes(lif: IntegerLIF, currents: np.ndarray, steps: int) -> np.ndarray:
    """(images, steps) + shape spikes of IntegerLIF from zero membranes per image; a single
    frame of currents is held for all steps."""
    out = []
    for image in currents:
        membrane = np.zeros(image.shape[1:], np.int64)
        for step in range(steps):
            spikes, membrane = lif.step(membrane, image[min(step, len(image) - 1)])
            out.append(spikes)
    return np.array(out).reshape(len(currents), steps, *currents.shape[2:])


def folded(op, frames: np.ndarray) -> np.ndarray:
    return frames.reshape(-1, *op.get_folded_input_shape()[1:])


def rtl_spikes(model, currents: np.ndarray, steps: int) -> tuple[np.ndarray, int]:
    """(spikes, clock cycles) of the compiled node for the frames of currents, through FINN's
    rtlsim driver."""
    import finn.xsi
    from finn.util.data_packing import npy_to_rtlsim_input, rtlsim_output_to_npy
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(model.graph.node[0])
    words = npy_to_rtlsim_input(folded(op, currents.astype(np.float32)), op.get_input_datatype(0),
                                op.get_instream_width())
    frames_out = len(currents) * steps
    io_dict = {"inputs": {"in0": words}, "outputs": {"out0": []}}
    sim = op.get_rtlsim()
    try:
        finn.xsi.reset_rtlsim(sim)
        cycles = finn.xsi.rtlsim_multi_io(sim, io_dict,
                                          frames_out * op.get_number_output_values(), sname="_V")
    finally:
        finn.xsi.close_rtlsim(sim)
    shape = (frames_out, *op.get_folded_output_shape()[1:])
    spikes = rtlsim_output_to_npy(io_dict["outputs"]["out0"], None, op.get_output_datatype(),
                                  shape, op.get_outstream_width(), 1)
    return spikes.reshape(len(currents), steps, *currents.shape[2:]).astype(np.int64), cycles


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_lif_rtl_is_bit_exact_against_the_integer_neuron(case):
    model = compiled(lif_model(case))
    currents = random_currents(case, seed=case.pe)
    expected = expected_spikes(case.neuron(), currents, case.steps)
    spikes, cycles = rtl_spikes(model, currents, case.steps)
    np.testing.assert_array_equal(spikes, expected)
    assert 0 < expected.mean() < 1  # spikes and silences: the comparison is not vacuous
    words_out = expected.size // case.pe
    assert cycles <= words_out + 4  # II = 1: a word per cycle, + 4 cycles of latency (driver
    # and the module's two registers)


def test_the_saturating_cases_reach_both_ends():
    """lif_b and lif_d clamp membranes at state_max and state_min (so the RTL's clamp is
    exercised by the bit-exact test above)."""
    for case in (CASES[1], CASES[3]):
        lif = case.neuron()
        currents = random_currents(case, seed=case.pe)
        x = currents.astype(np.int64) << lif.shift_a  # the first frame: v = 0
        charged = x >> lif.round_shift
        assert charged.max() > lif.state_max and charged.min() < lif.state_min


def test_a_wrong_leak_in_the_rtl_is_caught():
    """The RTL built with leakShift + 1 (beta / 2) follows the wrong neuron, not the right one."""
    case = LifCase("lif_leak", 2, (1, 8), "INT6", 8, 2, 1, 3, 12, "subtract", 1, "distributed",
                   steps=6)
    wrong = replace(case, k=case.k + 1)
    model = compiled(lif_model(case, leak_shift=wrong.k))
    currents = random_currents(case, seed=case.pe)
    spikes, _ = rtl_spikes(model, currents, case.steps)
    np.testing.assert_array_equal(spikes, expected_spikes(wrong.neuron(), currents, case.steps))
    assert not np.array_equal(spikes, expected_spikes(case.neuron(), currents, case.steps))


class StallingCollector:
    """A SimEngine task: collects `size` words from out0_V, TREADY low on random cycles."""

    def __init__(self, sim, size: int, seed: int) -> None:
        self.valid, self.ready, self.data = (sim.get_bus_port("out0_V", s)
                                             for s in ("TVALID", "TREADY", "TDATA"))
        self.size, self.words = size, []
        self.rng = np.random.default_rng(seed)

    def __call__(self, sim):
        if len(self.words) == self.size:
            return None
        if self.ready.as_bool() and self.valid.read().as_bool():
            self.words.append(int(self.data.read().as_hexstr(), 16))
        ready = len(self.words) < self.size and self.rng.random() < 0.25
        return {self.ready: "1" if ready else "0"}


def stalled_run(op, words: list[int], words_out: int) -> list[int]:
    """The compiled node on FINN's SimEngine with input bubbles (2 words, then 1 idle
    cycles) and output stalls (StallingCollector): the words out."""
    import finn.xsi

    sim = op.get_rtlsim()
    try:
        finn.xsi.reset_rtlsim(sim)
        sim.stream_input("in0_V", (f"{w:0x}" for w in words), throttle=(2, 1))
        collector = StallingCollector(sim, words_out, seed=1)
        sim.enlist(collector)
        assert sim.run(20000) == []  # no timeout
    finally:
        finn.xsi.close_rtlsim(sim)
    return collector.words


@pytest.mark.parametrize("case", [CASES[1], CASES[3]], ids=["held_bram", "live_bram"])
def test_lif_rtl_neither_drops_nor_repeats_under_backpressure(case):
    from finn.util.data_packing import npy_to_rtlsim_input, rtlsim_output_to_npy
    from qonnx.custom_op.registry import getCustomOp

    model = compiled(lif_model(case))
    op = getCustomOp(model.graph.node[0])
    currents = random_currents(case, seed=7)
    words = npy_to_rtlsim_input(folded(op, currents.astype(np.float32)), op.get_input_datatype(0),
                                op.get_instream_width())
    frames_out = IMAGES * case.steps
    out = stalled_run(op, words, frames_out * op.get_number_output_values())
    spikes = rtlsim_output_to_npy(out, None, op.get_output_datatype(),
                                  (frames_out, *op.get_folded_output_shape()[1:]),
                                  op.get_outstream_width(), 1)
    expected = expected_spikes(case.neuron(), currents, case.steps)
    np.testing.assert_array_equal(spikes.reshape(expected.shape), expected)


def test_lif_rtl_runs_numpy_and_refuses_a_one_node_rtlsim():
    from qonnx.custom_op.registry import getCustomOp

    case = CASES[0]
    model = lif_model(case)
    op = getCustomOp(model.graph.node[0])
    current = random_currents(case, seed=3)[0, 0].astype(np.float32)
    context = {"a": current, "v": np.zeros(case.shape, np.float32),
               "s": np.zeros(case.shape, np.float32)}
    op.execute_node(context, model.graph)
    spikes, _ = case.neuron().step(np.zeros(case.shape, np.int64), current)
    np.testing.assert_array_equal(context["s"], spikes)
    op.set_nodeattr("exec_mode", "rtlsim")
    with pytest.raises(UserError, match=r"^lif_a: a one-node rtlsim of the LIF layer restarts "
                                        r"its membranes on every call; simulate the whole"):
        op.execute_node(context, model.graph)
    assert op.block_ram() is False and getCustomOp(lif_model(CASES[1]).graph.node[0]).block_ram()


def test_every_layer_lists_the_shared_modules_by_one_path():
    """A design of several layers then defines `lif` and `spike_maxpool` once."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.custom_op.registry import getCustomOp

    from export.rtl import lif_rtl, pool_rtl

    models = [lif_model(CASES[0]), lif_model(CASES[1]), pool_model(pool_node("pool", 4, 2), 4)]
    files = [getCustomOp(m.transform(PrepareIP(PART, CLK_NS)).graph.node[0])
             .get_rtl_file_list(abspath=True) for m in models]
    shared = [str(lif_rtl.LIF_rtl.hdl_path())] * 2 + [str(pool_rtl.Pool_rtl.hdl_path())]
    assert [f[0] for f in files] == shared
    assert files[0][1] != files[1][1] and all(f[1].endswith(".sv") for f in files)


def test_lif_rtl_refuses_a_one_word_bram():
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(lif_model(replace(CASES[4], ram_style="block")).graph.node[0])
    with pytest.raises(UserError, match=r"^lif_e: ram_style=block puts 1 word in BRAM; BRAM "
                                        r"needs >= 2 words"):
        op.hdl_parameters()


# --- Pool_rtl ------------------------------------------------------------------------------

def pool_node(name: str, channels: int, pe: int, function: str = "MaxPool",
              dtype: str = "BINARY", out_dims=(3, 3), kernel=(2, 2), op_type: str = "Pool_rtl",
              **attrs):
    domain = "finn.custom_op.fpgadataflow" + (".rtl" if op_type == "Pool_rtl" else "")
    return helper.make_node(
        op_type, ["x"], ["y"], domain=domain, name=name, backend="fpgadataflow",
        Channels=channels, PE=pe, KernelSize=list(kernel), Function=function,
        OutImgDims=list(out_dims), InputDataType=dtype, OutputDataType=dtype, **attrs)


def pool_model(node, channels: int, dtype: str = "BINARY", out_dims=(3, 3), k2: int = 4):
    return one_node_model(node, {"x": ((1, *out_dims, k2 * channels), dtype)},
                          {"y": ((1, *out_dims, channels), dtype)})


def stream_order(im2col: np.ndarray, k2: int, channels: int, pe: int) -> np.ndarray:
    """FINN's depthwise sliding-window stream of an im2col tensor (kernel position major):
    per pixel, channel fold major, then kernel position, then PE lanes."""
    pixels = im2col.shape[:-1]
    windows = im2col.reshape(*pixels, k2, channels // pe, pe)
    return np.swapaxes(windows, -3, -2).reshape(im2col.shape)


@pytest.mark.parametrize("channels, pe", [(2, 1), (4, 2)])
def test_pool_rtl_rtlsim_equals_finns_numpy_pool(channels, pe):
    from finn.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp

    model = pool_model(pool_node(f"pool_pe{pe}", channels, pe), channels)
    rng = np.random.default_rng(pe)
    x = rng.integers(0, 2, (1, 3, 3, 4 * channels)).astype(np.float32)
    expected = execute_onnx(model, {"x": x})["y"]  # Pool.execute_node on the im2col layout
    assert np.array_equal(expected, x.reshape(1, 3, 3, 4, channels).max(axis=3))
    model = compiled(model)
    getCustomOp(model.graph.node[0]).set_nodeattr("exec_mode", "rtlsim")
    streamed = stream_order(x, 4, channels, pe)
    assert not np.array_equal(streamed, x)  # the layouts differ: the test tells them apart
    np.testing.assert_array_equal(execute_onnx(model, {"x": streamed})["y"], expected)
    op = getCustomOp(model.graph.node[0])
    assert op.get_nodeattr("cycles_rtlsim") <= op.get_exp_cycles() + 4  # a word in per cycle


def test_pool_rtl_neither_drops_nor_repeats_under_backpressure():
    from finn.util.data_packing import npy_to_rtlsim_input, rtlsim_output_to_npy
    from qonnx.custom_op.registry import getCustomOp

    model = compiled(pool_model(pool_node("pool_pe2", 4, 2), 4))
    op = getCustomOp(model.graph.node[0])
    x = np.random.default_rng(9).integers(0, 2, (1, 3, 3, 16)).astype(np.float32)
    words = npy_to_rtlsim_input(stream_order(x, 4, 4, 2).reshape(op.get_folded_input_shape()),
                                op.get_input_datatype(), op.get_instream_width())
    out = stalled_run(op, words, op.get_number_output_values())
    y = rtlsim_output_to_npy(out, None, op.get_output_datatype(), op.get_folded_output_shape(),
                             op.get_outstream_width(), 1)
    np.testing.assert_array_equal(y.reshape(1, 3, 3, 4), x.reshape(1, 3, 3, 4, 4).max(axis=3))


def test_pool_rtl_behind_finns_sliding_window_is_a_max_pool():
    """FMap 6 x 6 x 4 -> ConvolutionInputGenerator_rtl (depthwise, 2 x 2 / 2, SIMD 2) ->
    Pool_rtl (PE 2), node by node in rtlsim, against a numpy 2 x 2 max pool of the map."""
    from finn.core.onnx_exec import execute_onnx
    from finn.transformation.fpgadataflow.set_exec_mode import SetExecMode
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    swg = helper.make_node(
        "ConvolutionInputGenerator_rtl", ["fmap"], ["x"], name="swg_pe2",
        domain="finn.custom_op.fpgadataflow.rtl", backend="fpgadataflow", ConvKernelDim=[2, 2],
        IFMChannels=4, IFMDim=[6, 6], OFMDim=[3, 3], SIMD=2, Stride=[2, 2], Dilation=[1, 1],
        inputDataType="BINARY", outputDataType="BINARY", depthwise=1)
    pool = pool_node("pool_pe2", 4, 2)
    shapes = {"fmap": [1, 6, 6, 4], "x": [1, 3, 3, 16], "y": [1, 3, 3, 4]}
    info = {n: helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()}
    graph = helper.make_graph([swg, pool], "swg_pool", [info["fmap"]], [info["y"]],
                              value_info=[info["x"]])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="test_rtl_lif_pool"))
    for name in shapes:
        model.set_tensor_datatype(name, DataType["BINARY"])
    model = compiled(model).transform(SetExecMode("rtlsim"))
    fmap = np.random.default_rng(5).integers(0, 2, shapes["fmap"]).astype(np.float32)
    expected = fmap.reshape(1, 3, 2, 3, 2, 4).max(axis=(2, 4))
    np.testing.assert_array_equal(execute_onnx(model, {"fmap": fmap})["y"], expected)


@pytest.mark.parametrize("style", ["rtl", ""])
def test_specialize_layers_picks_pool_rtl(style):
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    node = pool_node("pool", 2, 1, op_type="Pool", preferred_impl_style=style)
    model = pool_model(node, 2).transform(SpecializeLayers(PART))
    assert [(n.op_type, n.domain) for n in model.graph.node] == [
        ("Pool_rtl", "finn.custom_op.fpgadataflow.rtl")]


@pytest.mark.parametrize("function, dtype", [("AvgPool", "BINARY"), ("MaxPool", "UINT2")])
def test_pool_rtl_refuses_what_is_not_a_max_pool_on_spikes(function, dtype):
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(pool_model(pool_node("pool_bad", 2, 1, function, dtype), 2, dtype).graph
                     .node[0])
    with pytest.raises(UserError, match=rf"^pool_bad: Pool_rtl pools spikes only, got Function="
                                        rf"{function} on {dtype}; allowed: MaxPool on BINARY"):
        op.hdl_parameters()
