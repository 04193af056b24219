"""FINN estimate build of an exported run and the project's summary (`make fpga-estimate`).

    python -m export.finn.fpga_estimate [runs/<name>] [--part xc7z020clg400-1] [--clock-ns 10]
                                   [--target-fps 1000] [--build]

Starts from the FINN hardware graph that `make export` wrote and checked (step_hw.onnx: LIF
layers with on-chip membranes, one frame per timestep) and writes runs/<name>/fpga/<part>/:
FINN's estimate reports (report/), the folding chosen (folding_config.json), and summary.json /
summary.csv: per FINN layer PE / SIMD, LUT, BRAM18, URAM, DSP, cycles per frame (timestep)
and frames per inference (T, or 1 for the layers in front of a LIF layer that holds its
input: conv1 under direct encoding runs once per image); the bottleneck; throughput = clock /
the largest cycles x frames per inference; latency per inference = critical path + (T - 1) x
the slowest per-timestep layer (timesteps stream through the pipeline); whether the target
is met and, if not, what limits it; whether it fits the part and, if not, the fastest design
that does (`best_fit`: the target halved until a design fits). FINN's blind spots are filled
or flagged, never silently zero: RTL MVAUs (FINN reports 0 LUT) get FINN-R's analytic LUT
count; layers with float inputs or outputs (FINN estimates them at 0 LUT) are flagged
`float_ops`.
--target-fps is in inferences per second; FINN is asked for target_fps x T frames per second,
with a weight-width limit (mvau_wwidth_max) as wide as the widest weight row so that SIMD is
not capped below the target. --build continues to synthesis, which needs Xilinx
Vivado/Vitis (XILINX_VIVADO).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

from common.atomic import atomic_dir, write_json, write_with
from common.errors import UserError, run_cli
from common.runs import EXPORT_DIR, SUMMARY, resolve_run
from export.finn.finn_flow import ESTIMATE_STEPS, SYNTHESIS_STEPS, run_build, vivado_available
from export.finn.finn_graph import hw_graph_path
from export.finn.folding import frames_per_inference, weight_width_limit
from export.qonnx.qonnx_export import graph_name
from export.qonnx.step_graph import read_metadata
from hw_model.fpga import budget as part_budget
from hw_model.fpga import mvau_luts
from hw_model.targets import load_target_table

DEFAULT_PART = "xc7z020clg400-1"


def known_parts() -> list[str]:
    from finn.util.basic import part_map

    return sorted(set(part_map.values()))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m export.finn.fpga_estimate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?", default=None, help="run folder (default: the latest)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--part", default=DEFAULT_PART)
    p.add_argument("--clock-ns", type=float, default=10.0)
    p.add_argument("--target-fps", type=float, default=1000.0, help="inferences per second")
    p.add_argument("--build", action="store_true", help="also synthesize (needs Vivado)")
    args = p.parse_args(argv)
    if args.build and not vivado_available():
        raise UserError("make fpga-build needs Xilinx Vivado/Vitis (XILINX_VIVADO is not set); "
                        "`make fpga-estimate` runs without them")
    if args.part not in known_parts():
        raise UserError(f"part={args.part!r} is not supported; allowed: {', '.join(known_parts())}")
    if not args.clock_ns > 0 or not args.target_fps > 0:
        raise UserError(f"clock_ns={args.clock_ns} and target_fps={args.target_fps} must be > 0")
    run_dir = resolve_run(args.run, args.runs_dir)
    graph = run_dir / EXPORT_DIR / graph_name("snn")
    if not graph.exists():
        graph = run_dir / EXPORT_DIR / graph_name("ann")
    meta = read_metadata(graph)
    if not hw_graph_path(graph).exists():
        raise UserError(f"{hw_graph_path(graph)} does not exist; run `make export` first (it "
                        f"writes and checks the FINN hardware graph)")
    read_metadata(hw_graph_path(graph))  # a truncated or foreign file: one line
    steps = ESTIMATE_STEPS + (SYNTHESIS_STEPS if args.build else [])
    out = run_dir / "fpga" / args.part
    summary = build_into(out, graph, meta, args.part, args.clock_ns, args.target_fps, steps)
    print_summary(summary)
    print(f"fpga summary: {out / 'summary.json'}")


def build_into(out: Path, graph: Path, meta: dict, part: str, clock_ns: float,
               target_fps: float, steps: list[str]) -> dict:
    """Build in a scratch folder and swap it in whole: `out` is never left half-written.
    A design that does not fit the part is rebuilt at half the target until one fits, with
    and without the first LIF layer holding its input (the held currents cost memory, which
    a small part may lack): the summary's `best_fit` is the fastest design that fits (None
    if none fits at 1 inference/s)."""
    with atomic_dir(out) as scratch:
        hw_graph = hw_graph_path(graph)
        summary = _estimate(scratch, hw_graph, meta, part, clock_ns, target_fps, steps)
        shutil.copy(scratch / "report" / "auto_folding_config.json",
                    scratch / "folding_config.json")
        summary["best_fit"] = None if summary["fits"] is not False else _best_fit(
            scratch / "smaller", hw_graph, meta, part, clock_ns, target_fps / 2)
        shutil.rmtree(scratch / "smaller", ignore_errors=True)
        write_json(scratch / SUMMARY, summary)
        table = pd.DataFrame(summary["layers"])
        write_with(scratch / "summary.csv", lambda tmp: table.to_csv(tmp, index=False))
    return summary


def _estimate(out: Path, hw_graph: Path, meta: dict, part: str, clock_ns: float,
              target_fps: float, steps: list[str] = ESTIMATE_STEPS) -> dict:
    model = run_build(hw_graph, out, steps, part, clock_ns, target_fps * meta["timesteps"],
                      weight_width_limit(hw_graph))
    return summarize(model, out / "report", meta, part, clock_ns, target_fps)


def _best_fit(out: Path, hw_graph: Path, meta: dict, part: str, clock_ns: float,
              target_fps: float) -> dict | None:
    out.mkdir(parents=True, exist_ok=True)
    unheld = _without_held_input(hw_graph, out / "unheld_hw.onnx")
    variants = [(unheld is not None, hw_graph)] + ([(False, unheld)] if unheld else [])
    while target_fps >= 1:
        fitting = []
        for holds, variant in variants:
            shutil.rmtree(out / "build", ignore_errors=True)
            summary = _estimate(out / "build", variant, meta, part, clock_ns, target_fps)
            if summary["fits"]:
                fitting.append({"first_layer_holds_input": holds,
                                **{key: summary[key] for key in (
                                    "target_fps", "throughput_inferences_per_s",
                                    "latency_per_inference_us", "totals", "bottleneck",
                                    "cycles_per_inference")}})
        if fitting:
            return max(fitting, key=lambda fit: fit["throughput_inferences_per_s"])
        target_fps /= 2
    return None


def _without_held_input(hw_graph: Path, path: Path) -> Path | None:
    """The hardware graph with no LIF layer holding its input, or None if none does."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import export.finn.finn_lif  # noqa: F401 (registers the LIF layer)

    model = ModelWrapper(str(hw_graph))
    held = [getCustomOp(n) for n in model.graph.node
            if n.op_type == "LIF" and getCustomOp(n).get_nodeattr("heldInput")]
    for op in held:
        op.set_nodeattr("heldInput", 0)
    if not held:
        return None
    model.save(str(path))
    return path


