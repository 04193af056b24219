"""The study's figures (matplotlib, Agg, PNG), one question and one dataset each, drawn from its
aggregated tables at the page width of the paper (A4, 2 cm margins) with every text at the
body's size, so they print readable at 100 % width; legends sit below the panels, never on
the data. Lines: SNN configurations over T, error bars = std over seeds; the ANN (no T) as a
band (mean +- std over seeds) or a dashed line, in its weight width's colour."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from common.atomic import write_with
from hw_model.plots import pareto_front

VARIANT = ["dataset", "kind", "weight_bits", "state_bits", "encoding", "reset"]
FIRING = "firing_rate_pct_"
PAGE_WIDTH_IN = 6.7  # A4 (8.27 in) less 2 x 2 cm margins
FONT_PT = 10  # the paper's body text
PANEL_HEIGHT_IN = 2.3
LEGEND_ROW_IN = 0.22
BITS_COLOUR = {2: "tab:orange", 4: "tab:blue", 8: "tab:red", 32: "tab:gray"}
MARKERS = "osD^v"
matplotlib.rcParams.update({key: FONT_PT for key in (
    "font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "ytick.labelsize",
    "legend.fontsize", "figure.titlesize")})


def variant_label(row) -> str:
    """A line's legend label, e.g. 'SNN w4 s8 direct subtract' or 'ANN w4'."""
    if row["kind"] == "ann":
        return f"ANN w{row['weight_bits']}"
    return f"SNN w{row['weight_bits']} s{row['state_bits']} {row['encoding']} {row['reset']}"


def _style(row, index: int) -> dict:
    return {"color": BITS_COLOUR.get(int(row["weight_bits"]), "black"),
            "marker": MARKERS[index % len(MARKERS)]}


def _grid(names: list[str], columns: int = 3):
    """Panels in rows of `columns` at page width; unused cells hidden."""
    columns = min(columns, len(names))
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(PAGE_WIDTH_IN, rows * PANEL_HEIGHT_IN),
                             squeeze=False)
    cells = list(axes.flat)
    for ax in cells[len(names):]:
        ax.set_visible(False)
    return fig, dict(zip(names, cells, strict=False))


def _save(fig, path: Path) -> None:
    """One legend for all panels, below them, then the file (atomically)."""
    handles, labels = {}, []
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    legend_rows = math.ceil(len(labels) / 2)
    height = fig.get_figheight()
    fig.set_figheight(height + legend_rows * LEGEND_ROW_IN + 0.1)
    bottom = (legend_rows * LEGEND_ROW_IN + 0.1) / fig.get_figheight()
    if labels:
        fig.legend([handles[label] for label in labels], labels, loc="lower center", ncol=2,
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, bottom, 1, 1), pad=0.3, h_pad=1.0)
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=200, format="png"))
    plt.close(fig)


