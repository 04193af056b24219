"""A layer of LIF neurons as a FINN hardware layer: `LIF` (the HW abstraction) and `LIF_hls`
(its HLS backend, the kernel hls/templates/lif.h that `make hls` uses too).

Contract, one FINN frame = one timestep:
    input 0   the integer input current a of every neuron (an MVAU accumulator, I = a 2^-F),
              shape numInputVectors + [NumChannels], channels last, PE channels per cycle
    input 1   the state memory: the membrane codes v of every neuron (same shape, an
              initializer of zeros: the first frame of an image starts from zero membranes)
    output 0  spikes in {0, 1} (BINARY), same shape
Each frame runs common.integer_lif.IntegerLIF.step on every neuron. In hardware the membranes
stay on chip across the numSteps frames of an image (a frame counter restarts them); in the
numpy execution (`execute_node`) the state memory is updated in place in the execution
context, so a driver that feeds it back (export.finn.finn_graph.HardwareGraph) runs T timesteps.
heldInput = 1 (the first layer under direct encoding): the hardware reads the input on the
first frame of an image only and replays the held currents for the other frames, so the
layers before it run once per image; the numpy execution reads its input every frame, which
is the same current (the graph input is the same image at every timestep).

Estimates (hw_model.fpga holds the formulas and their sources, shared with the analytic
model): cycles per frame = neurons / PE; the state memory is one memory of neurons / PE words
of PE x stateBits bits (plus one of PE x input bits for held currents), in BRAM18 or LUTRAM
by FINN's own rules for its embedded memories; LUTs = PE x the LIF datapath + counters + the
memories' LUTRAM; no DSP.

`register()` adds both ops to finn-plus's own registries (finn.custom_op.fpgadataflow and
its .hls domain) at import time: finn-plus compares domain strings exactly, so ops in a
domain of our own would be skipped by its estimate passes and SpecializeLayers.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from finn.custom_op.fpgadataflow import register_custom_op
from finn.custom_op.fpgadataflow.hls import register_custom_op as register_hls_op
from finn.custom_op.fpgadataflow.hlsbackend import HLSBackend
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from qonnx.core.datatype import DataType

from common.errors import UserError
from common.integer_lif import IntegerLIF
from hw_model.fpga import lif_bram18, lif_luts
from model.spec import RESETS

KERNEL = Path(__file__).resolve().parents[2] / "hls" / "templates" / "lif.h"
DOMAIN = "finn.custom_op.fpgadataflow"


class LIF(HWCustomOp):
    """A layer of leaky integrate-and-fire neurons with an on-chip integer membrane."""

    def get_nodeattr_types(self):
        attrs = {
            "NumChannels": ("i", True, 0),
            "numInputVectors": ("ints", False, [1]),
            "PE": ("i", False, 1),
            "inputDataType": ("s", True, ""),
            "outputDataType": ("s", False, "BINARY"),
            "numSteps": ("i", True, 1),  # T: frames per image
            "stateBits": ("i", True, 8),
            "stateFrac": ("i", True, 0),  # Q: membrane step 2^-Q
            "leakShift": ("i", True, 1),  # K: beta = 2^-K
            "currentFrac": ("i", False, 0),  # F: current I = a 2^-F
            "thetaCode": ("i", True, 1),
            "resetMode": ("s", True, "subtract", set(RESETS)),
            # 1: the input (the same current at every timestep: the first layer under direct
            # encoding) is read on the first frame of an image only, held and replayed
            "heldInput": ("i", False, 0, {0, 1}),
            "ram_style": ("s", False, "auto", {"auto", "block", "distributed"}),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    def neuron(self) -> IntegerLIF:
        current = self.get_input_datatype(0)
        return IntegerLIF(
            state_bits=self.get_nodeattr("stateBits"), state_frac=self.get_nodeattr("stateFrac"),
            leak_shift=self.get_nodeattr("leakShift"),
            current_frac=self.get_nodeattr("currentFrac"),
            current_bits=current.bitwidth() + int(not current.signed()),
            theta_code=self.get_nodeattr("thetaCode"), reset=self.get_nodeattr("resetMode"))

    def neurons(self) -> int:
        return int(np.prod(self.get_normal_input_shape()))

    def get_normal_input_shape(self, ind=0):
        return (*self.get_nodeattr("numInputVectors"), self.get_nodeattr("NumChannels"))

    def get_normal_output_shape(self, ind=0):
        return self.get_normal_input_shape()

    def get_folded_input_shape(self, ind=0):
        pe = self.get_nodeattr("PE")
        return (*self.get_nodeattr("numInputVectors"), self.get_nodeattr("NumChannels") // pe, pe)

    def get_folded_output_shape(self, ind=0):
        return self.get_folded_input_shape()

    def get_input_datatype(self, ind=0):
        if ind == 1:
            return DataType[f"INT{self.get_nodeattr('stateBits')}"]
        return DataType[self.get_nodeattr("inputDataType")]

    def get_output_datatype(self, ind=0):
        return DataType[self.get_nodeattr("outputDataType")]

    def get_instream_width(self, ind=0):
        return 0 if ind == 1 else self.get_input_datatype(0).bitwidth() * self.get_nodeattr("PE")

    def get_outstream_width(self, ind=0):
        return self.get_output_datatype().bitwidth() * self.get_nodeattr("PE")

    def get_number_output_values(self):
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def get_exp_cycles(self):
        """One neuron per PE lane per cycle (the datapath is pipelined with II = 1)."""
        return self.neurons() // self.get_nodeattr("PE")

    def infer_node_datatype(self, model):
        node = self.onnx_node
        self.set_nodeattr("inputDataType", model.get_tensor_datatype(node.input[0]).name)
        model.set_tensor_datatype(node.input[1], self.get_input_datatype(1))
        model.set_tensor_datatype(node.output[0], self.get_output_datatype())

    def verify_node(self):
        return [] if self.get_nodeattr("NumChannels") % self.get_nodeattr("PE") == 0 else [
            f"PE={self.get_nodeattr('PE')} does not divide NumChannels"]

    def execute_node(self, context, graph):
        node = self.onnx_node
        shape = self.get_normal_input_shape()
        current = context[node.input[0]].reshape(shape)
        if not self.get_input_datatype(0).is_integer() or not np.array_equal(
                current, np.round(current)):
            raise UserError(f"{node.name}: the LIF layer needs integer input currents "
                            f"(got {self.get_nodeattr('inputDataType')})")
        spikes, membrane = self.neuron().step(context[node.input[1]].reshape(shape), current)
        context[node.input[1]] = membrane.astype(np.float32).reshape(context[node.input[1]].shape)
        context[node.output[0]] = spikes.astype(np.float32).reshape(context[node.output[0]].shape)

    # Estimates: formulas and sources in hw_model.fpga (lif_luts, lif_bram18).
    def ram_style(self) -> str:
        return self.get_nodeattr("ram_style")

    def held_bits(self) -> int:
        """Bits per neuron of the held-current memory (0 without a held input)."""
        return self.get_input_datatype(0).bitwidth() * self.get_nodeattr("heldInput")

    def bram_estimation(self, fpgapart=None):
        return lif_bram18(self.neurons(), self.get_nodeattr("PE"),
                          self.get_nodeattr("stateBits"), self.held_bits(), self.ram_style())

    def lut_estimation(self, fpgapart=None):
        lif = self.neuron()
        return lif_luts(self.neurons(), self.get_nodeattr("PE"), lif.state_bits, lif.x_bits,
                        lif.round_shift, self.get_nodeattr("numSteps"), self.held_bits(),
                        self.ram_style())

    def uram_estimation(self, fpgapart=None):
        return 0

    def dsp_estimation(self, fpgapart=None):
        return 0

    def get_op_and_param_counts(self):
        return {f"op_lif_{self.onnx_node.name}": self.neurons()}


class LIF_hls(LIF, HLSBackend):
    """The LIF layer in HLS: `lif_layer` of hls/templates/lif.h, the kernel of `make hls`."""

    def get_nodeattr_types(self):
        attrs = LIF.get_nodeattr_types(self)
        attrs.update(HLSBackend.get_nodeattr_types(self))
        return attrs

    def execute_node(self, context, graph):
        if self.get_nodeattr("exec_mode") in ("cppsim", "rtlsim"):
            raise UserError(f"{self.onnx_node.name}: cppsim/rtlsim of the LIF layer need Xilinx "
                            f"tools and keep no membrane across calls; use the numpy execution")
        LIF.execute_node(self, context, graph)

    def template_arguments(self) -> str:
        if not self.get_input_datatype(0).signed():
            raise UserError(f"{self.onnx_node.name}: the HLS kernel reads signed currents; "
                            f"got {self.get_nodeattr('inputDataType')}")
        lif = self.neuron()
        return ", ".join(str(v) for v in (
            self.neurons(), self.get_nodeattr("PE"), self.get_nodeattr("numSteps"),
            self.get_input_datatype(0).bitwidth(), lif.state_bits, lif.x_bits, lif.shift_v,
            lif.shift_a, lif.round_shift, lif.theta_code, int(lif.reset == "zero"),
            self.get_nodeattr("heldInput")))

    def global_includes(self):
        self.code_gen_dict["$GLOBALS$"] = ['#include "lif.h"']

    def defines(self, var):
        self.code_gen_dict["$DEFINES$"] = []

    def docompute(self):
        self.code_gen_dict["$DOCOMPUTE$"] = [
            f"lif_layer<{self.template_arguments()}>(in0_{self.hls_sname()}, "
            f"out0_{self.hls_sname()});"]

    def blackboxfunction(self):
        self.code_gen_dict["$BLACKBOXFUNCTION$"] = [
            f"void {self.onnx_node.name}(hls::stream<ap_uint<{self.get_instream_width()}>> "
            f"&in0_{self.hls_sname()}, hls::stream<ap_uint<{self.get_outstream_width()}>> "
            f"&out0_{self.hls_sname()})"]

    def generate_params(self, model, path):
        """The kernel header goes beside the generated code (the state memory has no file:
        it starts from zero)."""
        shutil.copy(KERNEL, Path(path) / KERNEL.name)


def register() -> None:
    """Add LIF and LIF_hls to finn-plus's registries (idempotent)."""
    register_custom_op(LIF)
    register_hls_op(LIF_hls)


register()
