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

import numpy as np
from finn.custom_op.fpgadataflow.pool import Pool
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

from common.errors import UserError
from export.rtl.wrapped import WrappedModule, register_rtl


class Pool_rtl(WrappedModule, Pool, RTLBackend):
    """FINN's Pool as an OR over each window of spikes (hdl/spike_maxpool.sv)."""

    MODULE = "spike_maxpool"

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


register_rtl(Pool_rtl)