def _scale(ax, axis: str, values, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """Log scale with plain tick labels (at `subs` per decade) when the values span a decade."""
    values = pd.Series(values, dtype=float).dropna()
    values = values[values > 0]
    if values.empty or values.max() < 10 * values.min():
        return
    getattr(ax, f"set_{axis}scale")("log")
    target = getattr(ax, f"{axis}axis")
    target.set_major_locator(LogLocator(subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def _t_axis(ax, timesteps) -> None:
    """T axis ticked at the T values run, log-scaled when they span a decade."""
    ticks = sorted({int(t) for t in timesteps})
    _scale(ax, "x", ticks)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _lines_vs_t(ax, frame: pd.DataFrame, column: str, ann_band: bool = False) -> None:
    """SNN variants as lines over T with std error bars; each ANN as a dashed line (or a band
    of mean +- std) in its bit width's colour; the value axis log-scaled over a decade."""
    for index, (_, group) in enumerate(frame[frame["kind"] == "snn"].groupby(VARIANT)):
        group = group.sort_values("timesteps")
        ax.errorbar(group["timesteps"], group[column], yerr=group[f"{column}_std"].fillna(0),
                    capsize=3, label=variant_label(group.iloc[0]), **_style(group.iloc[0], index))
    for _, ann in frame[frame["kind"] == "ann"].iterrows():
        colour = _style(ann, 0)["color"]
        ax.axhline(ann[column], ls="--", color=colour, label=f"{variant_label(ann)} (no T)")
        spread = ann.get(f"{column}_std")
        if ann_band and pd.notna(spread):
            ax.axhspan(ann[column] - spread, ann[column] + spread, color=colour, alpha=0.15)
    snn = frame.loc[frame["kind"] == "snn", "timesteps"]
    if not snn.empty:
        _t_axis(ax, snn)
    _scale(ax, "y", frame[column])


def accuracy_vs_timesteps(configs: pd.DataFrame, path: Path) -> None:
    """Test accuracy vs T per bit width, the ANN twin as a band of mean +- std over seeds."""
    fig, axes = _grid(["accuracy"], columns=1)
    ax = axes["accuracy"]
    _lines_vs_t(ax, configs, "test_accuracy_pct", ann_band=True)
    ax.set(xlabel="timesteps T", ylabel="test accuracy [%]")
    _save(fig, path)


def cost_vs_timesteps(summary: pd.DataFrame, column: str, label: str, path: Path) -> None:
    """`column` (energy_uj or latency_us) vs T, one panel per hardware, ANN dashed."""
    hws = list(summary.sort_values("hw")["hw"].unique())
    fig, axes = _grid(hws)
    for hw, ax in axes.items():
        _lines_vs_t(ax, summary[summary["hw"] == hw], column)
        ax.set(title=hw, xlabel="T", ylabel=label if hw == hws[0] else None)
    _save(fig, path)


def pareto(summary: pd.DataFrame, path: Path) -> None:
    """Mean accuracy vs mean energy per configuration, per hardware, with the Pareto front."""
    hws = list(summary.sort_values("hw")["hw"].unique())
    fig, axes = _grid(hws)
    for hw, ax in axes.items():
        rows = summary[summary["hw"] == hw]
        for kind, group in rows.groupby("kind"):
            ax.scatter(group["energy_uj"], group["test_accuracy_pct"], s=14,
                       c=[_style(r, 0)["color"] for _, r in group.iterrows()],
                       marker="o" if kind == "snn" else "s", label=f"{kind.upper()} (colour: "
                       "weight bits)")
        front = pareto_front(rows, "energy_uj", "test_accuracy_pct")
        ax.step(front["energy_uj"], front["test_accuracy_pct"], where="post", color="black",
                lw=1, label="Pareto front")
        ax.set(title=hw, xlabel="energy [uJ]",
               ylabel="test accuracy [%]" if hw == hws[0] else None)
        _scale(ax, "x", rows["energy_uj"])
    _save(fig, path)


def firing_rate_vs_timesteps(configs: pd.DataFrame, layers: list[str], path: Path) -> None:
    """Spikes per neuron per timestep of each LIF layer, and of all LIF neurons, vs T."""
    panels = {column[len(FIRING):]: column for column in layers}
    panels["all LIF neurons"] = "mean_firing_rate_pct"
    fig, axes = _grid(list(panels), columns=2)
    snn = configs[configs["kind"] == "snn"]
    for name, ax in axes.items():
        _lines_vs_t(ax, snn, panels[name])
        ax.set(title=name, xlabel="T", ylabel="firing rate [%]")
    _save(fig, path)


def yan_band(below_pct: float, timesteps: tuple[int, int]) -> tuple[float, float]:
    """Yan et al.'s criterion, an average spike rate below `below_pct` % per neuron per
    timestep at T in `timesteps`, on the spikes-per-synapse axis: a synapse carries the spikes
    of its input neuron, rate x T per inference, so (rate T_low, rate T_high). Exact where
    every neuron feeding a synapse fires at the average rate; not where the rate differs
    between layers."""
    return below_pct / 100 * timesteps[0], below_pct / 100 * timesteps[1]


def break_even(be: pd.DataFrame, band: tuple[float, float],
               yan: tuple[float, tuple[int, int]], path: Path) -> None:
    """SNN/ANN energy (same weight bits) vs spikes per synapse, per hardware, with the published
    break-evens: Dampfhoffer et al. 2023's range shaded, Yan et al. 2024's spike rate mapped
    onto the axis by yan_band (hatched)."""
    hws = list(be.sort_values("hw")["hw"].unique()) or ["no SNN configuration"]
    fig, axes = _grid(hws)
    below, timesteps = yan
    yan_x = yan_band(below, timesteps)
    for hw, ax in axes.items():
        rows = be[(be["hw"] == hw) & be["snn_over_ann_energy"].notna()]
        for index, (_, group) in enumerate(rows.groupby(VARIANT)):
            group = group.sort_values("spikes_per_synapse")
            ax.plot(group["spikes_per_synapse"], group["snn_over_ann_energy"], "-",
                    label=variant_label(group.iloc[0]), **_style(group.iloc[0], index))
        ax.axhline(1.0, color="black", lw=1, ls="--", label="break-even (ratio 1)")
        ax.axvspan(*band, color="tab:green", alpha=0.12,
                   label=f"Dampfhoffer et al. 2023: {band[0]}-{band[1]} spikes/synapse")
        ax.axvspan(*yan_x, facecolor="none", edgecolor="tab:purple", hatch="//", lw=0.8,
                   label=f"Yan et al. 2024: {below:g} % rate x T ({timesteps[0]}-"
                         f"{timesteps[1]}) = {yan_x[0]:g}-{yan_x[1]:g}")
        ax.set(title=hw, xlabel="spikes / synapse",
               ylabel="SNN / ANN energy" if hw == hws[0] else None)
        _scale(ax, "x", [*rows["spikes_per_synapse"], *band, *yan_x], subs=(1.0,))
        _scale(ax, "y", [*rows["snn_over_ann_energy"], 1.0])
    _save(fig, path)
