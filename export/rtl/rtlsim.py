"""`make fpga-rtlsim`: the whole spiking CNN as RTL, simulated cycle by cycle with Verilator
through FINN's own rtlsim driver, and checked bit for bit against PyTorch.

    python -m export.rtl.rtlsim [runs/<name>] [--part xc7z020clg400-1] [--images 20]

Needs `make export` (the hardware graph) and `make fpga-estimate` for the part (its summary
gives the clock and target; the design is folded exactly as that estimate was). Writes
runs/<name>/fpga/<part>/rtlsim/summary.json and summary.md:

- check: the test images streamed back to back through the stitched design (export/rtl/
  stitch.py; one input frame per image when the first LIF layer holds its input, else T),
  every LIF layer's output stream watched: its spikes at every timestep and the logits
  (the design's integer output x the output scale) compared with PyTorch's `step` on the
  same frames (export.lockstep, as the hardware graph's numpy execution is compared);
- measured cycles: per inference in steady state (the interval between the last output word
  of consecutive images), the first image's latency (first input word accepted -> its last
  output word); per layer, cycles per frame of the layer simulated alone (input always
  valid, output always ready: the rate it can sustain, as FINN's `cycles_rtlsim`), beside
  FINN's estimate (get_exp_cycles) and the ratio.
Simulation: Verilator 5.48 (two-state, no X); compiled models are cached (QSNN_RTL_CACHE).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from common.atomic import atomic_dir, write_json, write_with
from common.errors import UserError, run_cli
from common.runs import RTLSIM_DIR, SUMMARY
from export.finn.finn_graph import channels_first
from export.lockstep import Engine, Trace
from export.rtl.design import estimate_summary


class StreamMonitor:
    """A SimEngine task that records every handshake (tick, word) of a stream it does not
    drive; weak (it never keeps a simulation running)."""

    def __init__(self, sim, stream: str) -> None:
        self.valid = sim.get_bus_port(stream, "TVALID")
        self.ready = sim.get_bus_port(stream, "TREADY")
        self.data = sim.get_bus_port(stream, "TDATA")
        self.ticks: list[int] = []
        self.words: list[int] = []

    def __call__(self, sim) -> dict:
        if self.valid.read().as_bool() and self.ready.read().as_bool():
            self.ticks.append(sim.ticks)
            self.words.append(self.data.read().as_unsigned())
        return {}

    def __bool__(self) -> bool:
        return False


def compile_design(stitched, defines: dict[str, str] | None = None):
    """Verilate the stitched design (cached) and load it in FINN's SimEngine."""
    import finn.xsi

    from export.rtl.verilator_xsi import install

    install()
    folder, library = finn.xsi.compile_sim_obj(stitched.top, stitched.sources, Path("."),
                                               defines=defines)
    return finn.xsi.load_sim_obj(folder, library)


def stream(sim, words: list[int], outputs: int, watch: list[str], timeout: int,
           throttle: tuple[float, float] = (float("inf"), 0)) -> dict:
    """Feed `words` into in0_V and collect `outputs` words from out0_V with FINN's SimEngine
    tasks (output always ready; input valid whenever a word is left, or, with `throttle`
    = (n, cycles), n words at most every `cycles` cycles); returns the monitors of in0_V,
    out0_V and each stream in `watch`. `timeout` cycles without an output word: one line."""
    import finn.xsi

    finn.xsi.reset_rtlsim(sim)  # a run ends by dropping weak tasks: watch after the reset
    monitors = {name: StreamMonitor(sim, name) for name in ["in0_V", "out0_V", *watch]}
    for monitor in monitors.values():
        sim.enlist(monitor)
    sim.stream_input("in0_V", (f"{word:0x}" for word in words), throttle)
    watchdog = sim.create_watchdog("out0_V", timeout)
    collected = sim.collect_output("out0_V", outputs, watchdog=watchdog)
    stalled = sim.run()
    sim.remove_watchdog(watchdog)
    if stalled:
        raise UserError(f"the RTL design stalled: {len(collected.buf)} of {outputs} output "
                        f"words, then none for {timeout} cycles (cycle {sim.ticks})")
    return monitors


