"""A max pool on spikes in RTL: `Pool_rtl`, an RTL backend of FINN's Pool op over
hdl/spike_maxpool.sv (FINN itself has only Pool_hls), registered in FINN's rtl domain, so that
SpecializeLayers picks it for a Pool node (preferred_impl_style "rtl", or "" which prefers rtl).

Contract (FINN's Pool node): the input comes from a depthwise ConvolutionInputGenerator,
whose stream holds per output pixel and channel fold the K kernel positions of PE channels as
K consecutive words (folded shape (1, OH, OW, K C / PE, PE), finn-hlslib's Pool_batch order);
each run of K words gives one word of PE pooled channels. Only Function "MaxPool" on BINARY
inputs: on {0, 1} the max over a window is an OR. The numpy execution (exec_mode "") is FINN's
Pool.execute_node on the im2col layout (kernel position major); "rtlsim" is FINN's
RTLBackend.execute_node on the stream layout (for PE < Channels the two layouts differ, as they
do for FINN's own depthwise sliding window and Pool_hls).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from finn.custom_op.fpgadataflow.pool import Pool
from finn.custom_op.fpgadataflow.rtl import register_custom_op
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from qonnx.custom_op.registry import add_op_to_domain

from common.errors import UserError
from export.rtl.lif_rtl import RTL_DOMAIN, ipi_commands, wrapper

HDL = Path(__file__).resolve().parent / "hdl" / "spike_maxpool.sv"


class Pool_rtl(Pool, RTLBackend):
    """FINN's Pool as an OR over each window of spikes (hdl/spike_maxpool.sv)."""

    def get_nodeattr_types(self):
        attrs = Pool.get_nodeattr_types(self)
        attrs.update(RTLBackend.get_nodeattr_types(self))
        return attrs

    def check_supported(self) -> None:
        """UserError unless this is a max pool on BINARY inputs."""
        function, dtype = self.get_nodeattr("Function"), self.get_nodeattr("InputDataType")
        if function != "MaxPool" or dtype != "BINARY":
            raise UserError(f"{self.onnx_node.name}: Pool_rtl pools spikes only, got Function="
                            f"{function} on {dtype}; allowed: MaxPool on BINARY (use Pool_hls)")

    def execute_node(self, context, graph):
        if self.get_nodeattr("exec_mode") == "rtlsim":
            RTLBackend.execute_node(self, context, graph)
        else:
            Pool.execute_node(self, context, graph)

    def hdl_parameters(self) -> dict[str, int]:
        """The parameters of module `spike_maxpool` for this node."""
        self.check_supported()
        return {"PE": self.get_nodeattr("PE"),
                "K": int(np.prod(self.get_nodeattr("KernelSize"))),
                "IN_WIDTH": self.get_instream_width_padded(0),
                "OUT_WIDTH": self.get_outstream_width_padded(0)}

    def generate_hdl(self, model, fpgapart, clk):
        """A top module named after the node (`spike_maxpool` with its parameters) goes to
        code_gen_dir_ipgen; spike_maxpool.sv stays in hdl/ (get_rtl_file_list)."""
        out = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        parameters = self.hdl_parameters()
        top = self.get_verilog_top_module_name()
        (out / f"{top}.sv").write_text(wrapper(top, "spike_maxpool", parameters))
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


def register() -> None:
    """Add Pool_rtl to finn-plus's rtl registry and qonnx's domain cache (idempotent)."""
    register_custom_op(Pool_rtl)
    add_op_to_domain(RTL_DOMAIN, Pool_rtl)


register()
