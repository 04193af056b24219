"""Generate the HLS C++ project of a trained spiking CNN: the templates (layers.h: one C++
template per kind of stage) and three generated headers, params.h (constants, widths,
weights), network.h (the membranes of the LIF stages) and stages.h (one timestep: one
template instance per stage of the spec's layer list).

The network is rewritten in integers: weights W_int with scale 2^-wfrac (power of two, from
the Brevitas quantizer), pixels p with scale 2^-8, spikes 0/1, and after a k x k average pool
of spikes (k a power of two) the window's spike count c (0..k^2, bit_length(k^2) bits) with
scale 2^-2log2(k): c / k^2 is the average, exactly; membrane codes v = V / step with step =
2^-Q, leak beta = 2^-K. LIF layer l gets accumulator units 2^-F_l
(F_l = wfrac_l + input frac) and updates its neurons as common.integer_lif.IntegerLIF states
(the C++ is templates/lif.h), which equals PyTorch's float computation exactly (every float
there is an exact integer multiple of a power of two). Widths follow from the bit widths: an
accumulator needs w + a + ceil(log2 fan_in) bits (signed weights, unsigned inputs).
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.integer_lif import IntegerLIF
from model.layers import (
    WITH_POWER_OF_TWO_AVERAGE_POOL,
    Layer,
    refuse_unbuildable,
    with_power_of_two_average_pool,
)
from model.network import QuantCNN, SpikingCNN
from model.quantizers import PIXEL_SCALE
from model.spec import ModelSpec

TEMPLATES = Path(__file__).parent / "templates"
SOURCES = ("lif.h", "layers.h", "snn.h", "snn.cpp", "tb.cpp")


@dataclass(frozen=True)
class IntegerLayer:
    """One weight layer in integers, with its geometry (the lowered layer: kernel, stride,
    padding, pool, shapes) and whether a LIF follows it (the readout has none)."""

    name: str
    kind: str  # "conv" or "fc" (model.layers)
    weights: np.ndarray  # integer weights
    frac: int  # weight scale = 2^-frac
    in_frac: int  # input scale = 2^-in_frac
    in_bits: int  # unsigned input bits (1 for spikes)
    fan_in: int
    geometry: Layer
    lif: bool

    @property
    def current_frac(self) -> int:
        """F: the accumulator's units 2^-F = weight scale x input scale."""
        return self.frac + self.in_frac


@dataclass(frozen=True)
class IntegerNet:
    spec: ModelSpec
    layers: list[IntegerLayer]  # data-flow order, the readout last
    state_frac: int  # Q: membrane step = 2^-Q
    leak_shift: int  # K: beta = 2^-K
    theta_code: int

    @property
    def readout(self) -> IntegerLayer:
        return self.layers[-1]


def integer_net(model: SpikingCNN | QuantCNN, spec: ModelSpec) -> IntegerNet:
    """The trained network in integers, or a UserError naming what HLS does not support."""
    _check_supported(spec)
    layers: list[IntegerLayer] = []
    for stage, layer in zip(model.stages(), spec.weight_layers, strict=True):
        quant = stage.synapse.quant_weight()
        scale = float(quant.scale.detach().flatten()[0])
        frac = -math.log2(scale)
        if not frac.is_integer() or quant.scale.numel() != 1:
            raise UserError(f"{stage.name}'s weight scale {scale} is not one power of two; "
                            f"retrain with the fixed-point quantizers")
        weights = quant.int().detach().cpu().numpy().astype(np.int64)
        layers.append(IntegerLayer(
            name=stage.name, kind=layer.kind, weights=weights, frac=int(frac),
            in_frac=_input_frac(spec, layer, layers[-1].geometry if layers else None),
            in_bits=layer.input_bits, fan_in=int(np.prod(weights.shape[1:])), geometry=layer,
            lif=layer.neuron))
    return IntegerNet(spec, layers, state_frac=int(-math.log2(spec.state_step)),
                      leak_shift=int(-math.log2(spec.beta)),
                      theta_code=round(spec.threshold / spec.state_step))


def _input_frac(spec: ModelSpec, layer: Layer, before: Layer | None) -> int:
    """The input scale 2^-in_frac of `layer`: pixels 2^-8 (direct encoding), a k x k average
    pool's spike count 1 / k^2 = 2^-2log2(k) (k a power of two: _check_supported), spikes 1."""
    if layer.fed_by_input and spec.encoding == "direct":
        return int(-math.log2(PIXEL_SCALE))
    if before is not None and before.pool is not None and before.pool.kind == "avg":
        return 2 * int(math.log2(before.pool.size))
    return 0


