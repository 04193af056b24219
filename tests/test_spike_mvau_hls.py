"""Spike-fed HLS MVAUs (export/finn/spike_mvau_hls.py): every layer of a tiny network's folded
hardware graph generates its IP code, and each spike-fed MVAU's generated finn-hlslib call is
the plain weight x {0, 1} product with the folded sizes.

Code generation is FINN's own `PrepareIP`, which calls each node's `code_generation_ipgen`:
for an HLS layer that writes the parameter files (generate_params), the top C++ file (from
global_includes / defines / blackboxfunction / pragmas / docompute) and the Vitis HLS tcl
script, and nothing more (Vitis HLS runs later, in HLSSynthIP); for an RTL layer it fills in
the Verilog templates. finn-hlslib is in no package registry, so nothing is compiled: the
tests read the generated text, checked against finn-hlslib's templates (mvau.hpp,
interpret.hpp): `Slice<ap_uint<1>>` cuts one {0, 1} lane per stream bit, `Identity` reads
the weights as stored, and no XNOR / `Recast<Binary>` form (which reads a 0 as -1) appears.
"""
import json
import math
import re
from pathlib import Path

import onnx
import pytest
from finn.custom_op.fpgadataflow.hls.matrixvectoractivation_hls import MVAU_hls as FinnMVAU
from onnx import helper
from qonnx.custom_op.registry import add_op_to_domain, getCustomOp
from test_export import TINY, tiny_model

import export.finn.spike_mvau_hls as spike_hls
from export.finn.finn_flow import ESTIMATE_STEPS, prepare_finn, run_build
from export.finn.finn_graph import write_hw_graph
from export.finn.folding import weight_width_limit
from export.qonnx.step_graph import export_graph
from model.spec import ModelSpec

PART = "xc7z020clg400-1"
CLOCK_NS = 10.0
FRAMES_PER_S = 200_000  # folds conv8 to SIMD 36 x PE 2 and fc16 to SIMD 8 (PE and SIMD > 1)
# Hand counts for TINY (28 x 28 x 1 input, 3 x 3 convs with padding, 2 x 2 pools, 10
# classes), in graph order: (MW, MH, vectors per frame)
SPIKE_MVAUS = [(3 * 3 * 4, 8, 14 * 14),  # conv8 on the pooled 14 x 14 x 4 spikes
               (7 * 7 * 8, 16, 1),  # fc16 on the pooled 7 x 7 x 8 spikes
               (16, 10, 1)]  # the readout on 16 spikes
