"""`make paper`: the study's research report, reports/study/paper.typ and paper.pdf (Typst).

    python -m study.paper [--study-dir reports/study]

Built in seconds from committed files alone: the study's summary.csv (written by
`make study-report` from the committed trial folders), the starting study's table
(study/original_study.toml), the CPU benchmark (reports/bench/speed_cpu.json), the cost
models' validation (reports/hw_validation.md) and the RTL design's simulation and synthesis
(reports/runs/). Every number the paper prints goes through `Sources.cite`, which records the
file and the row / key it came from; the paper ends with that table, and a test re-reads each
entry from its file. Measured: accuracy, spikes, simulated cycles, synthesized LUTs, CPU time.
Modelled: energy (hw_model, each model's anchor named).
"""
from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from common.atomic import write_text, write_with
from common.errors import UserError, run_cli
from hw_model.report import TIE
from study.report import FASTEST_HW, YAN, figure_file

ROOT = Path(__file__).resolve().parents[1]
STUDY_DIR = Path("reports/study")
SUMMARY = "reports/study/summary.csv"
TRIALS = "reports/study/trials.csv"
ORIGINAL = "study/original_study.toml"
SPEED = "reports/bench/speed_cpu.json"
RTL = "reports/runs/snn_mnist_T4_w4_s8_direct_seed0/rtl_fifos_2026-12-02"
FINN_XC7Z020 = "reports/runs/snn_mnist_T4_w4_s8_direct_seed0/fpga_xc7z020clg400-1.json"
SEED_SPEC = "reports/study/runs/snn_mnist_T4_w4_s8_direct_seed0/metrics.json"
VALIDATION_CSV = "reports/hw_validation.csv"
PARTS = ROOT / "study" / "paper"
BASE = {"dataset": "mnist", "state_bits": 8, "encoding": "direct", "reset": "subtract"}
FIXED_FPGA, FASTEST_FPGA = "fpga 1000/s", FASTEST_HW
TARGETS = [("digital", "digital (45 nm)"), ("imc event-array", "IMC event-array"),
           ("imc dense", "IMC dense"), (FIXED_FPGA, "FPGA 1,000/s"),
           (FASTEST_FPGA, "FPGA max rate"), ("loihi", "Loihi")]
SNN_T = (1, 2, 4, 10)


@dataclass(frozen=True)
class Source:
    """Where a printed number comes from: `file`, the row (`where`: column -> value, CSV) or
    the key path (JSON / TOML), the `column`, and how it was printed (`fmt`, after `scale`)."""

    label: str
    text: str
    file: str
    where: dict[str, Any] | list[Any]
    column: str | None
    fmt: str
    scale: float = 1.0
    inverse: bool = False  # printed scale / value (e.g. us per image from images per s)


@dataclass
class Sources:
    """Every number the paper prints, with its origin (module docstring)."""

    entries: list[Source] = field(default_factory=list)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)

    def cite(self, label: str, file: str, where: dict | list, column: str | None, fmt: str,
             scale: float = 1.0, inverse: bool = False) -> str:
        value = read_value(file, where, column)
        text = format(scale / value if inverse else value * scale, fmt)
        entry = Source(label, text, file, where, column, fmt, scale, inverse)
        if entry not in self.entries:
            self.entries.append(entry)
        return text

    def row(self, kind: str, timesteps: int, bits: int, hw: str = "digital") -> dict:
        return {**BASE, "kind": kind, "timesteps": timesteps, "weight_bits": bits, "hw": hw}


def read_value(file: str, where: dict | list, column: str | None) -> float:
    """The number at `where` / `column` of a committed file; a one-line error if absent."""
    path = ROOT / file
    if not path.is_file():
        raise UserError(f"{file} does not exist; run `make study-report` (or the command that "
                        "writes it) first")
    if path.suffix == ".csv":
        frame = pd.read_csv(path)
        assert isinstance(where, dict)
        rows = frame[(frame[list(where)] == pd.Series(where)).all(axis=1)]
        if len(rows) != 1 or column is None:
            raise UserError(f"{file}: {len(rows)} rows match {where}; one is needed")
        return float(rows.iloc[0][column])
    data: Any = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(
        path.read_text())
    for key in where:
        data = data[key]
    return float(data)


def esc(text: str) -> str:
    """Typst markup for plain text."""
    return "".join("\\" + c if c in "\\*_#$@<>[]`~/=+-" else c for c in str(text))