def _check_supported(spec: ModelSpec) -> None:
    problems = []
    if spec.kind != "snn":
        problems.append(f"kind={spec.kind} (spiking networks only)")
    if spec.weight_bits > 8:
        problems.append(f"weight_bits={spec.weight_bits} (2, 4 or 8 only)")
    if not spec.quantized_state or spec.state_bits > 16:
        problems.append(f"state_bits={spec.state_bits} (4, 8 or 16 only)")
    if not (0 < spec.beta <= 1 and math.log2(spec.beta).is_integer()):
        problems.append(f"beta={spec.beta} (a power of two in (0, 1]: a shift)")
    if spec.pool != "after_neuron":
        problems.append(f"pool={spec.pool} (after_neuron only)")
    if problems:
        raise UserError("the HLS generator does not support " + "; ".join(problems))
    refuse_unbuildable(spec.weight_layers, "the HLS generator", with_power_of_two_average_pool,
                       WITH_POWER_OF_TWO_AVERAGE_POOL)


def required_widths(net: IntegerNet) -> dict[str, int]:
    """Bit widths (and shifts) that make every sum exact: nothing overflows. Keys are numbered
    by weight layer: ACC<l>_BITS, and for a LIF stage SHIFT_V_<l>, SHIFT_A_<l>, ROUND_<l>,
    X<l>_BITS."""
    spec = net.spec
    widths: dict[str, int] = {}
    for index, layer in enumerate(net.layers, start=1):
        acc = spec.weight_bits + layer.in_bits + math.ceil(math.log2(layer.fan_in))
        widths[f"ACC{index}_BITS"] = acc
        if layer.lif:
            lif = integer_lif(net, layer.current_frac, acc)
            widths.update({f"SHIFT_V_{index}": lif.shift_v, f"SHIFT_A_{index}": lif.shift_a,
                           f"ROUND_{index}": lif.round_shift, f"X{index}_BITS": lif.x_bits})
    widths["LOGIT_BITS"] = widths[f"ACC{len(net.layers)}_BITS"]
    widths["LOGIT_SUM_BITS"] = widths["LOGIT_BITS"] + math.ceil(math.log2(spec.timesteps)) + 1
    return widths


def integer_lif(net: IntegerNet, current_frac: int, current_bits: int) -> IntegerLIF:
    """The LIF update of a layer whose accumulator has units 2^-current_frac."""
    return IntegerLIF(state_bits=net.spec.state_bits, state_frac=net.state_frac,
                      leak_shift=net.leak_shift, current_frac=current_frac,
                      current_bits=current_bits, theta_code=net.theta_code,
                      reset=net.spec.reset)


def params_header(net: IntegerNet, widths: dict[str, int]) -> str:
    """Constants, widths, accumulator types and integer weights (W<l>_INT per weight layer)."""
    spec = net.spec
    size = spec.image_size
    defines = {
        "TIMESTEPS": spec.timesteps, "IN_C": spec.in_channels, "IN_H": size, "IN_W": size,
        "CLASSES": spec.num_classes, "WEIGHT_BITS": spec.weight_bits,
        "STATE_BITS": spec.state_bits, "STATE_FRAC": net.state_frac,
        "LEAK_SHIFT": net.leak_shift, "STATE_MIN_CODE": -(2 ** (spec.state_bits - 1)),
        "STATE_MAX_CODE": 2 ** (spec.state_bits - 1) - 1, "THETA_CODE": net.theta_code,
        "RESET_ZERO": int(spec.reset == "zero"), "DIRECT_ENCODING": int(spec.encoding == "direct"),
        "LOGIT_FRAC": net.readout.current_frac, **widths,
    }
    lines = ["// Generated by hls/generate.py from a trained run: constants, widths, weights.",
             "#ifndef PARAMS_H", "#define PARAMS_H", ""]
    lines += [f"#define {key} {value}" for key, value in defines.items()]
    lines += [""] + [f"typedef ap_int<ACC{i}_BITS> acc{i}_t;"
                     for i, layer in enumerate(net.layers, start=1) if layer.lif]
    lines += ["typedef ap_int<WEIGHT_BITS> weight_t;", ""]
    for index, layer in enumerate(net.layers, start=1):
        values = ",".join(str(int(v)) for v in layer.weights.flatten())
        dims = "".join(f"[{d}]" for d in layer.weights.shape)
        lines.append(f"// {layer.name}: weight = W{index}_INT * 2^-{layer.frac}, input scale "
                     f"2^-{layer.in_frac}")
        lines.append(f"static const signed char W{index}_INT{dims} = {{{values}}};")
    lines += ["", "#endif", ""]
    return "\n".join(lines)