WEIGHT_BITS = TINY["weight_bits"]


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    """The tiny network's hardware graph, folded by the estimate build, after PrepareIP."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP

    out = tmp_path_factory.mktemp("spike_mvau")
    spec = ModelSpec(**TINY)
    graph = out / "step.qonnx.onnx"
    export_graph(tiny_model(spec), spec, graph)
    hw = write_hw_graph(graph)
    model = run_build(hw, out / "fpga", ESTIMATE_STEPS, PART, CLOCK_NS, FRAMES_PER_S,
                      weight_width_limit(hw))
    build = out / "codegen"
    with pytest.MonkeyPatch.context() as env:  # run_build removed its build folder
        env.setenv("FINN_BUILD_DIR", str(build))
        prepare_finn(build)
        model = model.transform(PrepareIP(PART, CLOCK_NS))
    return model, out / "fpga" / "report"


def spike_mvaus(model):
    return [n for n in model.graph.node if n.op_type == "MVAU_hls"
            and getCustomOp(n).get_nodeattr("inputDataType") == "BINARY"]


def top_cpp(op) -> str:
    return (Path(op.get_nodeattr("code_gen_dir_ipgen")) / f"top_{op.onnx_node.name}.cpp"
            ).read_text()


def template_args(code: str, function: str) -> list[str]:
    """The template arguments of the first `function<...>` in `code`, split at top level."""
    start = code.index(function + "<") + len(function) + 1
    args, depth, current = [], 0, ""
    for char in code[start:]:
        if char == ">" and depth == 0:
            return [a.strip() for a in [*args, current]]
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            args.append(current)
            current = ""
        else:
            current += char
    raise AssertionError(f"unterminated {function}<")


def defines(code: str) -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r"#define (\w+) (\d+)", code)}


def hls_int(name: str) -> str:
    """FINN DataType name -> ap type: INT8 -> ap_int<8>, UINT3 -> ap_uint<3>."""
    signed, bits = re.fullmatch(r"(U?)INT(\d+)", name).groups()
    return f"ap_{'u' if signed else ''}int<{bits}>"


def test_every_layer_generates_its_code(folded):
    model, _ = folded
    kinds = set()
    for node in model.graph.node:
        path = Path(getCustomOp(node).get_nodeattr("code_gen_dir_ipgen"))
        assert path.is_dir() and any(path.iterdir()), node.name
        if node.domain.endswith(".hls"):
            assert (path / f"top_{node.name}.cpp").exists(), node.name
            assert (path / f"hls_syn_{node.name}.tcl").exists(), node.name
        kinds.add(node.op_type)
    # FINN prefers an RTL variant where one exists: the project's LIF_rtl and Pool_rtl
    assert {"MVAU_hls", "LIF_rtl", "Pool_rtl"} <= kinds


def test_spike_fed_mvaus_generate_the_plain_product(folded):
    model, _ = folded
    nodes = spike_mvaus(model)
    assert len(nodes) == len(SPIKE_MVAUS)
    folds = set()
    for node, (mw, mh, vectors) in zip(nodes, SPIKE_MVAUS, strict=True):
        op = getCustomOp(node)
        assert isinstance(op, spike_hls.MVAU_hls)
        assert op.get_nodeattr("binaryXnorMode") == 0
        assert op.get_nodeattr("mem_mode") == "internal_decoupled"
        simd, pe = op.get_nodeattr("SIMD"), op.get_nodeattr("PE")
        folds.add((simd, pe))
        out_type = hls_int(op.get_nodeattr("outputDataType"))
        code = top_cpp(op)
        assert template_args(code, "Matrix_Vector_Activate_Stream_Batch") == [
            "MW1", "MH1", "SIMD1", "PE1", "Slice<ap_uint<1>>", f"Slice<{out_type}>",
            "Identity", f"ap_int<{WEIGHT_BITS}>"]
        assert f"PassThroughActivation<{out_type}>()" in code  # the accumulator goes out
        assert "Xnor" not in code and "Recast" not in code
        wmem = mw * mh // (simd * pe)
        assert defines(code) == {"MW1": mw, "MH1": mh, "SIMD1": simd, "PE1": pe,
                                 "WMEM1": wmem, "TMEM1": 0, "numReps": vectors,
                                 "WP1": WEIGHT_BITS, "AP_INT_MAX_W": defines(code)[
                                     "AP_INT_MAX_W"]}
        word_bits = pe * simd * WEIGHT_BITS
        out_bits = pe * op.get_output_datatype().bitwidth()
        assert re.search(rf"hls::stream<ap_uint<{simd}>> &in0_V,\s*hls::stream<ap_uint<"
                         rf"{word_bits}>> &in1_V,\s*hls::stream<ap_uint<{out_bits}>> &out0_V",
                         code)
        assert defines(code)["AP_INT_MAX_W"] >= word_bits
        memblock = (Path(op.get_nodeattr("code_gen_dir_ipgen")) / "memblock.dat").read_text()
        assert [len(line) for line in memblock.split()] == [math.ceil(word_bits / 4)] * wmem
    assert any(simd > 1 for simd, _ in folds) and any(pe > 1 for _, pe in folds)


def test_embedded_weights_generate_the_plain_product(folded, tmp_path):
    """mem_mode internal_embedded (export/finn/folding.py's EmbedWideWeights picks it for wide
    weight streams): the same types, the weights in params.h as FixedPointWeights."""
    model, _ = folded
    node = spike_mvaus(model)[0]
    op = getCustomOp(node)
    op.set_nodeattr("mem_mode", "internal_embedded")
    op.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    try:
        op.code_generation_ipgen(model, PART, CLOCK_NS)
    finally:
        op.set_nodeattr("mem_mode", "internal_decoupled")
    simd, pe = op.get_nodeattr("SIMD"), op.get_nodeattr("PE")
    code = (tmp_path / f"top_{node.name}.cpp").read_text()
    out_type = hls_int(op.get_nodeattr("outputDataType"))
    assert template_args(code, "Matrix_Vector_Activate_Batch") == [
        "MW1", "MH1", "SIMD1", "PE1", "1", "Slice<ap_uint<1>>", f"Slice<{out_type}>", "Identity"]
    mw, mh, _ = SPIKE_MVAUS[0]
    params = (tmp_path / "params.h").read_text()
    assert params.startswith(f"const FixedPointWeights<{simd},ap_int<{WEIGHT_BITS}>,{pe},"
                             f"{mw * mh // (simd * pe)}> weights = ")


def test_finn_s_own_class_still_refuses_spikes(folded):
    """The fix is what makes the code above: FINN's class raises on the same node."""
    model, _ = folded
    for node in spike_mvaus(model):
        with pytest.raises(Exception, match="True binary"):
            FinnMVAU(node).get_template_param_values()


