"""The timestep x bit-width study's report (`make study-report`, `python -m study.report`).

    python -m study.report [--study-dir reports/study]

Reads only the committed trial folders, <study-dir>/runs/<name>/ (study/results.py), and writes
to <study-dir>: README.md, trials.csv (one row per trial), summary.csv (per configuration and
hardware, mean and std over seeds), report.json and PNG plots. Accuracy and the workload counts
(spikes, synaptic operations, firing rates) are measured: each trial's metrics.json and
profile.json. Energy, latency and FPGA resources are recomputed from profile.json with hw_model
at each target's default configuration.
"""
from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from common.atomic import write_json, write_text, write_with
from common.errors import UserError, run_cli
from hw_model import fpga
from hw_model.constants import Table
from hw_model.estimate import estimate
from hw_model.plots import pareto_front
from hw_model.report import TIE, assumption_lines
from hw_model.targets import ESTIMATORS, TARGETS, load_target_table, target_configs
from hw_model.workload import Workload, load_workloads
from quant_training.config import TrainConfig
from study import plots
from study.results import STUDY_DIR, Trial, load_trials

KEYS = ["dataset", "kind", "timesteps", "weight_bits", "state_bits", "encoding", "reset"]
MEASURES = ["test_accuracy_pct", "val_accuracy_pct", "spikes_per_image", "synops_per_image",
            "dense_macs_per_image", "spikes_per_synapse", "mean_firing_rate_pct"]
COST_MEASURES = ["energy_uj", "latency_us", "single_inference_energy_uj", "area_mm2", "lut",
                 "bram18", "dsp", "rate_per_s", "fits_part"]
FASTEST_HW = "fpga max rate"  # the FPGA at the highest throughput that fits (cost_table)
FIRING = "firing_rate_pct_"  # + layer name: a LIF layer's spikes / (neurons x T), in %
ORIGINAL = Path(__file__).with_name("original_study.toml")
PREFERRED_BITS = 4  # the weight width compared with the starting study when it was run
CLOSE_PP = 0.2  # accuracy band of the recommendations, percentage points
DATASET_TITLES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}  # recommendation headings
DAMPFHOFFER = ("Dampfhoffer et al., IEEE TETCI 2023 (\"Are SNNs really more energy-efficient "
               "than ANNs? An in-depth hardware-aware study\")", 0.15, 1.38)
YAN = ("Yan et al. 2024 (\"Reconsidering the energy efficiency of spiking neural networks\", "
       "arXiv:2409.08290)", 6.0, (5, 10))
SOURCES = ("Accuracy: measured (metrics.json of each trial folder); spikes, synaptic operations "
           "and firing rates: measured test-set means per image (profile.json); energy, latency "
           "and FPGA resources: analytic, from profile.json, estimator per hardware in the "
           "Estimators table; `grid(s)`: the grid(s) whose trials make each row.")
FPGA_POINTS = ("Two FPGA operating points, each with the least-energy folding on the default "
               "part and clock: `fpga <R>/s`, the common fixed rate R of the "
               "default configuration, and `fpga max rate`, each network's highest throughput "
               "whose design fits the part's LUTs and BRAM18s (hw_model.fpga.fastest_fitting; "
               "R = that design's sustained rate, in `rate_per_s`); no row where no design fits "
               "at any rate. Energy per inference at R = static power / R + the dynamic energy "
               "of the work (hw_model.fpga.evaluate). Analytic: no RTL simulation or synthesis "
               "exists at these points.")
PLOTS = ("accuracy_vs_T", "energy_vs_T", "latency_vs_T", "pareto", "firing_rate_vs_T",
         "break_even")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m study.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study-dir", default=str(STUDY_DIR), help="the study folder (runs/ inside)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    study = Path(args.study_dir)
    if not study.is_dir():
        raise UserError(f"study folder {study} does not exist; run `make study` first")
    trials = load_trials(study)
    reasons = {t.name: exclusion(t) for t in trials}
    kept = [t for t in trials if reasons[t.name] is None]
    command = f"python -m study.report --study-dir {args.study_dir}"
    if not kept:
        write_text(study / "README.md", empty_readme(command, trials, reasons))
        print(f"report: {study / 'README.md'} (no eligible trials)", file=sys.stderr)
        return
    workloads = load_workloads([t.profile_path for t in trials])
    pairs = list(zip(trials, workloads, strict=True))
    rows = pd.DataFrame([trial_row(t, w, reasons[t.name]) for t, w in pairs])
    costs = cost_table([(t.name, w) for t, w in pairs if reasons[t.name] is None])
    write_outputs(study, command, rows, costs)
    print(f"report: {study / 'README.md'}", file=sys.stderr)


RECIPE = ("schedule", "shift_px")  # TrainConfig fields of the training recipe


def exclusion(trial: Trial) -> str | None:
    """Why a trial does not count in the main tables, or None: trained on a subset of the
    training set, or a recipe check (a recipe other than the default: its own table)."""
    config = trial.metrics["train_config"]
    if config.get("limit") is not None:
        return (f"trained on the first {config['limit']} training images only "
                f"(grid {trial.trial['grid']})")
    if recipe(config) != recipe(TrainConfig().to_dict()):
        return "recipe check (see Training recipe)"
    return None


def recipe(train_config: dict) -> str:
    """The training recipe as text, e.g. 'cosine, shift 2 px'."""
    return f"{train_config.get('schedule')}, shift {train_config.get('shift_px')} px"


