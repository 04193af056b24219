"""A spike-fed matrix-vector unit in RTL: `SpikeMVAU_rtl`, a drop-in for a folded FINN MVAU
whose input is BINARY {0, 1} spikes (FINN's MVAU_rtl refuses activations under 2 bits and
multiplies in DSPs; MVAU_hls refuses BINARY inputs at code generation).

Contract (FINN's MVAU with noActivation = 1, binaryXnorMode = 0):
    out[v, n] = sum_k x[v, k] W[k, n],  x in {0, 1}, W (MW, MH) integer (INTn or UINTn)
computed without multipliers: each weight is masked by its spike and the masked weights are
summed (hdl/spike_mvu.sv). Streams are FINN's MVAU's exactly: input word = SIMD spikes
(lane s = channel sf*SIMD + s), output word = PE accumulators of outputDataType bits
(lane p = channel nf*PE + p; the top lane sign-extended into the padding for a signed
type), words in the order of get_folded_input_shape / get_folded_output_shape. The sums are
taken modulo 2^bits(outputDataType), as FINN's MVU uses ACCU_WIDTH = output bits: exact when
the accumulator range (accDataType) fits outputDataType, which minimize_accumulator_width
guarantees.

Weights are held inside the layer, whatever the node's mem_mode (internal_embedded or
internal_decoupled; external modes are refused): generate_hdl writes them as a generated
SystemVerilog ROM (a case statement, registered read) in the node's top module file, in
FINN's order (get_hw_compatible_weight_tensor): word m = nf*SF + sf, lane (p, s) = W[sf*SIMD
+ s, nf*PE + p]. There is no weight stream: get_instream_width(1) = 0.

Throughput as FINN's MVAU: one step (SIMD spikes x PE lanes) per cycle, cycles per frame =
prod(numInputVectors) * MW/SIMD * MH/PE; the MW/SIMD words of a vector are read once and
replayed from a buffer for the MH/PE neuron folds. Latency: log2(SIMD) + 2 cycles.

`SpikeMVAUToRTL` turns every MVAU / MVAU_hls node with BINARY input (noActivation = 1,
binaryXnorMode = 0, weights held on chip) into a SpikeMVAU_rtl with the same attributes.
The op is added to FINN's rtl dict and to qonnx's registry at import time.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
from finn.custom_op.fpgadataflow.matrixvectoractivation import MVAU
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from finn.util.data_packing import npy_to_rtlsim_input, rtlsim_output_to_npy
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from common.errors import UserError
from export.rtl.wrapped import RTL_DOMAIN, ipi_commands, register_rtl
from hw_model.fpga import memory_bram18

HDL = Path(__file__).resolve().parent / "hdl" / "spike_mvu.sv"
INTERNAL_MEM_MODES = ("internal_embedded", "internal_decoupled")
LUTRAM_MAX_WORDS = 128  # FINN's rule for embedded weights: up to 128 words stay in LUTs
LUTRAM_WORDS_PER_LUT = 64  # a LUT6 is a 64 x 1 ROM / RAM


def ceil_log2(value: int) -> int:
    return max(0, math.ceil(math.log2(value))) if value > 1 else 0


def adder_tree_luts(terms: int, term_bits: int) -> int:
    """LUTs of a binary adder tree over `terms` operands of term_bits bits: one LUT per sum
    bit, level l (l = 1..ceil(log2 terms)) has floor(n_(l-1) / 2) adders of term_bits + l
    bits, n_0 = terms, n_l = ceil(n_(l-1) / 2); the spike mask (an AND) shares the first
    level's LUTs (4 inputs per bit)."""
    luts, count, level = 0, terms, 0
    while count > 1:
        level += 1
        luts += (count // 2) * (term_bits + level)
        count = (count + 1) // 2
    return luts


class SpikeMVAU_rtl(MVAU, RTLBackend):
    """FINN's MVAU for {0, 1} spike inputs as an accumulate-only RTL unit (hdl/spike_mvu.sv);
    weights in an on-chip ROM regardless of mem_mode (internal_embedded / internal_decoupled).
    """

    def get_nodeattr_types(self):
        attrs = MVAU.get_nodeattr_types(self)
        attrs.update(RTLBackend.get_nodeattr_types(self))
        return attrs

    # --- checks ----------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """What this unit cannot implement, one phrase each (empty: the node is fine)."""
        name, get = self.onnx_node.name, self.get_nodeattr
        wdt, odt = self.get_input_datatype(1), self.get_output_datatype()
        checks = [
            (get("inputDataType") == "BINARY",
             f"inputDataType={get('inputDataType')} (allowed: BINARY spikes)"),
            (get("noActivation") == 1,
             f"noActivation={get('noActivation')} (allowed: 1, no thresholds)"),
            (get("binaryXnorMode") == 0,
             f"binaryXnorMode={get('binaryXnorMode')} (allowed: 0; spikes are 0/1, not -1/+1)"),
            (wdt.is_integer() and wdt.name != "BIPOLAR",
             f"weightDataType={wdt.name} (allowed: INTn, UINTn, BINARY)"),
            (odt.is_integer() and odt.name != "BIPOLAR",
             f"outputDataType={odt.name} (allowed: INTn, UINTn)"),
            (get("MW") % get("SIMD") == 0, f"SIMD={get('SIMD')} does not divide MW={get('MW')}"),
            (get("MH") % get("PE") == 0, f"PE={get('PE')} does not divide MH={get('MH')}"),
            (get("mem_mode") in INTERNAL_MEM_MODES,
             f"mem_mode={get('mem_mode')} (allowed: {', '.join(INTERNAL_MEM_MODES)})"),
            (get("runtime_writeable_weights") == 0,
             "runtime_writeable_weights=1 (the weights are a ROM)"),
            (get("ram_style") != "ultra", "ram_style=ultra (allowed: auto, block, distributed)"),
            (get("TH") == 1, f"TH={get('TH')} (allowed: 1)"),
        ]
        return [f"{name}: SpikeMVAU_rtl cannot take {text}" for ok, text in checks if not ok]

    def check(self) -> None:
        """Raise a one-line UserError naming the first attribute the unit cannot implement."""
        problems = self.problems()
        if problems:
            raise UserError(problems[0])

    def verify_node(self):
        return self.problems()

    # --- shapes and streams ----------------------------------------------------------------
    def get_instream_width(self, ind=0):
        """SIMD spike bits; no weight stream (the weights are inside)."""
        return self.get_nodeattr("SIMD") * self.get_input_datatype(0).bitwidth() if ind == 0 else 0

    def get_verilog_top_module_intf_names(self):
        return {"clk": ["ap_clk"], "rst": ["ap_rst_n"],
                "s_axis": [("in0_V", self.get_instream_width_padded(0))],
                "m_axis": [("out0_V", self.get_outstream_width_padded(0))],
                "aximm": [], "axilite": [], "ap_none": []}

    def folds(self) -> tuple[int, int]:
        """(SF, NF) = (MW / SIMD input words, MH / PE output words) per vector."""
        return (self.get_nodeattr("MW") // self.get_nodeattr("SIMD"),
                self.get_nodeattr("MH") // self.get_nodeattr("PE"))

    def rom_words(self) -> int:
        sf, nf = self.folds()
        return sf * nf

    def rom_word_bits(self) -> int:
        return (self.get_nodeattr("PE") * self.get_nodeattr("SIMD")
                * self.get_input_datatype(1).bitwidth())

    def rom_in_lutram(self) -> bool:
        """ram_style distributed, or auto with at most 128 words (FINN's embedded rule)."""
        style = self.get_nodeattr("ram_style")
        return style == "distributed" or (style == "auto" and
                                          self.rom_words() <= LUTRAM_MAX_WORDS)

    # --- estimates -------------------------------------------------------------------------
    def lut_estimation(self, fpgapart=None):
        """LUTs of the accumulate-only datapath (one LUT per adder bit, LUT6):
            PE * (tree(SIMD, T) + A * [SF > 1])  adder tree per lane, accumulator
          + B * ceil(WMEM / 64) * [WMEM > 1]      weight ROM in LUTs (0 in BRAM; one word
                                                  is a constant)
          + SIMD * (ceil(SF / 64) + 1) * [NF > 1] input buffer (LUTRAM) and its mux
          + ceil_log2(SF) + ceil_log2(NF) + ceil_log2(WMEM) + 4   counters, handshake
        with T = weight bits (+1 for unsigned weights), A = output bits, B = PE*SIMD*weight
        bits, WMEM = SF*NF, tree(n, T) = sum over levels l of floor(n_(l-1)/2) * (T + l)
        (adder_tree_luts). With WMEM = 1 synthesis folds the constant weights into the tree,
        so the tree term is then an upper bound."""
        self.check()
        sf, nf = self.folds()
        wdt = self.get_input_datatype(1)
        term_bits = wdt.bitwidth() + (0 if wdt.signed() else 1)
        acc_bits = self.get_output_datatype().bitwidth()
        simd, pe = self.get_nodeattr("SIMD"), self.get_nodeattr("PE")
        lane = adder_tree_luts(simd, term_bits) + (acc_bits if sf > 1 else 0)
        rom = (self.rom_word_bits() * math.ceil(self.rom_words() / LUTRAM_WORDS_PER_LUT)
               if self.rom_in_lutram() and self.rom_words() > 1 else 0)
        buffer = simd * (math.ceil(sf / LUTRAM_WORDS_PER_LUT) + 1) if nf > 1 else 0
        control = ceil_log2(sf) + ceil_log2(nf) + ceil_log2(self.rom_words()) + 4
        return int(pe * lane + rom + buffer + control)

    def bram_estimation(self, fpgapart=None):
        """RAMB18s of the weight ROM when it is not in LUTRAM (hw_model.fpga.memory_bram18)."""
        if self.rom_in_lutram():
            return 0
        return memory_bram18(self.rom_words(), self.rom_word_bits())

    def uram_estimation(self, fpgapart=None):
        return 0

    def dsp_estimation(self, fpgapart=None):
        return 0

    # --- execution -------------------------------------------------------------------------
    def execute_node(self, context, graph):
        """exec_mode rtlsim: the generated RTL on FINN's rtlsim driver; otherwise FINN's numpy
        MVAU (np.matmul of the 0/1 inputs and the weights)."""
        self.check()
        if self.get_nodeattr("exec_mode") != "rtlsim":
            MVAU.execute_node(self, context, graph)
            return
        node = self.onnx_node
        spikes = context[node.input[0]].reshape(self.get_folded_input_shape(0))
        words = npy_to_rtlsim_input(spikes.astype(np.float32), self.get_input_datatype(0),
                                    self.get_instream_width(0))
        io_dict = {"inputs": {"in0": words}, "outputs": {"out0": []}}
        sim = self.get_rtlsim()
        self.reset_rtlsim(sim)
        self.rtlsim_multi_io(sim, io_dict)
        self.close_rtlsim(sim)
        odt = self.get_output_datatype()
        out = rtlsim_output_to_npy(io_dict["outputs"]["out0"], None, odt,
                                   self.get_folded_output_shape(), self.get_outstream_width(),
                                   odt.bitwidth())
        context[node.output[0]] = np.asarray(out, dtype=np.float32).reshape(
            context[node.output[0]].shape)

    # --- HDL -------------------------------------------------------------------------------
    def rom_words_as_ints(self, weights: np.ndarray) -> list[int]:
        """ROM word m = sum over (p, s) of (W[p, m, s] mod 2^bits) << ((p*SIMD + s) * bits),
        W[p, m, s] from FINN's get_hw_compatible_weight_tensor (its SIMD flip undone)."""
        tensor = np.flip(self.get_hw_compatible_weight_tensor(weights), axis=-1)[0]
        bits = self.get_input_datatype(1).bitwidth()
        codes = np.asarray(tensor, dtype=np.int64) & ((1 << bits) - 1)  # (PE, WMEM, SIMD)
        pe, wmem, simd = codes.shape
        lanes = codes.transpose(1, 0, 2).reshape(wmem, pe * simd)  # lane index p*SIMD + s
        return [sum(int(c) << (i * bits) for i, c in enumerate(row)) for row in lanes]

    def rom_source(self, weights: np.ndarray) -> str:
        """The weight ROM module: a case statement over the address, registered read."""
        top = self.get_verilog_top_module_name()
        words = self.rom_words_as_ints(weights)
        width, addr_bits = self.rom_word_bits(), max(1, ceil_log2(len(words)))
        digits = (width + 3) // 4
        style = "distributed" if self.rom_in_lutram() else "block"
        cases = "\n".join(f"\t\t{addr_bits}'d{m}: word = {width}'h{w:0{digits}x};"
                          for m, w in enumerate(words))
        default = "" if len(words) == 1 << addr_bits else "\t\tdefault: word = '0;\n"
        return f"""module {top}_wrom (
	input  logic clk,
	input  logic en,
	input  logic [{addr_bits - 1}:0] addr,
	output logic [{width - 1}:0] q
);
	(* rom_style = "{style}" *) logic [{width - 1}:0] word;
	always_comb begin
		case (addr)
{cases}
{default}		endcase
	end
	always_ff @(posedge clk) begin
		if (en) q <= word;
	end
endmodule : {top}_wrom
"""

    def top_source(self, weights: np.ndarray) -> str:
        """The node's top module (FINN's port names) around spike_mvu and its ROM."""
        top, get = self.get_verilog_top_module_name(), self.get_nodeattr
        wdt, odt = self.get_input_datatype(1), self.get_output_datatype()
        in_bits, out_bits = self.get_instream_width_padded(0), self.get_outstream_width_padded(0)
        pe, acc_bits = get("PE"), odt.bitwidth()
        lanes_bits = pe * acc_bits
        addr_bits = max(1, ceil_log2(self.rom_words()))
        pad = out_bits - lanes_bits
        pad_bit = f"core_out[{lanes_bits - 1}]" if odt.signed() else "1'b0"
        out_expr = f"{{{{{pad}{{{pad_bit}}}}}, core_out}}" if pad else "core_out"
        return f"""// Generated by export/rtl/spike_mvau.py for {top}: MW={get('MW')} MH={get('MH')}
// SIMD={get('SIMD')} PE={pe}, BINARY x {wdt.name} -> {odt.name}, weights in the ROM below.
{self.rom_source(weights)}
module {top} (
	input  logic ap_clk,
	input  logic ap_rst_n,
	input  logic [{in_bits - 1}:0] in0_V_TDATA,
	input  logic in0_V_TVALID,
	output logic in0_V_TREADY,
	output logic [{out_bits - 1}:0] out0_V_TDATA,
	output logic out0_V_TVALID,
	input  logic out0_V_TREADY
);
	logic [{addr_bits - 1}:0] waddr;
	logic wen;
	logic [{self.rom_word_bits() - 1}:0] wdata;
	logic [{lanes_bits - 1}:0] core_out;
	{top}_wrom rom (.clk(ap_clk), .en(wen), .addr(waddr), .q(wdata));
	spike_mvu #(
		.MW({get('MW')}), .MH({get('MH')}), .SIMD({get('SIMD')}), .PE({pe}),
		.WEIGHT_WIDTH({wdt.bitwidth()}), .WEIGHT_SIGNED({int(wdt.signed())}),
		.ACCU_WIDTH({acc_bits}), .ADDR_WIDTH({addr_bits})
	) core (
		.clk(ap_clk), .rst_n(ap_rst_n), .waddr(waddr), .wen(wen), .wdata(wdata),
		.in_data(in0_V_TDATA[{get('SIMD') - 1}:0]), .in_valid(in0_V_TVALID),
		.in_ready(in0_V_TREADY),
		.out_data(core_out), .out_valid(out0_V_TVALID), .out_ready(out0_V_TREADY)
	);
	assign out0_V_TDATA = {out_expr};
endmodule : {top}
"""

    def generate_hdl(self, model, fpgapart, clk):
        """Write spike_mvu.sv and <top>.sv (top module + weight ROM) to code_gen_dir_ipgen."""
        self.check()
        weights = model.get_initializer(self.onnx_node.input[1])
        if weights is None:
            raise UserError(f"{self.onnx_node.name}: SpikeMVAU_rtl needs its weights as an "
                            f"initializer (input {self.onnx_node.input[1]!r} has none)")
        code_gen_dir = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        shutil.copy(HDL, code_gen_dir / HDL.name)
        top = self.get_verilog_top_module_name()
        (code_gen_dir / f"{top}.sv").write_text(self.top_source(weights))
        self.set_nodeattr("gen_top_module", top)
        self.set_nodeattr("ipgen_path", str(code_gen_dir))
        self.set_nodeattr("ip_path", str(code_gen_dir))

    def get_rtl_file_list(self, abspath=False):
        folder = self.get_nodeattr("code_gen_dir_ipgen") + "/" if abspath else ""
        top = self.get_nodeattr("gen_top_module") or self.get_verilog_top_module_name()
        return [f"{folder}{HDL.name}", f"{folder}{top}.sv"]

    def code_generation_ipi(self):
        """Vivado IPI lines (unused without Vivado): add the sources, instantiate the top."""
        return ipi_commands(self)


# attributes that describe generated code or a simulation of the old node, not the layer
NOT_CARRIED = {"code_gen_dir_ipgen", "code_gen_dir_cppsim", "ipgen_path", "ip_path",
               "executable_path", "rtlsim_so", "gen_top_module", "res_estimate",
               "res_synth", "res_hls", "cycles_rtlsim", "cycles_estimate"}


def converts(node, model) -> bool:
    """A BINARY-input MVAU / MVAU_hls that SpikeMVAU_rtl implements as it stands."""
    if node.op_type not in ("MVAU", "MVAU_hls"):
        return False
    op = getCustomOp(node)
    spikes = (op.get_nodeattr("inputDataType") == "BINARY"
              or model.get_tensor_datatype(node.input[0]) == DataType["BINARY"])
    return (spikes and op.get_nodeattr("noActivation") == 1
            and op.get_nodeattr("binaryXnorMode") == 0
            and op.get_nodeattr("weightDataType") != "BIPOLAR"
            and op.get_nodeattr("mem_mode") in INTERNAL_MEM_MODES)


class SpikeMVAUToRTL(Transformation):
    """Every MVAU / MVAU_hls with BINARY input, noActivation = 1, binaryXnorMode = 0 and
    integer (not BIPOLAR) weights on chip (mem_mode internal_*) -> SpikeMVAU_rtl (domain
    finn.custom_op.fpgadataflow.rtl), same name, inputs, outputs and layer attributes
    (generated-code attributes are not carried over). Other MVAUs (other inputs, thresholds,
    BIPOLAR or external weights) are left alone."""

    def apply(self, model):
        graph, changed = model.graph, False
        for index, node in enumerate(list(graph.node)):
            if not converts(node, model):
                continue
            new = helper.make_node("SpikeMVAU_rtl", list(node.input), list(node.output),
                                   name=node.name, domain=RTL_DOMAIN)
            known = SpikeMVAU_rtl(new).get_nodeattr_types()
            new.attribute.extend(a for a in node.attribute
                                 if a.name in known and a.name not in NOT_CARRIED)
            op = getCustomOp(new)
            op.set_nodeattr("inputDataType", "BINARY")
            op.set_nodeattr("backend", "fpgadataflow")
            graph.node.remove(node)
            graph.node.insert(index, new)
            changed = True
        return model, changed


register_rtl(SpikeMVAU_rtl)
