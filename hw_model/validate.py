"""Each cost model against an external reference on the same work (`python -m hw_model.validate`).

    python -m hw_model.validate                       # prints the table
    python -m hw_model.validate --out reports/hw_validation.md   # and its .csv twin

One line per comparison: the model, what is compared, our number, the reference, the unit,
the error (ours / reference - 1) and where the reference comes from (tables/references.toml,
or a committed measurement). Lines:
- IMC: SpikeSim's released energy code on its own default case (4-bit VGG-9, CIFAR-10, T = 5,
  64 x 64 RRAM crossbars) against our IMC model in `dense` mode on a profile built from the
  same network's spec (no training: dense mode reads no activity), counted as SpikeSim counts
  (its seven convolutions, output positions after the pool, binary inputs, every layer every
  step); then our departures added one at a time, each line's factor over the one before.
- FPGA: FINN's estimates and the analytic model against the Verilator simulation and yosys
  synthesis of the same RTL design (committed under reports/runs/), and FINN's estimate
  against synthesis on FINN's own example (a design of FINN's, for the estimator's scale).
- Loihi: a published per-inference energy of a network this tool expresses, where one exists.
- digital: the Horowitz constants against a second published table of the same operations.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from common.atomic import write_text, write_with
from common.errors import run_cli
from common.profile import COUNT_FIELDS
from hw_model import fpga, imc, loihi
from hw_model.constants import TABLES, load_table
from hw_model.targets import load_target_table
from hw_model.workload import EXAMPLES, Workload, from_profile, load_workloads
from model.layers import Layer, split_tokens
from model.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
RTL_RUN = "snn_mnist_T4_w4_s8_direct_seed0"
RTL_DIR = ROOT / "reports" / "runs" / RTL_RUN / "rtl_fifos_2026-12-02"
SPIKESIM_VGG9 = ("conv64,conv64,avgpool2,conv128,conv128,avgpool2,conv256,conv256,conv256,"
                 "avgpool2,fc1024")  # SpikeSim's model.py VGG9; its ELA case: the 7 convs


@dataclass(frozen=True)
class Line:
    model: str
    compared: str
    ours: float | None
    reference: float | None
    unit: str
    source: str

    @property
    def error(self) -> float | None:
        if self.ours is None or self.reference is None:
            return None
        return self.ours / self.reference - 1


def spikesim_spec() -> ModelSpec:
    return ModelSpec(kind="snn", timesteps=5, weight_bits=4, in_channels=3, image_size=32,
                     num_classes=10, layers=split_tokens(SPIKESIM_VGG9))


def static_profile(layers: tuple[Layer, ...], spec: ModelSpec, after_pool: bool) -> dict:
    """A profile of `layers` with their static facts and zero activity (what `dense` mode
    reads): output positions after the pool when `after_pool` (SpikeSim's count), else
    before it (ours: the pool follows the neuron)."""
    records = []
    for index, layer in enumerate(layers):
        out = layer.output_shape if after_pool else layer.synapse_shape
        fan_in = math.prod(layer.input_shape) if layer.kind == "fc" else (
            layer.input_shape[0] * layer.kernel**2)
        neurons = math.prod(layer.synapse_shape)
        readout = index == len(layers) - 1
        records.append({
            "name": layer.name, "neuron": "readout" if readout else "lif",
            "input_shape": list(layer.input_shape), "output_shape": list(out),
            "kernel": layer.kernel if layer.kind == "conv" else None,
            "padding": layer.padding if layer.kind == "conv" else None,
            "pool": "after_neuron" if layer.pool else None,
            "binary_input": layer.binary_input, "computed_once": layer.computed_once,
            "neurons": neurons, "weight_count": fan_in * layer.width,
            "weight_bits": spec.weight_bits, "bias_count": layer.width,
            "state_count": 0 if readout else neurons, "state_bits": spec.state_bits,
            "input_bits": layer.input_bits, "output_bits": 1,
            "max_fanout": layer.width * layer.kernel**2,
            "connections": fan_in * math.prod(out),  # dense count: no activity mode reads it
            "per_timestep": [{"t": t, **{k: 0.0 for k in COUNT_FIELDS}}
                             for t in range(1, spec.timesteps + 1)]})
    return {"run": "spikesim_vgg9", "timesteps": spec.timesteps, "accuracy_pct": float("nan"),
            "spec": {"kind": spec.kind, "weight_bits": spec.weight_bits,
                     "state_bits": spec.state_bits, "beta": spec.beta}, "layers": records}


def imc_dense_energy_pj(w: Workload) -> float:
    table = load_target_table("imc")
    config = next(c for c in imc.default_configs(table) if c.mode == "dense")
    return float(imc.evaluate(w, config, table).total_energy_pj.sum())


def imc_lines() -> list[Line]:
    """SpikeSim's case, then our departures one at a time (module docstring)."""
    refs = load_table(TABLES / "references.toml")
    spec = spikesim_spec()
    lowered = spec.weight_layers
    convs = tuple(layer for layer in lowered if layer.kind == "conv")
    as_spikesim = tuple(replace(layer, binary_input=True, input_bits=1, computed_once=False)
                        for layer in convs)
    steps = [
        ("SpikeSim's counting: 7 convs, positions after the pool, binary inputs, every step",
         static_profile(as_spikesim, spec, after_pool=True)),
        ("+ output positions before the pool (our pool follows the neuron)",
         static_profile(as_spikesim, spec, after_pool=False)),
        ("+ conv1's 8-bit image bit-serial, once per image (direct encoding)",
         static_profile((convs[0], *as_spikesim[1:]), spec, after_pool=False)),
        ("+ average-pooled spike counts as 3-bit inputs, bit-serial",
         static_profile(convs, spec, after_pool=False)),
        ("+ the classifier SpikeSim's case leaves out (fc1024, fc10)",
         static_profile(lowered, spec, after_pool=False))]
    energies = [imc_dense_energy_pj(from_profile(profile)) for _, profile in steps]
    reference = refs["spikesim_vgg9_energy"]
    lines = [Line("imc dense", steps[0][0], energies[0], reference.value, "pJ", reference.source)]
    for (what, _), before, after in zip(steps[1:], energies[:-1], energies[1:], strict=True):
        lines.append(Line("imc dense", f"{what}: x{after / before:.5g}", after, None, "pJ",
                          "ours, over the line above"))
    return lines


def fpga_lines() -> list[Line]:
    """Analytic and FINN's estimates against the RTL design's simulation and synthesis."""
    finn = json.loads(next(RTL_DIR.glob("fpga_*.json")).read_text())
    rtlsim = json.loads(next(RTL_DIR.glob("rtlsim_*images.json")).read_text())
    synth = json.loads((RTL_DIR / "synth.json").read_text())
    w, = load_workloads([EXAMPLES / f"{RTL_RUN}.json"])
    part = next(p for p in fpga.PARTS if finn["part"].startswith(p))
    config = fpga.Config(part, 1e3 / finn["clock_ns"], finn["target_fps"], folding="finn")
    table = load_target_table("fpga")
    analytic = fpga.evaluate(w, config, table)
    analytic_cycles = analytic.per_inference["inference_interval_ns"] / fpga.ns_per_cycle(
        config.clock_mhz)
    where = f"T=4 4-bit seed network, {finn['part']}, {config.clock_mhz:g} MHz"
    sim = f"Verilator simulation of the RTL design ({where}; {RTL_DIR.relative_to(ROOT)})"
    syn = f"yosys synth_xilinx of the estimated layers ({where}; {RTL_DIR.relative_to(ROOT)})"
    lut = synth["totals"]["estimated_layers"]["lut"]
    refs = load_table(TABLES / "references.toml")
    return [
        Line("fpga analytic", "cycles per inference", analytic_cycles,
             rtlsim["cycles_per_inference"], "cycles", sim),
        Line("fpga FINN estimate", "cycles per inference", finn["cycles_per_inference"],
             rtlsim["cycles_per_inference"], "cycles", sim),
        Line("fpga analytic", "LUTs", float(analytic.resources["lut"].sum()), lut, "LUT", syn),
        Line("fpga FINN estimate", "LUTs", finn["totals"]["lut"], lut, "LUT", syn),
        Line("FINN estimate (FINN's design)", "LUTs of FINN's cybersecurity MLP",
             refs["finn_cybersecurity_lut_estimate"].value,
             refs["finn_cybersecurity_lut_synth"].value, "LUT",
             refs["finn_cybersecurity_lut_synth"].source)]


def loihi_lines() -> list[Line]:
    w, = load_workloads([EXAMPLES / f"{RTL_RUN}.json"])
    table = load_target_table("loihi")
    energy = loihi.evaluate(w, loihi.default_configs(table)[0], table).total_energy_pj.sum()
    return [Line("loihi", "energy per inference, T=4 4-bit seed network (MNIST)", float(energy),
                 None, "pJ", "no reference: no primary source found with a per-inference "
                 "energy on Loihi for a network this tool expresses (Davies et al. 2018 "
                 "reports per-event energies and other workloads)")]


def digital_lines() -> list[Line]:
    refs = load_table(TABLES / "references.toml")
    ours = load_target_table("digital")
    pairs = [("int32 add", "add_int32", "eie_int32_add", 1.0),
             ("int32 multiply", "mult_int32", "eie_int32_mult", 1.0),
             ("fp32 add", "add_fp32", "eie_fp32_add", 1.0),
             ("fp32 multiply", "mult_fp32", "eie_fp32_mult", 1.0),
             ("32-bit read of an 8 KB SRAM (half a 64-bit read)", "sram_8kb_read64",
              "eie_sram_read32", 0.5)]
    return [Line("digital", what, ours.v(key) * scale, refs[ref].value, refs[ref].unit,
                 refs[ref].source + " (a reproduction of the same table: agreement by "
                 "descent, not an independent measurement)")
            for what, key, ref, scale in pairs]


def validation_table() -> pd.DataFrame:
    lines = imc_lines() + fpga_lines() + loihi_lines() + digital_lines()
    return pd.DataFrame([{"model": line.model, "compared": line.compared, "ours": line.ours,
                          "reference": line.reference, "unit": line.unit,
                          "error": line.error, "reference source": line.source}
                         for line in lines])


def markdown(table: pd.DataFrame) -> str:
    shown = table.assign(error=table["error"].map(
        lambda e: "" if pd.isna(e) else f"{e:+.3g}"))
    blanked = shown.astype(object).replace({np.nan: None})  # tabulate blanks None, not NaN
    return ("# Cost models against external references\n\n"
            "Command: `python -m hw_model.validate`. Error = ours / reference - 1; a line "
            "without a reference states why.\n\n"
            + blanked.to_markdown(index=False, floatfmt=".7g", missingval="") + "\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m hw_model.validate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None,
                   help="also write the table to this markdown file and a .csv beside it")
    args = p.parse_args(argv)
    table = validation_table()
    text = markdown(table)
    print(text)
    if args.out:
        out = Path(args.out)
        write_text(out, text)
        write_with(out.with_suffix(".csv"), lambda tmp: table.to_csv(tmp, index=False))


if __name__ == "__main__":
    run_cli(main)