def trial_row(trial: Trial, w: Workload, reason: str | None) -> dict:
    """One trial: configuration, provenance, measured accuracy and per-image workload counts.

    spikes_per_synapse = synaptic operations per inference / connections of the layers fed by
    spikes (profile `connections`: input element -> output neuron pairs of the unrolled layer,
    i.e. the MACs an ANN computes there): the mean number of spikes crossing each synapse.
    """
    spec, config, data = (trial.metrics[k] for k in ("spec", "train_config", "data"))
    lif, fed = w.layer["is_lif"], w.layer["binary_input"]
    spikes = np.bincount(w.layer_of_row, weights=w.step["output_events"],
                         minlength=len(w.layer_names))
    synops = float(w.step["synops"].sum())
    opportunities = w.layer["neurons"] * w.timesteps
    row = {"trial": trial.name, "grid": trial.trial["grid"], "included": reason is None,
           "excluded_because": reason or "", "recipe": recipe(config),
           "dataset": config["dataset"],
           **{k: spec[k] for k in KEYS[1:]}, "seed": config["seed"], "limit": config.get("limit"),
           "train_images": data["train_images"], "val_images": data["val_images"],
           "test_images": data["test_images"],
           **{k: trial.metrics[k] for k in ("test_accuracy_pct", "val_accuracy_pct", "best_epoch",
                                            "epochs_completed", "train_wall_time_s")},
           "spikes_per_image": float(spikes[lif].sum()) if lif.any() else np.nan,
           "synops_per_image": synops,
           "dense_macs_per_image": float(w.step["dense_macs"].sum()),
           "spikes_per_synapse": (synops / w.layer["connections"][fed].sum() if fed.any()
                                  else np.nan),
           "mean_firing_rate_pct": (100 * spikes[lif].sum() / opportunities[lif].sum()
                                    if lif.any() else np.nan),
           "device": trial.trial.get("device"), "host": trial.trial.get("host"),
           "finished_utc": trial.trial.get("finished_utc"), "folder": str(trial.folder)}
    names = np.array(w.layer_names)[lif]
    for name, count, n in zip(names, spikes[lif], opportunities[lif], strict=True):
        row[FIRING + name] = 100 * count / n
    return row


def hw_name(target: str, config) -> str:
    """The hardware a cost row belongs to: the target, for IMC its activity mode and for the
    FPGA its fixed rate (e.g. 'fpga 1000/s')."""
    if target == "fpga":
        return f"fpga {config.target_fps:g}/s"
    if target != "imc":
        return target
    return f"imc {config.mode}" + (" (optimistic)" if config.mode == "event" else "")


def cost_table(trials: list[tuple[str, Workload]]) -> pd.DataFrame:
    """Per trial and hardware: hw_model's summary row at the target's default configuration,
    energy per inference in uJ (FPGA: at its configuration's fixed rate), latency per
    inference in us; and the FPGA at the highest throughput that fits the default part
    (FASTEST_HW, fastest_fpga), with its rate [inferences/s] and whether it fits the part."""
    tables = {t: load_target_table(t) for t in TARGETS}
    configs = {t: target_configs(t, tables[t], sweep=False) for t in TARGETS}
    hw = {c.label(): hw_name(t, c) for t in TARGETS for c in configs[t]}
    names = list(dict.fromkeys(hw.values()))
    names.insert(names.index(hw_name("fpga", configs["fpga"][0])) + 1, FASTEST_HW)
    frames = []
    for name, w in trials:
        fastest = fastest_fpga(w, tables["fpga"])
        rows = estimate([w], list(TARGETS), tables,
                        configs | {"fpga": [*configs["fpga"], *fastest]})[0]
        frames.append(rows.assign(trial=name, hw=rows["config"].map(
            hw | {c.label(): FASTEST_HW for c in fastest})))
    rows = pd.concat(frames, ignore_index=True)
    return pd.DataFrame({
        "trial": rows["trial"], "target": rows["target"],
        "hw": pd.Categorical(rows["hw"], categories=names, ordered=True),
        "config": rows["config"], "estimator": rows["estimator"],
        "energy_uj": rows["energy_pj"] * 1e-6, "latency_us": rows["latency_ns"] * 1e-3,
        "single_inference_energy_uj": rows["single_inference_energy_pj"] * 1e-6,
        **{k: rows[k] for k in ("area_mm2", "lut", "bram18", "dsp")},
        "rate_per_s": rows["rate_inferences_per_s"], "fits_part": rows["fits_part"].astype(float)})


def fastest_fpga(w: Workload, table: Table) -> list[fpga.Config]:
    """The FPGA's default part and clock at the highest throughput that fits the part
    (hw_model.fpga.fastest_fitting), or none when no design fits at any rate."""
    default = fpga.default_configs(table)[0]
    config = fpga.fastest_fitting(w, default.part, default.clock_mhz, table)
    return [] if config is None else [config]


def aggregate(frame: pd.DataFrame, by: list[str], columns: list[str]) -> pd.DataFrame:
    """Per `by` group: each column's mean, its std over the group's trials (`<column>_std`,
    NaN for one trial), n (trials) and the grids and trials behind the group."""
    groups = frame.groupby(by, sort=True, observed=True)
    out = groups[columns].mean().join(groups[columns].std().add_suffix("_std"))
    out["n"] = groups.size()
    out["grids"] = groups["grid"].agg(_joined)
    out["trials"] = groups["trial"].agg(_joined)
    return out.reset_index()


def _joined(values) -> str:
    """The sorted union of comma-joined names (grids, trials)."""
    return ", ".join(sorted({name for text in values for name in str(text).split(", ")}))