def unpack(words: list[int], op, frames: int) -> np.ndarray:
    """Stream words of a layer's output -> [frames, *normal output shape] (FINN's packing)."""
    from finn.util.data_packing import rtlsim_output_to_npy

    folded = op.get_folded_output_shape()
    dtype = op.get_output_datatype()
    array = rtlsim_output_to_npy(words, None, dtype, (frames, *folded[1:]),
                                 op.get_outstream_width_padded(), dtype.bitwidth())
    return array.reshape(frames, *op.get_normal_output_shape()[1:])


def pack(frame: np.ndarray, op) -> list[int]:
    """A layer's input frame [1, ...normal shape] -> its stream words."""
    from finn.util.data_packing import npy_to_rtlsim_input

    folded = frame.reshape(op.get_folded_input_shape()).astype(np.float32)
    return npy_to_rtlsim_input(folded, op.get_input_datatype(), op.get_instream_width_padded())


def rtl_trace(spikes: list[np.ndarray], logits: np.ndarray, images: int) -> Trace:
    """The simulated design's outputs per (image, step) as a lockstep Trace: every LIF
    layer's spikes (channels-last rows -> (C, H, W) order) and the logits; the membranes
    stay inside the design."""
    def per_step(rows: np.ndarray) -> np.ndarray:
        return channels_first(rows).reshape(images, -1, rows[0].size)

    return Trace(per_step(logits), [per_step(layer) for layer in spikes])


class Replayed(Engine):
    """Results computed beforehand (the RTL simulation's), replayed as a lockstep engine on
    the frames they were computed from."""

    def __init__(self, name: str, trace: Trace, frames: np.ndarray) -> None:
        self.name, self.trace, self.frames = name, trace, frames

    def run(self, frames: np.ndarray) -> Trace:
        if not np.array_equal(frames, self.frames):
            raise RuntimeError(f"the check's frames differ from the ones {self.name} ran on")
        return self.trace


def simulate_network(model, stitched, hw, spec, frames: np.ndarray, held: bool) -> dict:
    """Stream every image's uint8 frames [N, T, C, H, W] through the design; its LIF spikes
    and logits per timestep (a Trace) and the measured cycles."""
    from qonnx.custom_op.registry import getCustomOp

    ops = [getCustomOp(node) for node in model.graph.node]
    first, last = ops[0], ops[-1]
    images, steps = frames.shape[:2]
    fed = [image[t][None].astype(np.float32) for image in frames
           for t in range(1 if held else steps)]
    words = [w for f in fed for w in pack(np.transpose(f, (0, 2, 3, 1)) if f.ndim == 4 else f,
                                           first)]
    per_frame = int(np.prod(last.get_folded_output_shape()[:-1]))
    sim = compile_design(stitched)
    started = time.perf_counter()
    monitors = stream(sim, words, per_frame * steps * images,
                      [f"tap{k}_V" for k in range(len(stitched.taps))], timeout=200_000)
    seconds = time.perf_counter() - started
    lif_ops = [op for op in ops if op.onnx_node.name in stitched.taps]
    spikes = [unpack(monitors[f"tap{k}_V"].words, op, steps * images)
              for k, op in enumerate(lif_ops)]
    scale = float(hw.output_scale)
    logits = unpack(monitors["out0_V"].words, last, steps * images) * scale
    done = monitors["out0_V"].ticks[per_frame * steps - 1::per_frame * steps]
    return {"trace": rtl_trace(spikes, logits, images), "simulated_cycles": sim.ticks,
            "simulation_seconds": seconds,
            "latency_cycles": done[0] - monitors["in0_V"].ticks[0],
            "cycles_per_inference": (done[-1] - done[0]) / (len(done) - 1) if len(done) > 1
            else None}