def pm(src: Sources, label: str, row: dict, unit: str = "") -> str:
    """Accuracy 'mean +- std<unit> (n = seeds)' from summary.csv (std with two or more)."""
    n = int(read_value(SUMMARY, row, "n"))
    mean = src.cite(f"{label}: test accuracy", SUMMARY, row, "test_accuracy_pct", ".2f")
    if n < 2:
        return f"{mean}{unit} (n = 1)"
    std = src.cite(f"{label}: std over seeds", SUMMARY, row, "test_accuracy_pct_std", ".2f")
    return f"{mean} ± {std}{unit} (n = {n})"


def table(header: list[str], rows: list[list[str]], inset: str = "3pt",
          groups: tuple[tuple[str, int], ...] = ()) -> str:
    """A Typst table call (code, no leading #): header cells bold, then the rows; `groups`,
    (title, columns spanned) from the left, make a header row above the header."""
    spans = "".join(f"table.cell(colspan: {n})[*{esc(title)}*], " for title, n in groups)
    cells = ", ".join(f"[*{esc(h)}*]" for h in header)
    body = ", ".join(f"[{c}]" for r in rows for c in r)
    return (f"table(columns: {len(header)}, align: left, stroke: 0.4pt, inset: {inset}, "
            f"{spans}{cells}, {body})")


def figure(name: str, caption: str) -> str:
    return (f'#figure(image("{figure_file(name, "mnist")}", width: 100%), '
            f"caption: [{caption}])")


def accuracy_section(src: Sources) -> str:
    original = tomllib.loads((ROOT / ORIGINAL).read_text())["rows"]
    rows = []
    for index, theirs in enumerate(original):
        t = theirs["timesteps"]
        acc = src.cite(f"starting study T={t}: accuracy", ORIGINAL,
                       ["rows", index, "test_accuracy_pct"], None, ".2f")
        spikes = src.cite(f"starting study T={t}: spikes/image", ORIGINAL,
                          ["rows", index, "spikes_per_image"], None, ",.0f")
        score = float(acc) / theirs["spikes_per_image"]
        seconds = src.cite(f"starting study T={t}: inference time [s]", ORIGINAL,
                           ["rows", index, "inference_time_s"], None, ".2f")
        rows.append([f"{t}", "starting study", acc, spikes, f"{score:.4f}",
                     f"{seconds} s (images not stated)"])
    for t in SNN_T:
        row = src.row("snn", t, 4)
        acc = pm(src, f"SNN T={t} w4", row)
        spikes = src.cite(f"SNN T={t} w4: spikes/image", SUMMARY, row, "spikes_per_image", ",.0f")
        score = float(read_value(SUMMARY, row, "test_accuracy_pct")) / float(
            read_value(SUMMARY, row, "spikes_per_image"))
        rows.append([f"{t}", "ours (w4, s8)", acc, spikes, f"{score:.4f}", cpu_time(src, t)])
    rows.sort(key=lambda r: (int(r[0]), r[1]))
    bits = [[f"{b}", pm(src, f"SNN T=4 w{b}", src.row("snn", 4, b)),
             pm(src, f"ANN w{b}", src.row("ann", 1, b))] for b in (2, 4, 8)]
    return "\n\n".join([
        "= Results and comparisons",
        "@tab:start sets our networks (4-bit weights, 8-bit membrane) beside the starting "
        "study's table (a float network trained at T = 10, evaluated at each T, checkpoint "
        "chosen on the test set). Its efficiency score is its own metric, test accuracy in % "
        "over spikes per image (higher is better). Our inference time is measured per image on "
        "this machine's two CPU threads (float weights, batch 256, `make bench`) where it was "
        "measured; the study's is its printed wall clock.",
        "#figure(" + table(["T", "network", "test accuracy [%]", "spikes / image",
                            "efficiency score", "inference time"], rows)
        + ", caption: [The starting study's table beside ours (MNIST test set, 10,000 "
        "images).]) <tab:start>",
        "#figure(" + table(["weight bits", "SNN, T = 4 [%]", "ANN twin [%]"], bits)
        + ", caption: [Test accuracy at 2, 4 and 8 bits: mean ± std over seeds, n seeds.]) "
        "<tab:bits>",
        figure("accuracy_vs_T", "Test accuracy vs T per weight width; the ANN twin as a band "
               "of mean ± std over seeds (MNIST)."),
    ])