def summarize(model, report: Path, meta: dict, part: str, clock_ns: float,
              target_fps: float) -> dict:
    resources = json.loads((report / "estimate_layer_resources.json").read_text())
    cycles = json.loads((report / "estimate_layer_cycles.json").read_text())
    network = json.loads((report / "estimate_network_performance.json").read_text())
    frames = frames_per_inference(model)
    layers = [_layer(model, node, resources[node.name], cycles[node.name], frames[node.name])
              for node in model.graph.node if node.name in resources]
    totals = {k: float(sum(layer[k] or 0 for layer in layers))
              for k in ("lut", "bram18", "uram", "dsp")}
    timesteps = meta["timesteps"]
    interval = max(layer["cycles_per_inference"] for layer in layers)
    step_cycles = max(layer["cycles_per_timestep"] for layer in layers
                      if layer["frames_per_inference"] == timesteps)
    latency_cycles = int(network["critical_path_cycles"]) + (timesteps - 1) * step_cycles
    throughput = 1e9 / (interval * clock_ns)
    fits, budget = _fits(part, totals)
    bottleneck = max(layers, key=lambda layer: layer["cycles_per_inference"])
    return {
        "part": part, "clock_ns": clock_ns, "target_fps": target_fps, "timesteps": timesteps,
        "estimator": "FINN (finn-plus 1.6.1) estimate reports, LIF layers by "
                     "export/finn/finn_lif.py; RTL MVAU LUTs by FINN-R formula",
        "layers": layers, "totals": totals, "budget": budget, "fits": fits,
        "over_budget": [f"{k} {totals[k]:.0f} > {limit:.0f}"
                        for k, limit in (budget or {}).items() if totals[k] > limit],
        "bottleneck": bottleneck["node"], "cycles_per_timestep": step_cycles,
        "cycles_per_inference": interval,
        "critical_path_cycles": int(network["critical_path_cycles"]),
        "latency_per_inference_cycles": latency_cycles,
        "latency_per_inference_us": latency_cycles * clock_ns / 1e3,
        "throughput_inferences_per_s": throughput,
        "target_met": throughput >= target_fps * (1 - 1e-9),
        "limited_by": None if throughput >= target_fps * (1 - 1e-9) else _limit(bottleneck),
        "float_layers": [layer["node"] for layer in layers if layer["float_ops"]],
        "lif_layers": [layer["node"] for layer in layers if layer["op_type"].startswith("LIF")],
        "first_layer_computed_once": timesteps > 1 and any(
            layer["frames_per_inference"] == 1 for layer in layers),
    }


