"""FINN's own estimates (runs/<name>/fpga/<part>/summary.json, from `make fpga-estimate`)
set beside the analytic model of hw_model.fpga at the same part, clock and target, folded by
FINN's SetFolding rule (folding "finn") so that both estimate the same design.

Energy from FINN's resource counts uses the same (assumed) power constants and the same
fixed-rate definition as hw_model.fpga, at the rate R = min(target, FINN's throughput):
    E = P_static(part) / R + sum over layers of FINN's cycles per inference x
        (LUT c_lut + BRAM18 c_bram + DSP c_dsp),
every BRAM18 of a layer charged in each busy cycle (FINN's reports give no memory shapes, so
this dynamic part is an upper bound beside the analytic one); beside it P_static / FINN's
throughput + the same dynamic part (the sustained rate).
Layers FINN could not estimate (float operations) are counted in `unestimated_layers`.
Cycles per timestep (the throughput) compare the slowest per-step layer of each; the analytic
latency has no padding, sliding-window and pooling stages, so it is shorter than FINN's.

Where the run also has `make fpga-rtlsim` and `make fpga-synth` results for the part
(fpga/<part>/rtlsim/summary.json, synth/summary.json), the measured numbers stand beside
both estimates: cycles per inference in the Verilator simulation of the whole RTL design
(sized FIFOs, steady state) and LUTs from yosys's technology mapping of the layers that
`make fpga-estimate` estimates (FIFOs and width converters, which neither estimate holds,
apart), each estimate's ratio to the measurement.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.runs import RTLSIM_DIR, SUMMARY, SYNTH_DIR
from hw_model import fpga
from hw_model.constants import Table
from hw_model.workload import Workload

TARGET = "fpga-finn"
ESTIMATOR = "FINN estimate reports (finn-plus 1.6.1) + ASSUMED power"


def run_dir(w: Workload) -> Path:
    """The run folder the workload's profile sits in."""
    return Path(w.source).parent


def summaries(w: Workload) -> list[dict]:
    """FINN summaries of the workload's run, if its profile sits in a run folder."""
    return [json.loads(p.read_text()) for p in sorted(run_dir(w).glob("fpga/*/summary.json"))]


def comparison_rows(w: Workload, table: Table) -> list[dict]:
    rows = []
    for finn in summaries(w):
        part = next((p for p in fpga.PARTS if finn["part"].startswith(p)), None)
        if part is None:
            continue
        clock_mhz = 1e3 / finn["clock_ns"]
        config = fpga.Config(part, clock_mhz, finn["target_fps"], folding="finn")
        analytic = fpga.evaluate(w, config, table)
        totals = finn["totals"]
        latency_ns = finn["latency_per_inference_us"] * 1e3
        energies = fpga.per_inference_energy_pj(
            table.v(f"{part}_static_power"), finn_dynamic_energy_pj(finn["layers"], table),
            finn["target_fps"], 1e9 / finn["throughput_inferences_per_s"], latency_ns)
        analytic_lut = float(analytic.resources["lut"].sum())
        analytic_step_cycles = float(max(h.step_cycles
                                         for h in fpga.layer_hardware(w, config, table)))
        analytic_bram = float(analytic.resources["bram18"].sum())
        analytic_cycles = (analytic.per_inference["inference_interval_ns"]
                           / fpga.ns_per_cycle(clock_mhz))
        rows.append({
            "run": w.run, "kind": w.kind, "timesteps": w.timesteps,
            "weight_bits": w.weight_bits, "state_bits": w.state_bits,
            "accuracy_pct": w.accuracy_pct, "target": TARGET, "config": config.label(),
            "estimator": ESTIMATOR,
            **energies,
            "latency_ns": latency_ns, "lut": totals["lut"], "bram18": totals["bram18"],
            "dsp": totals["dsp"], "fits_part": finn["fits"],
            "unestimated_layers": len(finn["float_layers"]),
            "analytic_lut": analytic_lut, "analytic_bram18": analytic_bram,
            "analytic_latency_ns": analytic.inference_latency_ns,
            "lut_analytic_over_finn": analytic_lut / totals["lut"] if totals["lut"] else None,
            "bram18_analytic_over_finn": analytic_bram / totals["bram18"] if totals["bram18"]
            else None,
            "cycles_per_timestep": finn["cycles_per_timestep"],
            "analytic_cycles_per_timestep": analytic_step_cycles,
            "cycles_analytic_over_finn": analytic_step_cycles / finn["cycles_per_timestep"],
            "latency_analytic_over_finn": analytic.inference_latency_ns / latency_ns,
            "cycles_per_inference": finn["cycles_per_inference"],
            "analytic_cycles_per_inference": analytic_cycles,
            **measured(run_dir(w) / "fpga" / finn["part"], finn, analytic_lut,
                       analytic_cycles)})
    return rows


def finn_dynamic_energy_pj(layers: list[dict], table: Table) -> float:
    """Each layer's cycles per inference x its resources x their constants (hw_model.fpga);
    a layer FINN did not estimate (lut None) counts its BRAM18 and DSP only."""
    column = {r: np.array([layer[r] or 0.0 for layer in layers]) for r in ("lut", "bram18", "dsp")}
    cycles = np.array([layer["cycles_per_inference"] for layer in layers], dtype=float)
    return float(fpga.dynamic_energy_pj(cycles, column["lut"], column["bram18"], column["dsp"],
                                        table).sum())


def measured(part_dir: Path, finn: dict, analytic_lut: float,
             analytic_cycles: float) -> dict:
    """The RTL simulation's cycles per inference and yosys's LUTs for the part, each
    estimate over the measurement (None where the run has no such result)."""
    rows: dict = {"rtlsim_cycles_per_inference": None, "cycles_finn_over_rtlsim": None,
                  "cycles_analytic_over_rtlsim": None, "yosys_lut": None,
                  "lut_finn_over_yosys": None, "lut_analytic_over_yosys": None}
    rtlsim = part_dir / RTLSIM_DIR / SUMMARY
    if rtlsim.exists():
        cycles = json.loads(rtlsim.read_text())["cycles_per_inference"]
        rows.update(rtlsim_cycles_per_inference=cycles,
                    cycles_finn_over_rtlsim=finn["cycles_per_inference"] / cycles,
                    cycles_analytic_over_rtlsim=analytic_cycles / cycles)
    synth = part_dir / SYNTH_DIR / SUMMARY
    if synth.exists():
        lut = json.loads(synth.read_text())["totals"]["estimated_layers"]["lut"]
        rows.update(yosys_lut=lut, lut_finn_over_yosys=finn["totals"]["lut"] / lut,
                    lut_analytic_over_yosys=analytic_lut / lut)
    return rows