def cpu_time(src: Sources, timesteps: int) -> str:
    """Measured CPU inference time per image [us] at T (batch 256), or '-' if not measured."""
    results = json.loads((ROOT / SPEED).read_text())["results"]
    for index, r in enumerate(results):
        if (r["library"], r["timesteps"], r["batch"]) == ("qsnn", timesteps, 256):
            return src.cite(f"CPU inference time per image [us], T={timesteps}", SPEED,
                            ["results", index, "inference", "images_per_s"], None, ".0f",
                            scale=1e6, inverse=True) + " µs / image"
    return "-"


def networks() -> list[tuple[str, str, int]]:
    """The paper's networks: (name, kind, T), the 4-bit SNNs at SNN_T and the 4-bit ANN."""
    return [(f"SNN T = {t}", "snn", t) for t in SNN_T] + [("ANN (4-bit)", "ann", 1)]


def per_target_table(src: Sources, column: str, what: str, fmt: str) -> list[list[str]]:
    """Per network (networks()), `column` of summary.csv on each of TARGETS."""
    return [[name, *(src.cite(f"{name} w4 {hw}: {what}", SUMMARY, src.row(kind, t, 4, hw),
                              column, fmt) for hw, _ in TARGETS)]
            for name, kind, t in networks()]


def fpga_table(src: Sources) -> str:
    """@tab:fpga: the FPGA at each network's highest throughput that fits, and at the fixed
    rate."""
    columns = [(FASTEST_FPGA, "rate_per_s", "rate [1/s]", ",.0f"),
               (FASTEST_FPGA, "energy_uj", "energy [uJ]", ".3g"),
               (FASTEST_FPGA, "lut", "LUT", ",.0f"), (FASTEST_FPGA, "bram18", "BRAM18", ",.0f"),
               (FIXED_FPGA, "energy_uj", "energy [uJ]", ".3g"),
               (FIXED_FPGA, "lut", "LUT", ",.0f"), (FIXED_FPGA, "bram18", "BRAM18", ",.0f")]
    rows = [[name, *(src.cite(f"{name} w4 {hw}: {label}", SUMMARY, src.row(kind, t, 4, hw),
                              column, fmt) for hw, column, label, fmt in columns)]
            for name, kind, t in networks()]
    header = ["network", *(label.replace("uJ", "µJ") for _, _, label, _ in columns)]
    groups = (("", 1), ("highest throughput that fits", 4), ("1,000 inferences/s", 3))
    return (f"#figure({table(header, rows, groups=groups)}, caption: [FPGA (xc7z020, 100 MHz, "
            "least-energy folding, analytic) at each network's highest throughput whose design "
            "fits the part's LUTs and BRAM18s and at the common fixed rate: energy per "
            "inference = static power / rate + dynamic energy.]) <tab:fpga>")


def rtl_sentence(src: Sources) -> str:
    """What exists measured or estimated by FINN for the FPGA, at its own operating points."""
    rate = src.cite("RTL: simulated throughput [1/s]", f"{RTL}/rtlsim_20images.json",
                    ["throughput_inferences_per_s"], None, ",.0f")
    luts = src.cite("RTL: yosys LUTs of the whole design", f"{RTL}/synth.json",
                    ["totals", "design", "lut"], None, ",.0f")
    brams = src.cite("RTL: yosys BRAM18 of the whole design", f"{RTL}/synth.json",
                     ["totals", "design", "bram18"], None, ",.0f")
    finn = [src.cite(f"FINN estimate, fastest fit on xc7z020: {what}", FINN_XC7Z020,
                     ["best_fit", *key], None, ",.0f")
            for what, key in (("rate [1/s]", ["throughput_inferences_per_s"]),
                              ("LUT", ["totals", "lut"]), ("BRAM18", ["totals", "bram18"]))]
    return ("Measured FPGA numbers exist at other operating points only. The RTL design of a "
            "T = 4 network, folded by FINN for 50,000 inferences/s on an xczu7ev at 250 MHz, "
            f"sustains {rate} inferences/s in Verilator; yosys maps it to {luts} LUTs and "
            f"{brams} BRAM18 (not place-and-route). FINN's own estimate of the fastest design "
            f"that fits the xc7z020 (at 250 MHz, conv1 every timestep) reaches {finn[0]} "
            f"inferences/s with {finn[1]} LUTs and {finn[2]} BRAM18. It is found by halving "
            "the target from 50,000 inferences/s until a design fits, at FINN's minimal "
            "foldings, which move conv2's weights from LUTs into BRAM as the target falls; "
            "the analytic model, run at the same foldings and clock, agrees: 25,000/s sits at "
            "the part's LUT limit, and 12,500/s and 6,250/s exceed its BRAM18 unless conv1's "
            "current is recomputed every timestep. @tab:fpga is analytic, at least-energy "
            "foldings, which keep conv2's weights in LUTs.")


