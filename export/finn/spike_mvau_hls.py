"""HLS matrix- and vector-vector units fed by spikes: `MVAU_hls` and `VVAU_hls` under FINN's
own op names, which generate code for inputs in {0, 1} (DataType BINARY).

finn-plus 1.6.1 refuses every BINARY operand unless binaryXnorMode is set
("True binary (non-bipolar) inputs not yet supported"), but XNOR mode reads a 0 as -1: it is
wrong for spikes. A spike-fed layer computes the plain product

    acc[h] = sum_w  W[h, w] * s[w],     s[w] in {0, 1},  W integer (or BIPOLAR +-1)

which is finn-hlslib's ordinary integer form (interpret.hpp, mac.hpp): the input lanes are
cut out of the stream word as ap_uint<1> (`Slice<ap_uint<1>>`), the weights are read as
stored (`Identity`; `Recast<Binary>` for BIPOLAR weights, stored as bits, +-1 on use), and
`mac` adds W * s, exact in the accumulator type FINN sized for the inputs' range [0, 1].

Only `get_template_param_values` changes, and only for a BINARY input with binaryXnorMode 0
and weights that are not BINARY; every other case, BINARY weights included, is FINN's own
(it still refuses those). Estimates, folding, weight files and SpecializeLayers are FINN's
unchanged: the classes subclass FINN's and keep its names.

`register()` (run at import) puts both classes into finn-plus's `.hls` domain dict and into
qonnx's registry cache (qonnx caches an op's class at its first look-up, so a dict entry
alone would not replace a class already looked up). Import this module where the FINN flow
registers its ops, next to `import export.finn.finn_lif`.
"""
from __future__ import annotations

from finn.custom_op.fpgadataflow.hls import register_custom_op
from finn.custom_op.fpgadataflow.hls.matrixvectoractivation_hls import MVAU_hls as FinnMVAU
from finn.custom_op.fpgadataflow.hls.vectorvectoractivation_hls import VVAU_hls as FinnVVAU
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import add_op_to_domain

HLS_DOMAIN = "finn.custom_op.fpgadataflow.hls"
SPIKE_LANE = "Slice<ap_uint<1>>"  # one {0, 1} input per stream bit


def is_spike_fed(op) -> bool:
    """True for a BINARY ({0, 1}) input, binaryXnorMode 0 and non-BINARY weights."""
    return (op.get_input_datatype(0) == DataType["BINARY"]
            and op.get_nodeattr("binaryXnorMode") == 0
            and op.get_input_datatype(1) != DataType["BINARY"])


def spike_template_params(op) -> dict[str, str]:
    """finn-hlslib types of a spike-fed unit: {0, 1} inputs, weights as stored, output as is."""
    bipolar_weights = op.get_input_datatype(1) == DataType["BIPOLAR"]
    return {"TSrcI": SPIKE_LANE,
            "TWeightI": "Recast<Binary>" if bipolar_weights else "Identity",
            "TDstI": f"Slice<{op.get_output_datatype().get_hls_datatype_str()}>"}


class MVAU_hls(FinnMVAU):  # FINN's op name
    """FINN's HLS MVAU, plus spike ({0, 1}) inputs as a plain weight x spike product."""

    def get_template_param_values(self):
        if is_spike_fed(self):
            return spike_template_params(self)
        return super().get_template_param_values()


class VVAU_hls(FinnVVAU):  # FINN's op name
    """FINN's HLS VVAU (depthwise), plus spike inputs as a plain weight x spike product."""

    def get_template_param_values(self):
        if is_spike_fed(self):
            return spike_template_params(self)
        return super().get_template_param_values()


def register() -> None:
    """Replace FINN's MVAU_hls and VVAU_hls in both registries (idempotent)."""
    for cls in (MVAU_hls, VVAU_hls):
        register_custom_op(cls)
        add_op_to_domain(HLS_DOMAIN, cls)


register()
