"""Energy / area / latency report over workload profiles (`python -m hw_model.report`).

    python -m hw_model.report                 # every runs/*/profile.json (else the examples)
    python -m hw_model.report --sweep         # also a grid of hardware configurations
    python -m hw_model.report --runs runs/a runs/b --targets imc,fpga --out reports/mine

Writes to --out (default reports/hw, or reports/hw_sweep with --sweep): summary.csv (one row
per run x target x configuration, totals per inference), layers.csv (per layer and timestep,
default configurations), report.json (the same plus every constant with unit and source),
README.md (the summary) and PNG plots.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from common.atomic import write_json, write_text, write_with
from common.errors import run_cli
from hw_model import finn_reports, plots
from hw_model.costs import UJ, US
from hw_model.estimate import estimate
from hw_model.targets import ESTIMATORS, TARGETS, load_target_table, parse_targets, target_configs
from hw_model.workload import find_profiles, load_workloads

TIE = 1e-9  # relative: energies this close are a tie (float sums of the same PE cycles)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hw_model.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", default=None, help="run folders or profile.json files")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--targets", default=",".join(TARGETS),
                   help="comma list of " + ", ".join(TARGETS))
    p.add_argument("--sweep", action="store_true", help="sweep each target's hardware grid")
    p.add_argument("--out", default=None, help="output folder (default reports/hw[_sweep])")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    targets = parse_targets(args.targets)
    paths, provenance = find_profiles(args.runs, args.runs_dir)
    print(provenance, file=sys.stderr)
    workloads = load_workloads(paths)
    tables = {t: load_target_table(t) for t in targets}
    configs = {t: target_configs(t, tables[t], sweep=False) for t in targets}
    summary, layers = estimate(workloads, targets, tables, configs)
    finn = pd.DataFrame([row for w in workloads for row in finn_reports.comparison_rows(
        w, tables["fpga"])]) if "fpga" in targets else pd.DataFrame()
    sweep = None
    if args.sweep:
        grid = {t: target_configs(t, tables[t], sweep=True) for t in targets}
        sweep, _ = estimate(workloads, targets, tables, grid)
    out = Path(args.out or ("reports/hw_sweep" if args.sweep else "reports/hw"))
    command = " ".join(["python -m hw_model.report", *(argv if argv is not None else sys.argv[1:])])
    write_outputs(out, summary, layers, sweep, finn, tables, paths, provenance, command)
    print(f"report: {out / 'README.md'}")


def write_outputs(out: Path, summary: pd.DataFrame, layers: pd.DataFrame,
                  sweep: pd.DataFrame | None, finn: pd.DataFrame, tables: dict,
                  paths: list[Path], provenance: str, command: str) -> None:
    write_with(out / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    if not finn.empty:
        write_with(out / "finn_vs_analytic.csv", lambda tmp: finn.to_csv(tmp, index=False))
    write_with(out / "layers.csv", lambda tmp: layers.to_csv(tmp, index=False))
    if sweep is not None:
        write_with(out / "sweep.csv", lambda tmp: sweep.to_csv(tmp, index=False))
    write_json(out / "report.json", {
        "command": command, "profiles": [str(p) for p in paths], "provenance": provenance,
        "targets": {t: {"estimator": ESTIMATORS[t], "as_the_anchor": TARGETS[t].ANCHOR,
                        "departures": [vars(d) for d in TARGETS[t].DEPARTURES],
                        "constants": {k: vars(c) for k, c in table.items()}}
                    for t, table in tables.items()},
        "summary": summary.to_dict(orient="records"),
        "finn_vs_analytic": finn.to_dict(orient="records")})
    plots.metric_vs_timesteps(summary, "energy_pj", UJ, "uJ", out / "energy_vs_T.png")
    plots.metric_vs_timesteps(summary, "latency_ns", US, "us", out / "latency_vs_T.png")
    plots.accuracy_vs_energy(sweep if sweep is not None else summary,
                             out / "accuracy_vs_energy.png")
    plots.layer_breakdown(layers, out / "layer_breakdown.png")
    plots.break_even(summary, out / "break_even.png")
    write_text(out / "README.md", markdown(summary, sweep, finn, provenance, command,
                                           list(tables)))


def markdown(summary: pd.DataFrame, sweep: pd.DataFrame | None, finn: pd.DataFrame,
             provenance: str, command: str, targets: list[str]) -> str:
    lines = ["# Hardware cost report", "",
             f"Command: `{command}`. Profiles: {provenance}.", "",
             "Energy per inference in uJ, latency per inference in us, area in mm2; every "
             "number is an analytic estimate from the estimator named beside it, fed with the "
             "measured workload profile (mean per test image). Compare absolute numbers only "
             "within one estimator.", ""]
    estimators = pd.DataFrame({"target": summary["target"].unique()})
    estimators["estimator"] = estimators["target"].map(ESTIMATORS)
    lines += [estimators.to_markdown(index=False), "",
              "## Per inference, default configuration per target", "",
              "IMC at SpikeSim's operating point in each activity mode: `dense` (SpikeSim), "
              "`event-array` (default: only the crossbar arrays follow the activity) and "
              "`event` (OPTIMISTIC); the SNN/ANN comparison holds per mode.", "",
              _table(summary), "", "## SNN vs ANN (same weight bits, same configuration)", ""]
    lines += _break_even_lines(summary)
    if not finn.empty:
        lines += ["", "## FINN's own estimates vs the analytic model", "",
                  f"From `make fpga-estimate` ({finn_reports.ESTIMATOR}); the analytic model is "
                  "evaluated at the same part, clock and target and with FINN's folding rule "
                  "(SetFolding, `folding=\"finn\"`), so both estimate one design. Ratios are "
                  "analytic / FINN; "
                  "`unestimated_layers` counts layers FINN could not estimate (float "
                  "operations).", "", _table(finn, FINN_COLUMNS)]
        measured = finn.dropna(subset=["rtlsim_cycles_per_inference", "yosys_lut"], how="all")
        if not measured.empty:
            lines += ["", "## Both estimates against the RTL design", "",
                      "Measured: cycles per inference in the Verilator simulation of the "
                      "whole RTL design (`make fpga-rtlsim`, sized FIFOs, steady state); LUTs "
                      "from yosys's technology mapping (`make fpga-synth`, not Vivado's "
                      "place-and-route) of the layers `make fpga-estimate` estimates. Ratios "
                      "are estimate / measured.", "", _table(measured, MEASURED_COLUMNS)]
    if sweep is not None:
        lines += ["", f"## Sweep: {len(sweep)} (run, target, configuration) points", "",
                  "Lowest-energy configuration per run and target (ties: lowest latency; FPGA: "
                  "only configurations that fit their part):", "", _table(best_configs(sweep))]
    lines += ["", "## What the models assume", "", *assumption_lines(targets)]
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({name}.png)" for name in (
        "energy_vs_T", "latency_vs_T", "accuracy_vs_energy", "layer_breakdown", "break_even")]
    lines += ["", "## Caveats", "",
              "- FPGA power uses ASSUMED per-resource constants (see report.json and "
              "hw_model/tables/fpga.toml): calibrate with Vivado `report_power` before quoting "
              "FPGA energy; LUT/BRAM/cycle counts are FINN-R's MVAU formulas plus the "
              "departures listed above.",
              "- FPGA folding: the analytic rows fold each layer by the least-energy rule (of "
              "FINN's candidate foldings that meet the rate, the combination with the least "
              "energy per inference that fits the part; FINN's SetFolding where none fits); "
              "FINN's rows are FINN's own SetFolding result.",
              "- IMC `dense` mode is SpikeSim's (every PE cycle every timestep: linear in T, "
              "blind to sparsity); `event-array` scales only the crossbar arrays with the "
              "measured synaptic activity; `event` also the ADCs and periphery (OPTIMISTIC).",
              "- Digital memory traffic assumes no reuse (each operation reads its operands): "
              "an upper bound for a buffered design.", ""]
    return "\n".join(lines)


def assumption_lines(targets: list[str]) -> list[str]:
    """Per target: what is as its anchor, and each departure with why, source and factor."""
    lines = []
    for target in targets:
        module = TARGETS[target]
        lines += [f"**{target}**: as the anchor: {module.ANCHOR}. Ours:", ""]
        lines += [f"- {d.what}: {d.why} (source: {d.source}; factor: {d.factor})"
                  for d in module.DEPARTURES]
        lines.append("")
    return lines


def best_configs(sweep: pd.DataFrame) -> pd.DataFrame:
    feasible = sweep[sweep.get("fits_part", pd.Series(True, index=sweep.index)) != False]  # noqa: E712
    ranked = feasible.sort_values(["energy_pj", "latency_ns"])
    return ranked.groupby(["run", "target"], sort=True).head(1).sort_values(["run", "target"])


SUMMARY_COLUMNS = ["run", "timesteps", "weight_bits", "accuracy_pct", "target", "config",
                   "energy_uJ", "latency_us", "area_mm2", "lut", "bram18", "fits_part"]
FINN_COLUMNS = ["run", "config", "lut", "analytic_lut", "lut_analytic_over_finn", "bram18",
                "analytic_bram18", "bram18_analytic_over_finn", "cycles_per_timestep",
                "analytic_cycles_per_timestep", "cycles_analytic_over_finn", "latency_us",
                "analytic_latency_us", "latency_analytic_over_finn", "unestimated_layers",
                "energy_uJ", "fits_part"]
MEASURED_COLUMNS = ["run", "config", "rtlsim_cycles_per_inference", "cycles_per_inference",
                    "cycles_finn_over_rtlsim", "analytic_cycles_per_inference",
                    "cycles_analytic_over_rtlsim", "yosys_lut", "lut", "lut_finn_over_yosys",
                    "analytic_lut", "lut_analytic_over_yosys"]


def _table(rows: pd.DataFrame, columns: list[str] = SUMMARY_COLUMNS) -> str:
    """A markdown table of those `columns` that `rows` has, with energies in uJ and latencies
    in us (`energy_uJ`, `latency_us`, `analytic_latency_us` from the pJ / ns columns); floats
    to 4 significant digits, missing values blank."""
    view = rows.assign(energy_uJ=rows["energy_pj"] / UJ, latency_us=rows["latency_ns"] / US)
    if "analytic_latency_ns" in rows:
        view["analytic_latency_us"] = rows["analytic_latency_ns"] / US
    view = view.reindex(columns=[c for c in columns if c in view.columns])
    blanked = view.astype(object).replace({np.nan: None})  # tabulate blanks None, not NaN
    return blanked.to_markdown(index=False, floatfmt=".4g", missingval="")


def _break_even_lines(summary: pd.DataFrame) -> list[str]:
    lines = []
    for (target, config, bits), rows in summary.groupby(["target", "config", "weight_bits"]):
        ann = rows[rows["kind"] == "ann"]
        snn = rows[rows["kind"] == "snn"].sort_values("timesteps")
        if ann.empty or snn.empty:
            continue
        ann_uj = ann["energy_pj"].min() / UJ
        below = snn["energy_pj"] < ann["energy_pj"].min() * (1 - TIE)
        cheaper = snn[below]["timesteps"].tolist()
        energies = ", ".join(f"T={t}: {e / UJ:.4g} uJ" for t, e in
                             zip(snn["timesteps"], snn["energy_pj"], strict=True))
        lines.append(f"- {target} {config}, {bits}-bit: ANN {ann_uj:.4g} uJ; SNN cheaper at T in "
                     f"{cheaper or 'none of the profiled T'} (SNN: {energies})")
    return lines or ["- no ANN profile with matching weight bits among the profiles"]


if __name__ == "__main__":
    run_cli(main)
