"""Generate the HLS C++ project of a trained spiking CNN (templates + a generated params.h).

The network is rewritten in integers: weights W_int with scale 2^-wfrac (power of two, from
the Brevitas quantizer), pixels p with scale 2^-8 (spikes: 0/1), membrane codes v = V / step
with step = 2^-Q, leak beta = 2^-K. LIF layer l gets accumulator units 2^-F_l
(F_l = wfrac_l + input frac) and updates its neurons as hls.integer_lif.IntegerLIF states
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
from torch import nn

from common.errors import UserError
from hls.integer_lif import IntegerLIF
from model.quantizers import PIXEL_SCALE
from model.spec import ModelSpec

TEMPLATES = Path(__file__).parent / "templates"
SOURCES = ("lif.h", "snn.h", "snn.cpp", "tb.cpp")
LAYERS = ("conv1", "conv2", "fc1", "fc2")


@dataclass(frozen=True)
class IntegerLayer:
    weights: np.ndarray  # integer weights
    frac: int  # weight scale = 2^-frac
    in_frac: int  # input scale = 2^-in_frac
    in_bits: int  # unsigned input bits (1 for spikes)
    fan_in: int


@dataclass(frozen=True)
class IntegerNet:
    spec: ModelSpec
    layers: dict[str, IntegerLayer]
    state_frac: int  # Q: membrane step = 2^-Q
    leak_shift: int  # K: beta = 2^-K
    theta_code: int


def integer_net(model: nn.Module, spec: ModelSpec) -> IntegerNet:
    """The trained network in integers, or a UserError naming what HLS does not support."""
    _check_supported(spec)
    direct = spec.encoding == "direct"
    pixel_frac = int(-math.log2(PIXEL_SCALE))
    layers = {}
    for name in LAYERS:
        quant = getattr(model, name).quant_weight()
        scale = float(quant.scale.detach().flatten()[0])
        frac = -math.log2(scale)
        if not frac.is_integer() or quant.scale.numel() != 1:
            raise UserError(f"{name}'s weight scale {scale} is not one power of two; retrain "
                            f"with the fixed-point quantizers")
        weights = quant.int().detach().cpu().numpy().astype(np.int64)
        first = name == "conv1"
        layers[name] = IntegerLayer(
            weights=weights, frac=int(frac), in_frac=pixel_frac if first and direct else 0,
            in_bits=spec.input_bits if first and direct else 1,
            fan_in=int(np.prod(weights.shape[1:])))
    return IntegerNet(spec, layers, state_frac=int(-math.log2(spec.state_step)),
                      leak_shift=int(-math.log2(spec.beta)),
                      theta_code=round(spec.threshold / spec.state_step))


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


def required_widths(net: IntegerNet) -> dict[str, int]:
    """Bit widths (and shifts) that make every sum exact: nothing overflows."""
    spec = net.spec
    widths: dict[str, int] = {}
    for index, name in enumerate(LAYERS, start=1):
        layer = net.layers[name]
        acc = spec.weight_bits + layer.in_bits + math.ceil(math.log2(layer.fan_in))
        widths[f"ACC{index}_BITS"] = acc
        if name == "fc2":
            break
        lif = integer_lif(net, layer.frac + layer.in_frac, acc)
        widths.update({f"SHIFT_V_{index}": lif.shift_v, f"SHIFT_A_{index}": lif.shift_a,
                       f"ROUND_{index}": lif.round_shift, f"X{index}_BITS": lif.x_bits})
    widths["LOGIT_BITS"] = widths["ACC4_BITS"]
    widths["LOGIT_SUM_BITS"] = widths["LOGIT_BITS"] + math.ceil(math.log2(spec.timesteps)) + 1
    return widths


def integer_lif(net: IntegerNet, current_frac: int, current_bits: int) -> IntegerLIF:
    """The LIF update of a layer whose accumulator has units 2^-current_frac."""
    return IntegerLIF(state_bits=net.spec.state_bits, state_frac=net.state_frac,
                      leak_shift=net.leak_shift, current_frac=current_frac,
                      current_bits=current_bits, theta_code=net.theta_code,
                      reset=net.spec.reset)


def params_header(net: IntegerNet, widths: dict[str, int]) -> str:
    spec = net.spec
    c1, c2 = spec.conv_channels
    size = spec.image_size
    defines = {
        "TIMESTEPS": spec.timesteps, "IN_C": spec.in_channels, "IN_H": size, "IN_W": size,
        "C1": c1, "H1": size, "W1": size, "C2": c2, "H2": size // 2, "W2": size // 2,
        "H3": size // 4, "W3": size // 4, "HIDDEN": spec.hidden, "CLASSES": spec.num_classes,
        "WEIGHT_BITS": spec.weight_bits, "STATE_BITS": spec.state_bits,
        "STATE_FRAC": net.state_frac, "LEAK_SHIFT": net.leak_shift,
        "STATE_MIN_CODE": -(2 ** (spec.state_bits - 1)),
        "STATE_MAX_CODE": 2 ** (spec.state_bits - 1) - 1, "THETA_CODE": net.theta_code,
        "RESET_ZERO": int(spec.reset == "zero"), "DIRECT_ENCODING": int(spec.encoding == "direct"),
        "FRAC_4": net.layers["fc2"].frac, **widths,
    }
    lines = ["// Generated by hls/generate.py from a trained run: constants, widths, weights.",
             "#ifndef PARAMS_H", "#define PARAMS_H", ""]
    lines += [f"#define {key} {value}" for key, value in defines.items()]
    lines += [""] + [f"typedef ap_int<ACC{i}_BITS> acc{i}_t;" for i in (1, 2, 3)]
    lines += ["typedef ap_int<WEIGHT_BITS> weight_t;", ""]
    shapes = {"conv1": "[C1][IN_C][3][3]", "conv2": "[C2][C1][3][3]",
              "fc1": "[HIDDEN][C2 * H3 * W3]", "fc2": "[CLASSES][HIDDEN]"}
    for index, name in enumerate(LAYERS, start=1):
        values = ",".join(str(int(v)) for v in net.layers[name].weights.flatten())
        lines.append(f"// {name}: weight = W{index}_INT * 2^-{net.layers[name].frac}")
        lines.append(f"static const signed char W{index}_INT{shapes[name]} = {{{values}}};")
    lines += ["", "#endif", ""]
    return "\n".join(lines)


def write_project(net: IntegerNet, widths: dict[str, int], out: Path, part: str,
                  clock_ns: float) -> None:
    """params.h, the C++ sources and the Vitis HLS script into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "params.h").write_text(params_header(net, widths))
    for name in SOURCES:
        shutil.copy(TEMPLATES / name, out / name)
    script = (TEMPLATES / "run_hls.tcl").read_text()
    (out / "run_hls.tcl").write_text(script.replace("{PART}", part)
                                     .replace("{CLOCK_NS}", f"{clock_ns:g}"))