def energy_section(src: Sources) -> str:
    header = ["network", *(name for _, name in TARGETS)]
    rate = src.cite("FPGA fixed rate [1/s]", SUMMARY, src.row("ann", 1, 4, FIXED_FPGA),
                    "rate_per_s", ",.0f")
    t4 = src.row("snn", 4, 4)
    per_synapse = src.cite("SNN T=4 w4: spikes per synapse", SUMMARY, t4, "spikes_per_synapse",
                           ".3g")
    spike_rate = src.cite("SNN T=4 w4: mean firing rate [%]", SUMMARY, t4,
                          "mean_firing_rate_pct", ".3g")
    below, (t_lo, t_hi) = YAN[1:]
    efficiency = per_target_table(src, "accuracy_pct_per_uj", "accuracy per energy", ".3g")
    return "\n\n".join([
        "= Efficiency analysis",
        "Energy is modelled, not measured: each cost model turns the measured workload of a "
        "trained network (spikes, synaptic operations, dense MACs, neuron updates per layer and "
        "timestep) into energy per inference with its anchor's constants (@tab:energy). The "
        "FPGA appears at two operating points, both on an xc7z020 at 100 MHz with assumed "
        f"per-resource power: a common fixed rate of {rate} inferences/s, where static power "
        "dominates, and each network's highest throughput that fits the part (@tab:fpga). "
        "Either way energy per inference is static power over the rate plus the dynamic energy "
        "of the work. Loihi's is dynamic energy only.",
        f"#figure({table(header, per_target_table(src, 'energy_uj', 'energy [uJ]', '.3g'))}, "
        "caption: [Energy per inference [µJ], 4-bit weights, MNIST, mean over seeds (analytic, "
        "each target's default configuration; FPGA at 1,000/s and at its highest fitting "
        "rate).]) <tab:energy>",
        fpga_table(src), rtl_sentence(src),
        "Beside the starting study's efficiency score (@tab:start: accuracy per spike), "
        "@tab:efficiency divides the test accuracy by the modelled energy per inference.",
        f"#figure({table(header, efficiency)}, "
        "caption: [Test accuracy [%] per µJ per inference on each target (higher is better), "
        "4-bit weights, MNIST, means over seeds.]) <tab:efficiency>",
        figure("energy_vs_T", "Energy per inference vs T per target (FPGA at 1,000/s); the "
               "ANN twins dashed."),
        figure("break_even", "SNN / ANN energy vs spikes per synapse per inference; below 1 "
               "the SNN pays off. Shaded: the range where Dampfhoffer et al. find SNNs "
               f"competitive. Hatched: Yan et al.'s criterion, an average spike rate below "
               f"{below:g} % at T = {t_lo}-{t_hi}, mapped as spikes per synapse = rate "
               "#sym.times T (exact only if every neuron feeding a synapse fires at the "
               f"average rate; at T = 4 ours carry {per_synapse} spikes per synapse at a "
               f"{spike_rate} % mean rate, about "
               f"{float(per_synapse) / (float(spike_rate) / 100 * 4):.1f} #sym.times rate "
               "#sym.times T)."),
    ])


VALIDATED = [("imc dense", "SpikeSim's counting", "SpikeSim's VGG-9 case"),
             ("fpga analytic", "cycles per inference", "cycles per inference"),
             ("fpga FINN estimate", "cycles per inference", "cycles per inference, FINN"),
             ("fpga analytic", "LUTs", "LUTs"), ("fpga FINN estimate", "LUTs", "LUTs, FINN"),
             ("FINN estimate (FINN's design)", "LUTs", "LUTs of FINN's own example")]