def _layer(model, node, resources: dict, cycles: int, frames: int) -> dict:
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    attrs = op.get_nodeattr_types()
    float_ops = _has_float_io(model, node)
    lut: float | None
    lut, lut_source = float(resources["LUT"]), "FINN"
    if node.op_type == "MVAU_rtl" and lut == 0:
        lut = float(_mvau_luts(op, dsp=resources["DSP"] > 0))
        lut_source = "FINN-R formula (FINN reports 0 for RTL MVAU)"
    elif node.op_type.startswith("LIF"):
        lut_source = "project formula (hw_model.fpga, via the layer's FINN op)"
    elif float_ops and lut == 0:
        lut, lut_source = None, "NOT ESTIMATED: float operation (FINN reports 0)"
    return {"node": node.name, "op_type": node.op_type,
            "pe": op.get_nodeattr("PE") if "PE" in attrs else None,
            "simd": op.get_nodeattr("SIMD") if "SIMD" in attrs else None,
            "lut": lut, "lut_source": lut_source,
            "bram18": float(resources["BRAM_18K"]), "uram": float(resources["URAM"]),
            "dsp": float(resources["DSP"]), "cycles_per_timestep": int(cycles),
            "frames_per_inference": frames, "cycles_per_inference": int(cycles) * frames,
            "float_ops": float_ops}


def _limit(layer: dict) -> str:
    """Why the bottleneck layer cannot go faster, as far as its folding tells."""
    folding = ", ".join(f"{k.upper()}={layer[k]}" for k in ("pe", "simd") if layer[k])
    return (f"{layer['node']} ({layer['op_type']}, {folding or 'no folding attribute'}) at "
            f"{layer['cycles_per_inference']} cycles per inference: FINN's folding cannot "
            f"parallelize it further")


def _has_float_io(model, node) -> bool:
    from qonnx.core.datatype import DataType

    tensors = [t for t in (*node.input, *node.output) if t and model.get_initializer(t) is None]
    return any(model.get_tensor_datatype(t) == DataType["FLOAT32"] for t in tensors)


def _mvau_luts(op, dsp: bool) -> int:
    from qonnx.core.datatype import DataType

    idt = DataType[op.get_nodeattr("inputDataType")]
    weights = DataType[op.get_nodeattr("weightDataType")]
    return mvau_luts(op.get_nodeattr("MW"), op.get_nodeattr("MH"), op.get_nodeattr("PE"),
                     op.get_nodeattr("SIMD"), weights.bitwidth(), idt.bitwidth(), idt.signed(),
                     multipliers_in_luts=not dsp)


def _fits(part: str, totals: dict) -> tuple[bool | None, dict | None]:
    table = load_target_table("fpga")
    short = next((name for name in ("xc7z020", "xczu7ev") if part.startswith(name)), None)
    if short is None:
        return None, None
    budget = part_budget(table, short)
    return all(totals[r] <= budget[r] for r in budget), budget


def print_summary(summary: dict) -> None:
    rows = pd.DataFrame(summary["layers"])[["node", "pe", "simd", "lut", "bram18", "uram",
                                            "dsp", "cycles_per_timestep",
                                            "frames_per_inference"]]
    rows[["pe", "simd"]] = rows[["pe", "simd"]].astype("Int64")
    print(rows.to_string(index=False, na_rep="-"))
    t = summary["totals"]
    print(f"\n{summary['part']} @ {1e3 / summary['clock_ns']:.0f} MHz, T={summary['timesteps']}: "
          f"LUT {t['lut']:.0f}, BRAM18 {t['bram18']:.0f}, URAM {t['uram']:.0f}, DSP "
          f"{t['dsp']:.0f} -> fits: {summary['fits']}"
          f"{' (' + '; '.join(summary['over_budget']) + ')' if summary['over_budget'] else ''}; "
          f"bottleneck {summary['bottleneck']} ({summary['cycles_per_inference']} "
          f"cycles/inference); "
          f"latency {summary['latency_per_inference_us']:.1f} us/inference; throughput "
          f"{summary['throughput_inferences_per_s']:.0f} inferences/s (target "
          f"{summary['target_fps']:g}: {'met' if summary['target_met'] else 'NOT met'})")
    if summary["limited_by"]:
        print(f"limited by {summary['limited_by']}", file=sys.stderr)
    best = summary["best_fit"]
    if summary["fits"] is False:
        print("does not fit the part at any target down to 1 inference/s" if best is None else
              f"fastest design that fits (target halved until it fits): "
              f"{best['throughput_inferences_per_s']:.0f} inferences/s at target "
              f"{best['target_fps']:g}"
              f"{'' if best['first_layer_holds_input'] else ' (conv1 every timestep)'}, "
              f"LUT {best['totals']['lut']:.0f}, BRAM18 "
              f"{best['totals']['bram18']:.0f}, DSP {best['totals']['dsp']:.0f}; bottleneck "
              f"{best['bottleneck']}", file=sys.stderr)
    if summary["float_layers"]:
        print(f"float layers (FINN estimates them at 0 LUT; not estimated here): "
              f"{len(summary['float_layers'])}: {', '.join(summary['float_layers'])}",
              file=sys.stderr)

if __name__ == "__main__":
    run_cli(main)
