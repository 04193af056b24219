"""The LIF layer in RTL: `LIF_rtl`, an RTL backend of the project's LIF op (export/finn_lif.py)
over hdl/lif.sv, registered in FINN's rtl domain.

The module computes hls.integer_lif.IntegerLIF.step per neuron, PE neurons per cycle (II = 1),
exactly as hls/templates/lif.h's lif_layer: the membranes stay in on-chip memory across the
numSteps frames of an image and a frame counter starts each image from zero; with heldInput = 1
it reads one input frame per image and emits numSteps output frames. The memories are LUTRAM
or BRAM by the rule of the estimates (hw_model.fpga.lif_in_bram: ram_style, else BRAM above
128 words).

Execution: FINN's rtlsim of one node starts from a reset design on every call, while the
numpy execution keeps the membranes in the execution context across calls (one call = one
timestep), so exec_mode "" runs the numpy LIF and "rtlsim" is refused: the RTL is simulated as
a whole design, or as one node over T frames by FINN's rtlsim driver
(tests/test_rtl_lif_pool.py).
"""
from __future__ import annotations

from pathlib import Path

from finn.custom_op.fpgadataflow.rtl import register_custom_op
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from qonnx.custom_op.registry import add_op_to_domain

from common.errors import UserError
from export.finn_lif import LIF
from hw_model.fpga import lif_in_bram

HDL = Path(__file__).resolve().parent / "hdl" / "lif.sv"
RTL_DOMAIN = "finn.custom_op.fpgadataflow.rtl"


class LIF_rtl(LIF, RTLBackend):
    """A layer of LIF neurons as SystemVerilog (hdl/lif.sv)."""

    def get_nodeattr_types(self):
        attrs = LIF.get_nodeattr_types(self)
        attrs.update(RTLBackend.get_nodeattr_types(self))
        return attrs

    def execute_node(self, context, graph):
        if self.get_nodeattr("exec_mode") == "rtlsim":
            raise UserError(f"{self.onnx_node.name}: a one-node rtlsim of the LIF layer restarts "
                            f"its membranes on every call; simulate the whole design instead")
        LIF.execute_node(self, context, graph)

    def block_ram(self) -> bool:
        """True: the memories are BRAM (registered reads); False: LUTRAM."""
        return lif_in_bram(self.neurons(), self.get_nodeattr("PE"), self.get_nodeattr("ram_style"))

    def hdl_parameters(self) -> dict[str, int]:
        """The parameters of module `lif` (hdl/lif.sv) for this node."""
        lif = self.neuron()
        current = self.get_input_datatype(0)
        words = self.neurons() // self.get_nodeattr("PE")
        if self.block_ram() and words < 2:
            raise UserError(f"{self.onnx_node.name}: ram_style={self.get_nodeattr('ram_style')} "
                            f"puts {words} word in BRAM; BRAM needs >= 2 words (use distributed)")
        return {
            "WORDS": words, "PE": self.get_nodeattr("PE"),
            "TIMESTEPS": self.get_nodeattr("numSteps"), "CURRENT_BITS": current.bitwidth(),
            "CURRENT_SIGNED": int(current.signed()), "STATE_BITS": lif.state_bits,
            "X_BITS": lif.x_bits, "SHIFT_V": lif.shift_v, "SHIFT_A": lif.shift_a,
            "ROUND": lif.round_shift, "THETA": lif.theta_code,
            "RESET_ZERO": int(lif.reset == "zero"), "HELD": self.get_nodeattr("heldInput"),
            "BLOCK_RAM": int(self.block_ram()), "IN_WIDTH": self.get_instream_width_padded(0),
            "OUT_WIDTH": self.get_outstream_width_padded(0)}

    def generate_hdl(self, model, fpgapart, clk):
        """A top module named after the node, `lif` with the node's parameters, goes to the
        node's code_gen_dir_ipgen (lif.sv itself stays in hdl/: get_rtl_file_list)."""
        out = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        top = self.get_verilog_top_module_name()
        (out / f"{top}.sv").write_text(wrapper(top, "lif", self.hdl_parameters()))
        self.set_nodeattr("gen_top_module", top)
        self.set_nodeattr("ipgen_path", str(out))
        self.set_nodeattr("ip_path", str(out))

    def get_rtl_file_list(self, abspath=False):
        """The shared module (one path for every node, so a design lists it once) and the
        node's top."""
        top = self.get_nodeattr("gen_top_module") + ".sv"
        if not abspath:
            return [HDL.name, top]
        return [str(HDL), self.get_nodeattr("code_gen_dir_ipgen") + "/" + top]

    def code_generation_ipi(self):
        """Vivado IP integrator commands (unused without Vivado)."""
        return ipi_commands(self)


def wrapper(top: str, module: str, parameters: dict[str, int]) -> str:
    """A SystemVerilog module `top` with FINN's AXI-stream ports, instantiating `module` with
    the parameters."""
    values = ",\n      ".join(f".{name}({value})" for name, value in parameters.items())
    ports = ("ap_clk", "ap_rst_n", "in0_V_TDATA", "in0_V_TVALID", "in0_V_TREADY",
             "out0_V_TDATA", "out0_V_TVALID", "out0_V_TREADY")
    connections = ", ".join(f".{port}({port})" for port in ports)
    in_width, out_width = parameters["IN_WIDTH"], parameters["OUT_WIDTH"]
    return f"""// Generated by export/rtl: {module} with this node's parameters.
module {top} (
    input logic ap_clk,
    input logic ap_rst_n,
    input logic [{in_width - 1}:0] in0_V_TDATA,
    input logic in0_V_TVALID,
    output logic in0_V_TREADY,
    output logic [{out_width - 1}:0] out0_V_TDATA,
    output logic out0_V_TVALID,
    input logic out0_V_TREADY
);
  {module} #(
      {values}
  ) core ({connections});
endmodule
"""


def ipi_commands(op: RTLBackend) -> list[str]:
    """Vivado IP integrator commands adding the node's files and instantiating its top."""
    files = [f"add_files -norecurse {f}" for f in op.get_rtl_file_list(abspath=True)]
    return [*files, f"create_bd_cell -type module -reference {op.get_nodeattr('gen_top_module')} "
                    f"{op.onnx_node.name}"]


def register() -> None:
    """Add LIF_rtl to finn-plus's rtl registry and qonnx's domain cache (idempotent)."""
    register_custom_op(LIF_rtl)
    add_op_to_domain(RTL_DOMAIN, LIF_rtl)


register()