def validation_figure(src: Sources) -> str:
    """@tab:validation: the errors of reports/hw_validation.csv (`make cost-check`)."""
    frame = pd.read_csv(ROOT / VALIDATION_CSV)
    rows = []
    for model, prefix, name in VALIDATED:
        compared = frame.loc[(frame["model"] == model)
                             & frame["compared"].str.startswith(prefix), "compared"].iloc[0]
        where = {"model": model, "compared": compared}
        rows.append([esc(model), esc(name), src.cite(f"validation: {model}, {name}: error",
                                                     VALIDATION_CSV, where, "error", "+.2g")])
    rows += [["loihi", "energy per inference", "no reference found"],
             ["digital", "add, multiply, SRAM read", "0 (a reproduction of the same table)"]]
    return (f"#figure({table(['model', 'compared', 'error (ours / reference - 1)'], rows)}, "
            "caption: [Cost models against external references (`make cost-check`).]) "
            "<tab:validation>")


def cheaper_timesteps(src: Sources, hw: str) -> list[int]:
    """The T at which the 4-bit SNN costs less energy on `hw` than the 4-bit ANN (ties,
    within hw_model.report.TIE, are not cheaper)."""
    ann = read_value(SUMMARY, src.row("ann", 1, 4, hw), "energy_uj")
    return [t for t in SNN_T
            if read_value(SUMMARY, src.row("snn", t, 4, hw), "energy_uj") < ann * (1 - TIE)]


def verdict_summary(src: Sources) -> str:
    """The verdicts in one sentence, for the abstract."""
    parts = []
    for hw, name in TARGETS:
        ts = cheaper_timesteps(src, hw)
        parts.append(f"{esc(name)} at " + (", ".join(f"T = {t}" for t in ts) if ts else "no T"))
    return "; ".join(parts)


def verdict_lines(src: Sources) -> list[str]:
    """Per target and configuration: the T at which the 4-bit SNN pays off."""
    lines = []
    summary = pd.read_csv(ROOT / SUMMARY)
    for hw, name in TARGETS:
        cheaper = cheaper_timesteps(src, hw)
        config = f"`{summary.loc[summary['hw'] == hw, 'config'].iloc[0]}`"
        if hw == FASTEST_FPGA:  # the label's rate is one network's: name the rule instead
            config = f"{config.rsplit('-', 1)[0]}`, each network at its highest fitting rate"
        lines.append(f"- *{esc(name)}* ({config}): " + (
            "the SNN pays off at " + ", ".join(f"T = {t}" for t in cheaper) if cheaper else
            "the SNN does not pay off at any T run"))
    return lines


def seeds_sentence() -> str:
    """How many seeds stand behind the accuracies: the fewest and most over summary.csv."""
    n = pd.read_csv(ROOT / SUMMARY)["n"]
    if n.min() == n.max():
        return f"Every accuracy above is the mean ± std over {n.min()} seeds (n beside each)."
    return f"The accuracies above rest on {n.min()} to {n.max()} seeds each (n beside each)."


