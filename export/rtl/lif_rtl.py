"""The LIF layer in RTL: `LIF_rtl`, an RTL backend of the project's LIF op (export/finn/finn_lif.py)
over hdl/lif.sv, registered in FINN's rtl domain.

The module computes common.integer_lif.IntegerLIF.step per neuron, PE neurons per cycle (II = 1),
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

from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

from common.errors import UserError
from export.finn.finn_lif import LIF
from export.rtl.wrapped import WrappedModule, register_rtl
from hw_model.fpga import lif_in_bram


class LIF_rtl(WrappedModule, LIF, RTLBackend):
    """A layer of LIF neurons as SystemVerilog (hdl/lif.sv)."""

    MODULE = "lif"

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


register_rtl(LIF_rtl)