def break_even_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per SNN configuration and hardware: its energy over that of the ANN with the same dataset
    and weight bits (mean over the ANN's configurations), beside its activity."""
    ann = summary[summary["kind"] == "ann"].groupby(
        ["dataset", "weight_bits", "hw"], observed=True).agg(
        ann_energy_uj=("energy_uj", "mean"), ann_accuracy_pct=("test_accuracy_pct", "mean"),
        ann_grids=("grids", _joined))
    snn = summary[summary["kind"] == "snn"].join(ann, on=["dataset", "weight_bits", "hw"])
    return snn.assign(snn_over_ann_energy=snn["energy_uj"] / snn["ann_energy_uj"])


def pareto_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and hardware: the configurations no other beats in both mean test accuracy
    and mean energy per inference."""
    return pd.concat([pareto_front(group, "energy_uj", "test_accuracy_pct")
                      for _, group in summary.groupby(["dataset", "hw"], observed=True)])


def write_outputs(study: Path, command: str, rows: pd.DataFrame, costs: pd.DataFrame) -> None:
    """Aggregate, then write the CSVs, report.json, the plots and README.md."""
    kept = rows[rows["included"]]
    firing = [c for c in rows.columns if c.startswith(FIRING)]
    configs = aggregate(kept, KEYS, MEASURES + firing)
    summary = aggregate(costs.merge(kept, on="trial"),
                        [*KEYS, "target", "hw", "config", "estimator"], MEASURES + COST_MEASURES)
    summary["accuracy_pct_per_uj"] = summary["test_accuracy_pct"] / summary["energy_uj"]
    be, front = break_even_table(summary), pareto_table(summary)
    recs = recommendations(summary, be)
    write_with(study / "trials.csv", lambda tmp: rows.to_csv(tmp, index=False))
    write_with(study / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    write_json(study / "report.json", {
        "command": command, "trials": kept["trial"].tolist(),
        "excluded": dict(zip(rows.loc[~rows["included"], "trial"],
                             rows.loc[~rows["included"], "excluded_because"], strict=True)),
        "original_study": original_study(), "published_break_even": {
            "dampfhoffer_spikes_per_synapse": {"source": DAMPFHOFFER[0], "range": DAMPFHOFFER[1:]},
            "yan_spike_rate_pct": {"source": YAN[0], "below": YAN[1], "timesteps": YAN[2]}},
        "fpga_operating_points": FPGA_POINTS,
        "targets": {t: {"estimator": ESTIMATORS[t], "as_the_anchor": TARGETS[t].ANCHOR,
                        "departures": [vars(d) for d in TARGETS[t].DEPARTURES]} for t in TARGETS},
        "summary": _records(summary), "break_even": _records(be), "pareto": _records(front),
        "recommendations": recs})
    plotted, be_plotted = (frame[frame["hw"] != FASTEST_HW] for frame in (summary, be))
    for dataset in datasets(configs):
        write_figures(study, dataset, configs[configs["dataset"] == dataset],
                      plotted[plotted["dataset"] == dataset],
                      be_plotted[be_plotted["dataset"] == dataset], firing, default_hw(summary))
    write_text(study / "README.md", readme(command, rows, configs, summary, be, front, recs))


def write_figures(study: Path, dataset: str, configs: pd.DataFrame, summary: pd.DataFrame,
                  be: pd.DataFrame, firing: list[str], latency_hw: list[str]) -> None:
    """One dataset's figures (PLOTS), each answering one question."""
    def path(name: str) -> Path:
        return study / figure_file(name, dataset)

    plots.accuracy_vs_timesteps(configs, path("accuracy_vs_T"))
    plots.cost_vs_timesteps(summary, "energy_uj", "energy per inference [uJ]",
                            path("energy_vs_T"))
    plots.cost_vs_timesteps(summary[summary["hw"].isin(latency_hw)], "latency_us",
                            "latency per inference [us]", path("latency_vs_T"))
    plots.pareto(summary, path("pareto"))
    plots.firing_rate_vs_timesteps(configs, firing, path("firing_rate_vs_T"))
    plots.break_even(be, DAMPFHOFFER[1:], YAN[1:], path("break_even"))


def datasets(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["dataset"].unique())


def main_first(configs: pd.DataFrame) -> list[str]:
    """The datasets, the one with the most configurations first (then by name)."""
    counts = configs["dataset"].value_counts()
    return sorted(counts.index, key=lambda d: (-counts[d], d))


def figure_file(name: str, dataset: str) -> str:
    """A figure's file: one per question (PLOTS) and dataset."""
    return f"{name}_{dataset}.png"


def figures_lines(configs: pd.DataFrame) -> list[str]:
    """The figures section: every plot (PLOTS) of each dataset, embedded."""
    lines = ["## Figures", "", "Accuracy vs T; energy and latency per inference vs T per "
             "hardware; the accuracy-energy Pareto front; firing rate per layer; SNN/ANN energy "
             "vs spikes per synapse against published break-evens. The FPGA panels are at the "
             "common fixed rate; its highest-throughput point is tabulated under FPGA operating "
             "points.", ""]
    for dataset in main_first(configs):
        lines += [f"### {DATASET_TITLES.get(dataset, dataset)}", "",
                  *(f"![{name} {dataset}]({figure_file(name, dataset)})" for name in PLOTS), ""]
    return lines


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def default_hw(summary: pd.DataFrame) -> list[str]:
    """Each target's first hardware: its default configuration (IMC: the event-array mode)."""
    return summary.sort_values("hw").drop_duplicates("target")["hw"].tolist()


def original_study() -> dict:
    """The starting study's numbers and their source (study/original_study.toml)."""
    return tomllib.loads(ORIGINAL.read_text())


# ---- recommendations and README ------------------------------------------------------------

def describe(row) -> str:
    """A configuration in words, e.g. 'SNN T=10, 4-bit weights, 8-bit state, direct encoding,
    subtract reset (mnist)'."""
    if row["kind"] == "ann":
        return f"ANN, {row['weight_bits']}-bit weights ({row['dataset']})"
    return (f"SNN T={row['timesteps']}, {row['weight_bits']}-bit weights, {row['state_bits']}-bit "
            f"state, {row['encoding']} encoding, {row['reset']} reset ({row['dataset']})")


def _pm(row) -> str:
    """Test accuracy of an aggregated row as 'mean ± std (n=k)'; the std only with two or more
    trials."""
    std = row["test_accuracy_pct_std"]
    spread = "" if pd.isna(std) else f" ± {std:.2f}"
    return f"{row['test_accuracy_pct']:.2f}{spread} (n={row['n']})"


def recommendations(summary: pd.DataFrame, be: pd.DataFrame) -> list[str]:
    """Per dataset (a heading each) and hardware: the lowest-energy (and, per target,
    lowest-latency) configuration within CLOSE_PP of the best mean accuracy, and the SNN
    closest to its ANN."""
    lines: list[str] = []
    defaults = default_hw(summary)
    for (dataset, hw), group in summary.groupby(["dataset", "hw"], observed=True):
        title = str(dataset)
        heading = f"### {DATASET_TITLES.get(title, title)}"
        if heading not in lines:
            lines += [heading, ""] if not lines else ["", heading, ""]
        lines.append(_within_best(group, "energy_uj", "energy", "uJ"))
        if hw in defaults:
            lines.append(_within_best(group, "latency_us", "latency", "us"))
        snn = be[(be["dataset"] == dataset) & (be["hw"] == hw)].dropna(
            subset=["snn_over_ann_energy"])
        if not snn.empty:
            lines.append(_versus_ann(snn.loc[snn["snn_over_ann_energy"].idxmin()]))
    return lines


def _within_best(group: pd.DataFrame, column: str, what: str, unit: str) -> str:
    best = group.loc[group["test_accuracy_pct"].idxmax()]
    close = group[group["test_accuracy_pct"] >= best["test_accuracy_pct"] - CLOSE_PP]
    cheapest = close[close[column] <= close[column].min() * (1 + TIE)]  # ties: most accurate
    pick = cheapest.loc[cheapest["test_accuracy_pct"].idxmax()]
    claim = (f"the most accurate configuration, {describe(pick)}, is also the lowest-{what} one "
             f"within {CLOSE_PP} percentage points of it" if pick.name == best.name else
             f"the lowest-{what} configuration within {CLOSE_PP} percentage points of the best "
             f"mean test accuracy ({describe(best)}: {_pm(best)} %) is {describe(pick)}")
    return (f"- **{pick['hw']}**: {claim}: {pick[column]:.4g} {unit} per inference at "
            f"{_pm(pick)} % (estimator: {pick['estimator']}; grid(s) {pick['grids']}).")


def _versus_ann(row) -> str:
    ratio = row["snn_over_ann_energy"]
    verdict = ("an SNN pays off in energy" if ratio < 1 - TIE else
               "no SNN configuration is cheaper than the ANN of equal weight bits")
    return (f"- **{row['hw']}**: {verdict}; the lowest SNN/ANN energy ratio is {ratio:.3g} "
            f"({describe(row)}: {row['energy_uj']:.4g} uJ at {_pm(row)} % vs the "
            f"{row['weight_bits']}-bit ANN's {row['ann_energy_uj']:.4g} uJ at "
            f"{row['ann_accuracy_pct']:.2f} %; grid(s) "
            f"{_joined([row['grids'], row['ann_grids']])}).")


def _table(records: list[dict], columns: list[str] | None = None) -> str:
    """A markdown table of formatted cells; a sentence when there is no row."""
    if not records:
        return "No eligible SNN configuration."
    frame = pd.DataFrame(records)
    frame = frame.reindex(columns=columns) if columns else frame
    return frame.fillna("").to_markdown(index=False, disable_numparse=True)


def _config_cells(row, with_t: bool = True) -> dict:
    ann = row["kind"] == "ann"
    cells = {"dataset": row["dataset"], "kind": row["kind"].upper(),
             "T": "-" if ann else str(row["timesteps"]), "weight bits": str(row["weight_bits"]),
             "state bits": "-" if ann else str(row["state_bits"]),
             "encoding": "-" if ann else row["encoding"], "reset": "-" if ann else row["reset"]}
    return cells if with_t else {k: v for k, v in cells.items() if k != "T"}


def _cost_cells(costs: pd.DataFrame) -> dict:
    """One configuration's summary rows: energy per hardware [uJ], latency per target at its
    default configuration [us], FPGA LUT and BRAM18."""
    costs = costs.sort_values("hw")
    cells = {f"energy [uJ] {r.hw}": f"{r.energy_uj:.4g}" for r in costs.itertuples()}
    cells |= {f"latency [us] {r.hw}": f"{r.latency_us:.4g}"
              for r in costs.drop_duplicates("target").itertuples()}
    fpga = costs[costs["target"] == "fpga"].iloc[0]
    return cells | {"FPGA LUT": f"{fpga['lut']:,.0f}", "FPGA BRAM18": f"{fpga['bram18']:,.0f}"}


def short_name(row, brief: bool = False) -> str:
    """A configuration in a few characters, e.g. 'SNN T=4 w4 s8 direct subtract' ('SNN T=4 w4'
    if `brief`), 'ANN w4'."""
    if row["kind"] == "ann":
        return f"ANN w{row['weight_bits']}"
    name = f"SNN T={row['timesteps']} w{row['weight_bits']}"
    return name if brief else f"{name} {_variant(row)}"


def _variant(row) -> str:
    """An SNN's state bits, encoding and reset, e.g. 's8 direct subtract'."""
    return f"s{row['state_bits']} {row['encoding']} {row['reset']}"


def summary_lines(configs: pd.DataFrame, summary: pd.DataFrame, be: pd.DataFrame) -> list[str]:
    """The one-screen summary, per dataset: the best SNN accuracy per T, the ANN twins, where
    the SNN costs less energy than its ANN per hardware, the FPGA's two operating points and
    the best accuracy per energy per hardware (all from the tables below)."""
    lines = ["## Summary", "", "Test accuracy [%] as mean ± std over n seeds (measured); energy "
             "per inference analytic, each target's default configuration (FPGA: its default "
             "part at the common fixed rate and at its highest throughput that fits; SNN/ANN "
             "at `fpga max rate` sets each network at its own rate).", ""]
    for dataset in main_first(configs):
        here = configs[configs["dataset"] == dataset]
        costs, ratios = (f[f["dataset"] == dataset] for f in (summary, be))
        lines += [f"**{DATASET_TITLES.get(dataset, dataset)}**", "", _best_per_t(here),
                  _ann_twins(here), *_pays_off(ratios), _fpga_points(costs),
                  _best_efficiency(costs), ""]
    return lines


def _best_per_t(configs: pd.DataFrame) -> str:
    snn = configs[configs["kind"] == "snn"]
    best = [group.loc[group["test_accuracy_pct"].idxmax()]
            for _, group in snn.groupby("timesteps")]
    return "- Best SNN per T: " + ("; ".join(
        f"T={r['timesteps']} {_pm(r)}, w{r['weight_bits']} {_variant(r)}" for r in best)
        or "no SNN") + "."


def _ann_twins(configs: pd.DataFrame) -> str:
    ann = configs[configs["kind"] == "ann"].sort_values("weight_bits")
    return "- ANN twins: " + ("; ".join(f"w{r['weight_bits']} {_pm(r)}"
                                       for _, r in ann.iterrows()) or "none run") + "."


def _pays_off(be: pd.DataFrame) -> list[str]:
    """Per hardware, the SNN configurations with less energy than the ANN of equal weight bits
    (ties within TIE are not less) and the lowest SNN/ANN ratio."""
    rated = be.dropna(subset=["snn_over_ann_energy"])
    if rated.empty:
        return ["- SNN vs ANN energy: no ANN with the weight bits of any SNN."]
    lines = ["- Where the SNN costs less energy per inference than the ANN of equal weight bits:"]
    for hw, group in rated.groupby("hw", observed=True):
        cheap = group[group["snn_over_ann_energy"] < 1 - TIE].sort_values(
            ["weight_bits", "timesteps"])
        low = group.loc[group["snn_over_ann_energy"].idxmin()]
        where = ", ".join(f"T={r.timesteps} w{r.weight_bits}" for r in cheap.itertuples())
        lines.append(f"  - {hw}: {where or 'nowhere'} (lowest SNN/ANN "
                     f"{low['snn_over_ann_energy']:.3g}, T={low['timesteps']} "
                     f"w{low['weight_bits']})")
    return lines


def _fpga_points(summary: pd.DataFrame) -> str:
    """The FPGA at its highest fitting throughput against the common fixed rate, for the
    configurations with PREFERRED_BITS weights (every one if none has them)."""
    fixed = summary[summary["target"] == "fpga"].sort_values("hw").drop_duplicates(KEYS)
    fastest = summary[summary["hw"] == FASTEST_HW].set_index(KEYS)
    if (fixed["weight_bits"] == PREFERRED_BITS).any():
        fixed = fixed[fixed["weight_bits"] == PREFERRED_BITS]
    cells = []
    for _, r in fixed.sort_values(["kind", "timesteps"], ascending=[False, True]).iterrows():
        key = tuple(r[KEYS])
        top = (f"{fastest.loc[key, 'rate_per_s']:,.0f}/s, {fastest.loc[key, 'energy_uj']:.3g} "
               "uJ" if key in fastest.index else "no fit at any rate")
        cells.append(f"{short_name(r, brief=True)}: {top} ({r['energy_uj']:.3g} uJ at "
                     f"{r['rate_per_s']:,.0f}/s)")
    return ("- FPGA, highest throughput that fits the part and the energy per inference there "
            "(in parentheses: at the common fixed rate): " + "; ".join(cells) + ".")


def _best_efficiency(summary: pd.DataFrame) -> str:
    best = [group.loc[group["accuracy_pct_per_uj"].idxmax()]
            for _, group in summary.groupby("hw", observed=True)]
    return ("- Highest test accuracy per energy [% per uJ]: " + "; ".join(
        f"{r['hw']} {r['accuracy_pct_per_uj']:.3g} ({short_name(r, brief=True)})"
        for r in best) + ".")


def fpga_lines(configs: pd.DataFrame, costs_of: dict) -> list[str]:
    """The FPGA at its two operating points, per configuration."""
    records = []
    for _, r in configs.iterrows():
        costs = costs_of[tuple(r[KEYS])].set_index("hw")
        fixed = costs.loc[costs["target"] == "fpga"].iloc[0]
        cells = {"dataset": r["dataset"], "configuration": short_name(r),
                 "test accuracy [%]": _pm(r)}
        if FASTEST_HW in costs.index:
            top = costs.loc[FASTEST_HW]
            cells |= {"max rate [1/s]": f"{top['rate_per_s']:,.0f}",
                      "energy there [uJ]": f"{top['energy_uj']:.4g}",
                      "LUT there": f"{top['lut']:,.0f}", "BRAM18 there": f"{top['bram18']:,.0f}"}
        else:
            cells["max rate [1/s]"] = "no design fits at any rate"
        records.append(cells | {
            f"energy {fixed.name} [uJ]": f"{fixed['energy_uj']:.4g}",
            "LUT": f"{fixed['lut']:,.0f}", "BRAM18": f"{fixed['bram18']:,.0f}",
            "fits": "yes" if fixed["fits_part"] == 1 else "no", "grid(s)": r["grids"]})
    return ["## FPGA operating points", "",
            f"{FPGA_POINTS} Per configuration, means over its seeds (the design depends only on "
            "the network's shapes: equal for every seed).", "", _table(records), ""]


def efficiency_lines(configs: pd.DataFrame, costs_of: dict) -> list[str]:
    """Test accuracy per energy per inference, per hardware (the efficiency score's energy
    counterpart)."""
    records = [{"dataset": r["dataset"], "configuration": short_name(r),
                "test accuracy [%]": _pm(r)} | {
        f"{c.hw} [%/uJ]": f"{c.accuracy_pct_per_uj:.3g}"
        for c in costs_of[tuple(r[KEYS])].sort_values("hw").itertuples()}
        for _, r in configs.iterrows()]
    return ["## Accuracy per energy", "",
            "Mean test accuracy [%] / mean energy per inference [uJ] on each hardware at its "
            "default configuration (higher is better): the energy counterpart of the starting "
            "study's accuracy / spikes per image.", "", _table(records), ""]


TITLE_LINES = ["# Timestep x bit-width study", "",
               "Quantized spiking CNNs (QAT) and their ANN twin over timesteps T, weight and "
               "state bits: accuracy measured per trial, energy and latency per inference "
               "estimated from each trial's measured workload profile.", ""]


def readme(command: str, rows: pd.DataFrame, configs: pd.DataFrame, summary: pd.DataFrame,
           be: pd.DataFrame, front: pd.DataFrame, recs: list[str]) -> str:
    """README.md: the header and estimators, the study's sections in order, the files."""
    costs_of = dict(list(summary.groupby(KEYS)))
    lines = (TITLE_LINES + summary_lines(configs, summary, be) + figures_lines(configs)
             + header_lines(command, rows, configs, summary)
             + start_vs_ours_lines(configs, costs_of) + accuracy_lines(configs)
             + cost_lines(configs, costs_of) + fpga_lines(configs, costs_of)
             + efficiency_lines(configs, costs_of) + pareto_lines(front) + firing_lines(configs)
             + bits_lines(configs, costs_of) + break_even_lines(be, configs)
             + recipe_lines(rows)
             + ["## Recommendations", "", "Computed from the tables above (means over seeds; "
                "compare a difference with the std beside it):", "", *recs, "",
                "## What the models assume", "", *assumption_lines(list(TARGETS)),
                "## Files", "", "`trials.csv` (one row per trial, excluded ones included), "
                "`summary.csv` (per configuration and hardware: mean and `_std` over seeds, n, "
                "grids, trials), `report.json` (the same with sources and model assumptions), "
                "plots, one per question and dataset: " + ", ".join(
                    f"`{figure_file(name, '<dataset>')}`" for name in PLOTS) + "."])
    return "\n".join(lines) + "\n"


def recipe_lines(rows: pd.DataFrame) -> list[str]:
    """The recipe check: every configuration and seed trained with several recipes, their
    validation accuracy (what the recipe is chosen on) beside the test accuracy."""
    full = rows[rows["limit"].isna()]
    same = ["dataset", *KEYS[1:], "seed"]
    checked = full.groupby(same).filter(lambda g: g["recipe"].nunique() > 1)
    lines = ["## Training recipe", "",
             f"The default recipe is {recipe(TrainConfig().to_dict())} (quant_training/config.py), "
             "chosen on the validation split; the recipe check trains the same configuration and "
             "seed with the alternatives (the grids' last block). Accuracy in % (measured).", ""]
    if checked.empty:
        return [*lines, "No configuration has been trained with more than one recipe yet.", ""]
    table = checked.sort_values([*same, "val_accuracy_pct"], ascending=False)[
        [*same, "recipe", "epochs_completed", "val_accuracy_pct", "test_accuracy_pct", "grid"]]
    return [*lines, table.to_markdown(index=False, floatfmt=".2f"), ""]


def header_lines(command: str, rows: pd.DataFrame, configs: pd.DataFrame,
                 summary: pd.DataFrame) -> list[str]:
    kept, excluded = rows[rows["included"]], rows[~rows["included"]]
    seeds = sorted({configs["n"].min(), configs["n"].max()})
    hardware = summary.sort_values("hw").drop_duplicates("hw")
    return [
        "## Data and method", "",
        f"Regenerate with `make study-report` (`{command}`): it reads only the committed trial "
        "folders under `runs/`.", "",
        f"Rests on {len(kept)} trials ({len(configs)} configurations, "
        f"{' to '.join(map(str, seeds))} seed(s) each) from grid(s) {_joined(kept['grid'])}. "
        + ("Excluded from the main tables: " + "; ".join(
            f"`{r.trial}`: {r.excluded_because}" for r in excluded.itertuples()) + "."
           if len(excluded) else "Excluded: none."), "",
        "Accuracy selection: each trial keeps the checkpoint of the epoch with the best accuracy "
        f"on the validation split ({_joined(kept['val_images'])} images held out of the training "
        f"set) and evaluates it once on the test set ({_joined(kept['test_images'])} images); "
        "tables give the mean ± std over seeds (std with two or more) and n.", "", SOURCES, "",
        "## Estimators", "",
        _table([{"hardware": r.hw, "target": r.target,
                 "configuration": r.config if r.hw != FASTEST_HW else
                 f"{str(r.config).rsplit('-', 1)[0]}, per network its highest rate that fits",
                 "estimator": r.estimator} for r in hardware.itertuples()]), "",
        "IMC at SpikeSim's operating point in three activity modes: `event-array` (default: only "
        "the crossbar arrays follow the measured activity), `dense` (SpikeSim: every PE cycle of "
        "every timestep, blind to sparsity) and `event` (OPTIMISTIC: arrays, ADCs and periphery "
        "follow the activity). FPGA energy per inference is at the fixed rate of its "
        "configuration: static power / rate + the dynamic energy of the work (busy cycles x "
        "resources, ASSUMED power constants); static power x latency + the same dynamic energy, "
        "one inference through an idle pipeline, is `single_inference_energy_uj` in summary.csv. "
        "Latency columns use each target's default configuration; the FPGA's two operating "
        "points: FPGA operating points.", ""]


def start_vs_ours_lines(configs: pd.DataFrame, costs_of: dict) -> list[str]:
    original = original_study()
    theirs = {r["timesteps"]: r for r in original["rows"]}
    ours = configs[(configs["dataset"] == "mnist") & (configs["kind"] == "snn")]
    if (ours["weight_bits"] == PREFERRED_BITS).any():
        ours = ours[ours["weight_bits"] == PREFERRED_BITS]
    records: list[dict] = []
    for t in sorted(set(theirs) | set(ours["timesteps"])):
        start = {"T": str(t)} | ({
            "starting study: test accuracy [%]": f"{theirs[t]['test_accuracy_pct']:.2f}",
            "starting study: spikes/image": f"{theirs[t]['spikes_per_image']:,}"} if t in theirs
            else {"starting study: test accuracy [%]": "not in the study"})
        matches = ours[ours["timesteps"] == t]
        records += ([start | {"ours: configuration": "not run"}] if matches.empty else
                    [start | _ours_cells(r, costs_of) for _, r in matches.iterrows()])
    return ["## The starting study vs ours", "",
            f"The starting study ({original['source']}): {original['network']}. Ours: MNIST SNNs "
            f"with {PREFERRED_BITS}-bit weights where run (else every bit width), each trained at "
            "its own T, selected on the validation split. Its spikes per image are spike counts "
            "only; the synaptic operations are what those spikes cost (spikes x fan-out). "
            "`not run`: no eligible trial at that T.", "", _table(records), ""]


def _ours_cells(row, costs_of: dict) -> dict:
    """Our side of the starting-study table for one configuration."""
    return {"ours: configuration": (f"w{row['weight_bits']} s{row['state_bits']} "
                                    f"{row['encoding']} {row['reset']}"),
            "ours: test accuracy [%]": _pm(row),
            "ours: spikes/image": f"{row['spikes_per_image']:,.0f}",
            "ours: synaptic ops/image": f"{row['synops_per_image']:,.0f}",
            **_cost_cells(costs_of[tuple(row[KEYS])]), "grid(s)": row["grids"]}


def accuracy_lines(configs: pd.DataFrame) -> list[str]:
    variant = [k for k in KEYS if k != "timesteps"]
    ts = [f"T={t}" for t in sorted(configs.loc[configs["kind"] == "snn", "timesteps"].unique())]
    records = []
    for _, group in configs.groupby(variant):
        cells = _config_cells(group.iloc[0], with_t=False)
        cells |= {("ANN (no T)" if r["kind"] == "ann" else f"T={r['timesteps']}"): _pm(r)
                  for _, r in group.iterrows()}
        records.append(cells | {"grid(s)": _joined(group["grids"])})
    columns = list(_config_cells(configs.iloc[0], with_t=False)) + ts + ["ANN (no T)", "grid(s)"]
    return ["## Accuracy vs T", "", "Test accuracy [%], mean ± std over seeds (n), per weight "
            "and state bit width (measured, metrics.json).", "", _table(records, columns), ""]


def cost_lines(configs: pd.DataFrame, costs_of: dict) -> list[str]:
    records = [_config_cells(r) | {"test accuracy [%]": _pm(r)} | _cost_cells(
        costs_of[tuple(r[KEYS])]) | {"grid(s)": r["grids"]} for _, r in configs.iterrows()]
    return ["## Energy and latency per inference vs T", "",
            "Per configuration, means over its seeds: energy per inference [uJ] on each hardware "
            "(IMC mode named), latency per inference [us] per target, FPGA LUT and BRAM18 (the "
            "xc7z020 default). The ANN has no T: the plots draw it as a horizontal line per bit "
            "width.", "", _table(records), ""]


def pareto_lines(front: pd.DataFrame) -> list[str]:
    records = [{"hardware": r["hw"]} | _config_cells(r) | {
        "test accuracy [%]": _pm(r), "energy [uJ]": f"{r['energy_uj']:.4g}",
        "grid(s)": r["grids"]} for _, r in front.iterrows()]
    return ["## Accuracy-energy Pareto front", "",
            "Per hardware and dataset, the configurations that no other beats in both mean test "
            "accuracy and mean energy per inference (cheapest first).", "", _table(records), ""]


def firing_lines(configs: pd.DataFrame) -> list[str]:
    layers = [c for c in configs.columns if c.startswith(FIRING) and not c.endswith("_std")]
    snn = configs[configs["kind"] == "snn"]
    records = [_config_cells(r) | {f"{c[len(FIRING):]} [%]": f"{r[c]:.3g}" for c in layers} | {
        "all LIF neurons [%]": f"{r['mean_firing_rate_pct']:.3g}",
        "spikes/image": f"{r['spikes_per_image']:,.0f}", "grid(s)": r["grids"]}
        for _, r in snn.iterrows()]
    return ["## Firing rate per layer vs T", "",
            "Spikes per neuron per timestep of each LIF layer (named by its weight layer), in %, "
            "test-set means (profile.json), mean over seeds; `all LIF neurons` = all spikes / "
            "(all LIF neurons x T), which the large convolutional layers dominate.", "",
            _table(records), ""]


def bits_lines(configs: pd.DataFrame, costs_of: dict) -> list[str]:
    rest = [k for k in KEYS if k != "weight_bits"]
    groups = [g for _, g in configs.groupby(rest) if g["weight_bits"].nunique() > 1]
    records = [_config_cells(r) | {"test accuracy [%]": _pm(r)} | _cost_cells(
        costs_of[tuple(r[KEYS])]) | {"grid(s)": r["grids"]}
        for group in groups for _, r in group.iterrows()]
    body = _table(records) if records else (
        "No configuration was run at two or more weight bit widths with everything else equal.")
    return ["## 2 vs 4 vs 8 bits", "",
            "Configurations run at several weight bit widths with T, state bits, encoding and "
            "reset equal: accuracy (measured) and energy per inference per hardware (analytic).",
            "", body, ""]


def _energy_ratios(group: pd.DataFrame) -> dict[str, str]:
    """The SNN/ANN energy cells of a configuration's rows, one per hardware in name order:
    "no ANN" for NaN (no ANN to compare with)."""
    rows = group.sort_values("hw")
    return {f"SNN/ANN energy {hw}": "no ANN" if pd.isna(ratio) else f"{ratio:.3g}"
            for hw, ratio in zip(rows["hw"], rows["snn_over_ann_energy"], strict=True)}


def break_even_lines(be: pd.DataFrame, configs: pd.DataFrame) -> list[str]:
    records = []
    for _, group in be.groupby(KEYS):
        r = group.iloc[0]
        records.append(_config_cells(r) | {
            "spikes per synapse per inference": f"{r['spikes_per_synapse']:.3g}",
            "mean firing rate [%]": f"{r['mean_firing_rate_pct']:.3g}",
            **_energy_ratios(group),
            "ANN grid(s)": _joined(group["ann_grids"].dropna()) or "no ANN",
            "grid(s)": r["grids"]})
    return ["## SNN/ANN break-even", "",
            "Spikes per synapse per inference = synaptic operations per inference / synapses of "
            "the spike-fed layers, a synapse being one connection of the unrolled layer (input "
            "element -> output neuron: what an ANN computes as one MAC there; a convolution's "
            "shared weight counts once per position); measured (profile.json). Mean firing rate = "
            "spikes / (LIF neurons x T). SNN/ANN energy: energy per inference of the SNN over "
            "that of the ANN with the same dataset and weight bits, same hardware (analytic).",
            "", _table(records), "", "Where the break-even (SNN/ANN energy = 1) lies in our data:",
            "", *_where_lines(be), "", "Against published break-evens:", "",
            *_published_lines(configs[configs["kind"] == "snn"]), ""]


def _where_lines(be: pd.DataFrame) -> list[str]:
    lines = []
    for (dataset, bits, hw), group in be.dropna(subset=["snn_over_ann_energy"]).groupby(
            ["dataset", "weight_bits", "hw"], observed=True):
        cheap = group[group["snn_over_ann_energy"] < 1 - TIE]
        dear = group[group["snn_over_ann_energy"] >= 1 - TIE]
        head = (f"- {hw}, {dataset}, {bits}-bit weights (ANN {group['ann_energy_uj'].iloc[0]:.4g} "
                f"uJ): SNN cheaper at {_activity(cheap) or 'none'}; not cheaper at "
                f"{_activity(dear) or 'none'}")
        if cheap.empty or dear.empty:
            side = "below" if cheap.empty else "above"
            lines.append(f"{head}: the break-even lies {side} the measured range "
                         "of spikes per synapse, if anywhere.")
        elif cheap["spikes_per_synapse"].max() < dear["spikes_per_synapse"].min():
            lines.append(f"{head}: the break-even lies between "
                         f"{cheap['spikes_per_synapse'].max():.3g} and "
                         f"{dear['spikes_per_synapse'].min():.3g} spikes per synapse.")
        else:
            lines.append(f"{head}: no single threshold in spikes per synapse separates them.")
    return lines or ["- no ANN with the weight bits of any SNN configuration: no ratio."]


def _activity(group: pd.DataFrame) -> str:
    """Per configuration, e.g. 'T=1 s8 direct subtract (0.0296)': T, state bits, encoding,
    reset and spikes per synapse per inference (the weight bits are the caller's)."""
    return ", ".join(f"T={r.timesteps} s{r.state_bits} {r.encoding} {r.reset} "
                     f"({r.spikes_per_synapse:.3g})"
                     for r in group.sort_values("spikes_per_synapse").itertuples())


def _published_lines(snn: pd.DataFrame) -> list[str]:
    if snn.empty:
        return ["- no SNN configuration to compare."]
    source, low, high = DAMPFHOFFER
    per_synapse, rate = snn["spikes_per_synapse"], snn["mean_firing_rate_pct"]
    yan, below, (t_lo, t_hi) = YAN
    mid = snn[snn["timesteps"].between(t_lo, t_hi)]
    yan_low, yan_high = plots.yan_band(below, (t_lo, t_hi))
    return [
        f"- {source}: SNNs competitive only below about {low}-{high} spikes per synapse per "
        f"inference, depending on the hardware. Ours: {per_synapse.min():.3g} to "
        f"{per_synapse.max():.3g} over {len(snn)} SNN configuration(s); "
        f"{(per_synapse < low).sum()} below {low}, {(per_synapse < high).sum()} below {high}.",
        f"- {yan}: below about {below:g} % average spike rate at T {t_lo}..{t_hi} (on the "
        f"break-even figure as spikes per synapse = rate x T = {yan_low:g}-{yan_high:g}, exact "
        "only where every neuron feeding a synapse fires at the average rate). Ours (mean "
        f"firing rate): {rate.min():.3g} to {rate.max():.3g} %; " + (
            f"at T {t_lo}..{t_hi}, {(mid['mean_firing_rate_pct'] < below).sum()} of {len(mid)} "
            f"configuration(s) below {below:g} %." if len(mid) else
            f"no configuration at T {t_lo}..{t_hi}.")]


def empty_readme(command: str, trials: list[Trial], reasons: dict) -> str:
    """The README of a study with no eligible trial: says so, and lists the excluded ones."""
    found = (f"{len(trials)} finished trial folder(s) under `runs/`, none trained on the full "
             "training set" if trials else "no finished trial folder under `runs/`")
    lines = ["# Timestep x bit-width study", "", f"No eligible trials yet: {found}. Run "
             f"`make study`, then `make study-report` (`{command}`).", ""]
    lines += [f"- excluded `{name}`: {reason}" for name, reason in reasons.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    run_cli(main)