def build(study: Path = STUDY_DIR) -> Sources:
    """Write paper.typ and paper.pdf into `study`; return the cited numbers."""
    import typst

    src = Sources()
    spec = ["spec"]
    beta = src.cite("network: beta", SEED_SPEC, [*spec, "beta"], None, "g")
    threshold = src.cite("network: threshold", SEED_SPEC, [*spec, "threshold"], None, "g")
    epochs = src.cite("training: epochs", SEED_SPEC, ["train_config", "epochs"], None, ".0f")
    val = src.cite("training: validation images", SEED_SPEC, ["data", "val_images"], None, ",.0f")
    cycles = src.cite("RTL: simulated cycles per inference", f"{RTL}/rtlsim_20images.json",
                      ["cycles_per_inference"], None, ",.0f")
    luts = src.cite("RTL: yosys LUTs of the estimated layers", f"{RTL}/synth.json",
                    ["totals", "estimated_layers", "lut"], None, ",.0f")
    finn_luts = src.cite("RTL: FINN's LUT estimate", f"{RTL}/synth.json",
                         ["totals", "estimated_layers", "lut_estimate"], None, ",.0f")
    t4 = pm(src, "SNN T=4 w4", src.row("snn", 4, 4), " %")
    ann = pm(src, "ANN w4", src.row("ann", 1, 4), " %")
    t1 = pm(src, "SNN T=1 w4", src.row("snn", 1, 4), " %")
    sections = [
        include("preamble"),
        "#align(center)[#text(14pt, weight: \"bold\")[Quantized spiking CNNs per timestep: "
        "accuracy, activity and modelled hardware cost on MNIST] \\ \\ "
        "#text(10pt)[qsnn project, generated by `make paper` from its committed results]]",
        f"*Abstract.* We train quantized spiking CNNs (4-bit weights, 8-bit fixed-point "
        f"membranes, leaky integrate-and-fire neurons) on MNIST at T = 1, 2, 4 and 10 with "
        f"model selection on a validation split and several seeds, and cost every trained "
        f"network on four hardware models. At T = 4 the SNN reaches {t4} test accuracy, "
        f"against {ann} for its 4-bit ANN twin; at T = 1 it reaches {t1}. Whether the "
        "SNN pays off (less modelled energy per inference than the ANN) depends on the "
        f"hardware: {verdict_summary(src)}. The FPGA design was simulated and synthesized as "
        "RTL, so its cycle counts are measured; energies are modelled.",
        include("introduction"),
        "= Method and architecture",
        f"The network is conv32 - maxpool - conv64 - maxpool - fc256 - fc10 with a LIF neuron "
        f"after each hidden layer (leak beta = {beta}, threshold {threshold}, subtractive reset, "
        "8-bit fixed-point membrane), 4-bit Brevitas weights, the 8-bit image as a direct "
        "input current (conv1 computed once per image) and the readout averaged over T. "
        f"Training: {epochs} epochs of Adam with a cosine schedule and ±2 px shifts, surrogate "
        f"gradients, the checkpoint with the best accuracy on {val} held-out training images, "
        "then one pass over the test set. The trained networks export through QONNX to a FINN "
        "hardware graph in which every layer, the LIF neuron included, is a FINN layer. Its RTL "
        f"design, simulated with Verilator, takes {cycles} cycles per inference (T = 4, "
        "xczu7ev at 250 MHz), as FINN's estimate and our analytic model predict; yosys maps "
        f"its layers to {luts} LUTs, where FINN estimates {finn_luts} (@tab:validation).",
        include("cost_models"),
        accuracy_section(src),
        energy_section(src),
        include("measured_and_modelled"),
        validation_figure(src),
        "= Conclusion and open questions",
        "Where the 4-bit SNN costs less energy per inference than the 4-bit ANN (MNIST, each "
        "target's default configuration; the SNN's test accuracy at each T in @tab:start):",
        "\n".join(verdict_lines(src)),
        seeds_sentence() + " " + include("open_questions"),
        include("references"),
    ]
    sections.append(sources_section(src))
    text = "\n\n".join(sections) + "\n"
    write_text(study / "paper.typ", text)
    write_with(study / "paper.pdf", lambda tmp: Path(tmp).write_bytes(typst.compile(
        str(study / "paper.typ"), root=str(study), ignore_system_fonts=True,
        timestamp=newest_result())))
    return src


def newest_result() -> datetime:
    """The PDF's date: when its newest trial finished (the same inputs, the same bytes)."""
    finished = pd.read_csv(ROOT / TRIALS)["finished_utc"].dropna()
    return datetime.fromisoformat(max(finished))


def include(part: str) -> str:
    """A hand-written part of the paper: study/paper/<part>.typ, inlined (its set rules then
    hold for the whole document)."""
    return (PARTS / f"{part}.typ").read_text()


def sources_section(src: Sources) -> str:
    files = list(dict.fromkeys(e.file for e in src.entries))
    keys = {f: f"F{i + 1}" for i, f in enumerate(files)}
    rows = [[esc(e.text), keys[e.file], esc(locator(e))] for e in src.entries]
    legend = "; ".join(f"{keys[f]} = `{f}`" for f in files)
    return ("#set text(7pt)\n= Sources of the numbers\n\nEvery number above, in the order "
            f"printed, the committed file it is read from ({legend}) and the row or key "
            "(summary.csv rows: MNIST, 8-bit membrane, direct encoding, subtractive reset, and "
            "kind, T, weight bits and hardware as given).\n\n"
            + "#columns(2, gutter: 8pt)[#" + table(["printed", "file", "row / key : column"],
                                                   rows, inset="1.5pt") + "]")


def locator(e: Source) -> str:
    """The row or key of a Source, short: summary.csv rows by what differs from BASE."""
    if isinstance(e.where, list):
        return " / ".join(map(str, e.where))
    rest = [v for k, v in e.where.items() if BASE.get(k) != v]
    return " ".join(map(str, rest)) + f" : {e.column}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m study.paper", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study-dir", default=str(STUDY_DIR))
    args = p.parse_args(argv)
    src = build(Path(args.study_dir))
    print(f"paper: {Path(args.study_dir) / 'paper.pdf'} ({len(src.entries)} numbers cited)")


if __name__ == "__main__":
    run_cli(main)