def test_xnor_mode_and_other_types_stay_finn_s(folded):
    model, _ = folded
    node = onnx.NodeProto()
    node.CopyFrom(spike_mvaus(model)[0])  # a copy: the graph keeps its node
    op = getCustomOp(node)
    op.set_nodeattr("binaryXnorMode", 1)  # XNOR: a 0 reads as -1
    assert op.get_template_param_values()["TSrcI"] == "Recast<Binary>"
    op.set_nodeattr("binaryXnorMode", 0)
    op.set_nodeattr("weightDataType", "BIPOLAR")  # +-1 weights on spikes: Binary on use
    assert op.get_template_param_values() == {
        "TSrcI": "Slice<ap_uint<1>>", "TWeightI": "Recast<Binary>",
        "TDstI": f"Slice<{hls_int(op.get_nodeattr('outputDataType'))}>"}
    op.set_nodeattr("weightDataType", "BINARY")  # {0, 1} weights: FINN's refusal
    with pytest.raises(Exception, match="True binary"):
        op.get_template_param_values()


def test_lif_layers_generate_their_code(folded):
    """The LIF layers (RTL: FINN chooses LIF_rtl) write their top module beside lif.sv."""
    model, _ = folded
    lifs = [n for n in model.graph.node if n.op_type == "LIF_rtl"]
    assert len(lifs) == 3
    for node in lifs:
        files = [Path(f) for f in getCustomOp(node).get_rtl_file_list(abspath=True)]
        assert all(f.exists() for f in files) and any(f.name == "lif.sv" for f in files)
        assert any(f"module {node.name}" in f.read_text() for f in files)


def test_estimates_cover_the_spike_fed_mvaus(folded):
    model, report = folded
    resources = json.loads((report / "estimate_layer_resources.json").read_text())
    for node in spike_mvaus(model):
        assert resources[node.name]["LUT"] > 0, node.name


def test_registration_replaces_a_cached_class():
    import finn.custom_op.fpgadataflow.hls as finn_hls

    node = helper.make_node("MVAU_hls", ["x", "w"], ["y"], domain=spike_hls.HLS_DOMAIN)
    add_op_to_domain(spike_hls.HLS_DOMAIN, FinnMVAU)  # as if qonnx had cached FINN's class
    try:
        assert type(getCustomOp(node)) is FinnMVAU
    finally:
        spike_hls.register()
    assert type(getCustomOp(node)) is spike_hls.MVAU_hls
    assert finn_hls.custom_op["MVAU_hls"] is spike_hls.MVAU_hls
    assert finn_hls.custom_op["VVAU_hls"] is spike_hls.VVAU_hls


def test_spike_fed_vvau_generates_the_plain_product():
    """A depthwise (VVAU) layer on spikes: 4 channels, 3 x 3 kernel, PE 2, SIMD 3."""
    node = helper.make_node(
        "VVAU_hls", ["x", "w"], ["y"], domain=spike_hls.HLS_DOMAIN, name="VVAU_hls_0",
        PE=2, SIMD=3, Dim=[5, 5], Channels=4, Kernel=[3, 3], inputDataType="BINARY",
        weightDataType="INT4", outputDataType="INT7", noActivation=1,
        mem_mode="internal_decoupled")
    op = getCustomOp(node)
    assert isinstance(op, spike_hls.VVAU_hls)
    op.docompute()
    code = "\n".join(op.code_gen_dict["$DOCOMPUTE$"])
    assert template_args(code, "Vector_Vector_Activate_Stream_Batch") == [
        "Channels1", "InnerProdDim", "SIMD1", "PE1", "1", "Slice<ap_uint<1>>",
        "Slice<ap_int<7>>", "Identity", "ap_int<4>"]