def layer_cycles(model, node, timesteps: int, out_dir: Path) -> int:
    """Cycles per frame of one layer simulated alone (random input, output always ready)."""
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import gen_finn_dt_tensor

    from export.rtl.stitch import stitch_layer

    op = getCustomOp(node)
    held = node.op_type.startswith("LIF") and op.get_nodeattr("heldInput")
    stitched = stitch_layer(model, node, out_dir / node.name)
    frame = gen_finn_dt_tensor(op.get_input_datatype(), op.get_normal_input_shape())
    frames_out = timesteps if held else 1
    outputs = int(np.prod(op.get_folded_output_shape()[:-1])) * frames_out
    monitors = stream(compile_design(stitched), pack(frame, op), outputs, [],
                      timeout=100_000)
    ticks = monitors["out0_V"].ticks
    return round((ticks[-1] - monitors["in0_V"].ticks[0] + 1) / frames_out)


def main(argv: list[str] | None = None) -> None:
    from quant_training.trained_run import TrainedRun, add_run_arguments

    p = argparse.ArgumentParser(prog="python -m export.rtl.rtlsim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.add_argument("--part", default=None, help="FPGA part (default: make fpga-estimate's)")
    p.add_argument("--images", type=int, default=20, help="test images to simulate")
    p.add_argument("--no-layers", action="store_true", help="skip the per-layer simulations")
    args = p.parse_args(argv)
    if args.images < 1:
        raise UserError(f"images={args.images} must be >= 1")
    run = TrainedRun.open(args)
    summary_path = estimate_summary(run.path, args.part)
    estimate = json.loads(summary_path.read_text())
    out = summary_path.parent / RTLSIM_DIR
    with atomic_dir(out) as scratch:
        summary = simulate_run(run, args, estimate, scratch)
        write_json(scratch / SUMMARY, summary)
        write_with(scratch / "summary.md", lambda tmp: tmp.write_text(markdown(summary)))
    print(markdown(summary))
    print(f"rtlsim summary: {out / 'summary.json'}", file=sys.stderr)
    if not summary["check"]["passed"]:
        raise UserError(f"RTL simulation differs from PyTorch: "
                        f"{summary['check']['first_mismatch']}; see {out / 'summary.json'}")


def simulate_run(run, args, estimate: dict, out: Path) -> dict:
    from qonnx.custom_op.registry import getCustomOp

    from export.finn.finn_graph import HardwareGraph
    from export.lockstep import PyTorchEngine, input_frames, lockstep
    from export.rtl.design import design_of_run, hw_graph_of
    from export.rtl.fifos import fifo_table
    from export.rtl.stitch import stitch

    spec = run.spec
    model = design_of_run(run.path, spec.kind, spec.timesteps, estimate, out / "build")
    hw_path = hw_graph_of(run.path, spec.kind)
    hw = HardwareGraph(hw_path, spec)
    lifs = [n for n in model.graph.node if n.op_type == "LIF_rtl"]
    held = bool(getCustomOp(lifs[0]).get_nodeattr("heldInput"))
    stitched = stitch(model, out / "build", taps=[n.name for n in lifs])
    data = run.dataset(args.data_dir)
    images = data.test.images[:args.images]
    frames = input_frames(spec, images)
    result = simulate_network(model, stitched, hw, spec, frames, held)
    rtl = Replayed("rtl", result.pop("trace"), frames)
    check, = lockstep(spec, images, [PyTorchEngine(run.model), rtl], batch=len(images))
    clock_ns = estimate["clock_ns"]
    interval = result["cycles_per_inference"]
    summary = {
        "run": run.path.name, "part": estimate["part"], "clock_ns": clock_ns,
        "target_fps": estimate["target_fps"], "timesteps": spec.timesteps,
        "simulator": "Verilator 5.48 through FINN's SimEngine (two-state)",
        "layers_rtl": [n.op_type for n in model.graph.node],
        "check": check, **result,
        "fifo_sizing": json.loads(model.get_metadata_prop("fifo_sizing")),
        "fifos": fifo_table(model),
        "throughput_inferences_per_s": 1e9 / (interval * clock_ns) if interval else None,
        "latency_us": result["latency_cycles"] * clock_ns / 1e3,
        "estimate": {k: estimate[k] for k in ("cycles_per_inference",
                                              "throughput_inferences_per_s",
                                              "latency_per_inference_cycles", "bottleneck")},
        "layers": [] if args.no_layers else layer_table(model, estimate, spec.timesteps,
                                                        out / "build" / "layers"),
    }
    return summary


def layer_table(model, estimate: dict, timesteps: int, out_dir: Path) -> list[dict]:
    """Per layer: measured cycles per frame beside FINN's estimate and their ratio."""
    from qonnx.custom_op.registry import getCustomOp

    from export.rtl.design import estimate_layer
    from export.rtl.stitch import FIFO_OP

    rows = []
    for node in model.graph.node:
        if node.op_type == FIFO_OP:  # buffers: their rate is their neighbours'
            continue
        layer = estimate_layer(estimate, node.name)
        measured = layer_cycles(model, node, timesteps, out_dir)
        finn = layer["cycles_per_timestep"] if layer else None
        rows.append({"node": node.name, "op_type": node.op_type,
                     "estimate_node": layer["node"] if layer else None,
                     "cycles_per_frame_rtlsim": measured,
                     "cycles_per_frame_expected": int(getCustomOp(node).get_exp_cycles()),
                     "cycles_per_frame_finn_estimate": finn,
                     "rtlsim_over_finn": measured / finn if finn else None})
    return rows


def markdown(summary: dict) -> str:
    check, est = summary["check"], summary["estimate"]
    mhz = 1e3 / summary["clock_ns"]
    lines = [f"# RTL simulation: {summary['run']} on {summary['part']} at {mhz:.0f} MHz, "
             f"T={summary['timesteps']}",
             "",
             f"Simulator: {summary['simulator']}; {check['images']} test images streamed back "
             f"to back; every layer RTL ({_layer_count(summary['layers_rtl'])}).",
             "",
             f"- bit-exact against PyTorch: LIF spikes at every step {check['spikes_bit_exact']}, "
             f"logits {check['logits_match']}, identical predictions "
             f"{check['identical_predictions']}/{check['images']}",
             f"- cycles per inference (steady state, measured): "
             f"{_fmt(summary['cycles_per_inference'])}; FINN's estimate "
             f"{est['cycles_per_inference']} (bottleneck {est['bottleneck']})",
             f"- throughput at {mhz:.0f} MHz: {_fmt(summary['throughput_inferences_per_s'])} "
             f"inferences/s measured; {est['throughput_inferences_per_s']:.0f} estimated "
             f"(target {summary['target_fps']:g})",
             f"- latency of the first image: {summary['latency_cycles']} cycles = "
             f"{summary['latency_us']:.1f} us (FINN's estimate "
             f"{est['latency_per_inference_cycles']} cycles)",
             _fifo_line(summary)]
    if summary["layers"]:
        lines += ["", "| layer | RTL op | cycles/frame, rtlsim | FINN estimate | rtlsim / FINN |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['node']} | {r['op_type']} | {r['cycles_per_frame_rtlsim']} | "
                  f"{_fmt(r['cycles_per_frame_finn_estimate'])} | "
                  f"{_fmt(r['rtlsim_over_finn'], 2)} |"
                  for r in summary["layers"]]
    return "\n".join(lines) + "\n"


def _layer_count(op_types: list[str]) -> str:
    fifos = op_types.count("StreamingFIFO_rtl")
    return f"{len(op_types) - fifos} layers and {fifos} FIFOs"


def _fifo_line(summary: dict) -> str:
    fifos, sizing = summary["fifos"], summary["fifo_sizing"]
    kbit = sum(f["depth"] * f["width_bits"] for f in fifos) / 1e3
    deepest = max(fifos, key=lambda f: f["depth"] * f["width_bits"])
    return (f"- FIFOs: {len(fifos)}, one between every two layers, sized by simulation "
            f"(FINN's fifo_gauge, {sizing['images']} images fed one every "
            f"{sizing['interval_cycles']:,} cycles): {kbit:,.1f} kbit in all, the largest "
            f"{deepest['node']} ({deepest['depth']:,} x {deepest['width_bits']} bit, "
            f"{deepest['ram_style']})")


def _fmt(value, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


if __name__ == "__main__":
    run_cli(main)