def network_header(net: IntegerNet) -> str:
    """membranes_t (one membrane array m<l> per LIF stage) and FOR_EACH_MEMBRANE(F)."""
    members = [(f"m{index}", _dims(_neuron_shape(layer)))
               for index, layer in enumerate(net.layers, start=1) if layer.lif]
    lines = ["// Generated by hls/generate.py: the membranes of the layer list's LIF stages.",
             "#ifndef NETWORK_H", "#define NETWORK_H", "", "struct membranes_t {"]
    lines += [f"    state_t {name}{dims};" for name, dims in members]
    lines += ["};", "", "#define FOR_EACH_MEMBRANE(F) " + " ".join(f"F({n})" for n, _ in members),
              "", "#endif", ""]
    return "\n".join(lines)


def stages_header(net: IntegerNet) -> str:
    """run_stages: one instance of a layers.h template per stage, in data-flow order."""
    lines = ["// Generated by hls/generate.py: one timestep, one template instance per stage.",
             "#ifndef STAGES_H", "#define STAGES_H", "",
             "static void run_stages(const pixel_t x[IN_C][IN_H][IN_W], membranes_t &m, "
             "logit_t logits[CLASSES]) {"]
    source, source_type = "x", "pixel_t"
    for index, layer in enumerate(net.layers, start=1):
        in_shape = layer.geometry.input_shape
        if layer.kind == "fc" and len(in_shape) == 3:
            flat = f"f{index}"
            lines.append(f"    {source_type} {flat}[{math.prod(in_shape)}];")
            lines.append(f"    flatten<{_args(in_shape)}>({source}, {flat});")
            source = flat
        lines += [f"    {line}" for line in _STAGE_CALLS[layer.kind](index, layer, source)]
        source, source_type = f"s{index}", "spike_t"
        if (pool := layer.geometry.pool) is not None:
            kind, source_type = _pool_output(pool.kind, net.layers[index])
            lines.append(f"    {source_type} p{index}{_dims(layer.geometry.output_shape)};")
            lines.append(f"    pool<{_args(_neuron_shape(layer))}, {pool.size}, {kind}>"
                         f"({source}, p{index});")
            source = f"p{index}"
    lines += ["}", "", "#endif", ""]
    return "\n".join(lines)


def _conv_lif(index: int, layer: IntegerLayer, source: str) -> list[str]:
    out = f"s{index}"
    return [f"spike_t {out}{_dims(_neuron_shape(layer))};",
            f"conv_lif<{_args(layer.geometry.input_shape)}, {layer.weights.shape[0]}, "
            f"{layer.geometry.kernel}, {layer.geometry.stride}, {layer.geometry.padding}, "
            f"{_args(layer.geometry.synapse_shape[1:])}, "
            f"{_lif_args(index)}>({source}, W{index}_INT, m.m{index}, {out});"]


def _fc(index: int, layer: IntegerLayer, source: str) -> list[str]:
    features, width = layer.weights.shape[1], layer.weights.shape[0]
    if not layer.lif:
        return [f"fc_readout<{features}, {width}>({source}, W{index}_INT, logits);"]
    return [f"spike_t s{index}[{width}];",
            f"fc_lif<{features}, {width}, {_lif_args(index)}>({source}, W{index}_INT, "
            f"m.m{index}, s{index});"]


_STAGE_CALLS = {"conv": _conv_lif, "fc": _fc}


def _pool_output(kind: str, reader: IntegerLayer) -> tuple[str, str]:
    """The pool template's kind and output type for a pool of `kind` read by `reader`: a max
    pool of spikes is a spike; an average pool of k x k spikes is their count (0..k^2 in
    reader.in_bits = bit_length(k^2) bits), its scale 1 / k^2 being reader.in_frac."""
    if kind == "max":
        return "MAX_POOL", "spike_t"
    return "SUM_POOL", f"ap_uint<{reader.in_bits}>"


def _lif_args(index: int) -> str:
    return (f"acc{index}_t, X{index}_BITS, SHIFT_V_{index}, SHIFT_A_{index}, ROUND_{index}")


def _neuron_shape(layer: IntegerLayer) -> tuple[int, ...]:
    """The shape of a stage's neurons (the pool follows them: after_neuron)."""
    if layer.kind == "fc":
        return (layer.weights.shape[0],)
    return layer.geometry.synapse_shape


def _dims(shape: tuple[int, ...]) -> str:
    return "".join(f"[{d}]" for d in shape)


def _args(shape: tuple[int, ...]) -> str:
    return ", ".join(str(d) for d in shape)


def write_project(net: IntegerNet, widths: dict[str, int], out: Path, part: str,
                  clock_ns: float) -> None:
    """params.h, the C++ sources and the Vitis HLS script into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "params.h").write_text(params_header(net, widths))
    (out / "network.h").write_text(network_header(net))
    (out / "stages.h").write_text(stages_header(net))
    for name in SOURCES:
        shutil.copy(TEMPLATES / name, out / name)
    script = (TEMPLATES / "run_hls.tcl").read_text()
    (out / "run_hls.tcl").write_text(script.replace("{PART}", part)
                                     .replace("{CLOCK_NS}", f"{clock_ns:g}"))
