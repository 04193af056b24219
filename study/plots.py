"""The study report's figures (matplotlib, Agg, PNG), drawn from its aggregated tables: one line
per configuration variant (dataset, kind, weight / state bits, encoding, reset) over T, error
bars = std over seeds, the ANN (no T) as a horizontal line per bit width."""
from __future__ import annotations

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


def variant_label(row) -> str:
    """A line's legend label, e.g. 'mnist SNN w4 s8 direct subtract' or 'mnist ANN w4'."""
    if row["kind"] == "ann":
        return f"{row['dataset']} ANN w{row['weight_bits']}"
    return (f"{row['dataset']} SNN w{row['weight_bits']} s{row['state_bits']} {row['encoding']} "
            f"{row['reset']}")


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def _panels(names: list[str], title: str):
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4.2), squeeze=False)
    fig.suptitle(title)
    return fig, dict(zip(names, axes[0], strict=True))


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _scale(ax, axis: str, values) -> None:
    """Log scale with plain tick labels (1, 2, 5 per decade) when the values span a decade."""
    values = pd.Series(values, dtype=float).dropna()
    values = values[values > 0]
    if values.empty or values.max() < 10 * values.min():
        return
    getattr(ax, f"set_{axis}scale")("log")
    target = getattr(ax, f"{axis}axis")
    target.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def _t_axis(ax, timesteps) -> None:
    """T axis ticked at the T values run, log-scaled when they span a decade."""
    ticks = sorted({int(t) for t in timesteps})
    _scale(ax, "x", ticks)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _lines_vs_t(ax, frame: pd.DataFrame, column: str) -> None:
    """SNN variants as lines over T with std error bars; each ANN as a dashed horizontal line;
    the value axis log-scaled when it spans a decade."""
    for _, group in frame[frame["kind"] == "snn"].groupby(VARIANT):
        group = group.sort_values("timesteps")
        ax.errorbar(group["timesteps"], group[column], yerr=group[f"{column}_std"].fillna(0),
                    marker="o", capsize=3, label=variant_label(group.iloc[0]))
    for _, ann in frame[frame["kind"] == "ann"].iterrows():
        ax.axhline(ann[column], ls="--", color="gray", label=f"{variant_label(ann)} (no T)")
    snn = frame.loc[frame["kind"] == "snn", "timesteps"]
    if not snn.empty:
        _t_axis(ax, snn)
    _scale(ax, "y", frame[column])
    _legend(ax)


def accuracy_vs_timesteps(configs: pd.DataFrame, path: Path) -> None:
    fig, axes = _panels(["accuracy"], "test accuracy vs timesteps (mean ± std over seeds)")
    ax = axes["accuracy"]
    _lines_vs_t(ax, configs, "test_accuracy_pct")
    ax.set(xlabel="timesteps T", ylabel="test accuracy [%]")
    _save(fig, path)


def cost_vs_timesteps(summary: pd.DataFrame, column: str, label: str, path: Path) -> None:
    """`column` (energy_uj or latency_us) vs T, one panel per hardware in `summary`."""
    hws = list(summary.sort_values("hw")["hw"].unique())
    fig, axes = _panels(hws, f"{label.split(' [')[0]} vs timesteps (analytic, default "
                             "configuration; ANN dashed)")
    for hw, ax in axes.items():
        _lines_vs_t(ax, summary[summary["hw"] == hw], column)
        ax.set(title=hw, xlabel="timesteps T", ylabel=label)
    _save(fig, path)


def pareto(summary: pd.DataFrame, path: Path) -> None:
    """Mean accuracy vs mean energy per configuration, per hardware, with the Pareto front."""
    hws = list(summary.sort_values("hw")["hw"].unique())
    fig, axes = _panels(hws, "test accuracy vs energy per inference (Pareto front per dataset)")
    for hw, ax in axes.items():
        rows = summary[summary["hw"] == hw]
        for kind, group in rows.groupby("kind"):
            ax.scatter(group["energy_uj"], group["test_accuracy_pct"], s=18,
                       marker="o" if kind == "snn" else "s", label=kind.upper())
            for _, r in group.iterrows():
                ax.annotate(f"T{r['timesteps']} w{r['weight_bits']}" if kind == "snn"
                            else f"w{r['weight_bits']}", (r["energy_uj"], r["test_accuracy_pct"]),
                            fontsize=6, xytext=(3, 2), textcoords="offset points")
        for dataset, group in rows.groupby("dataset"):
            front = pareto_front(group, "energy_uj", "test_accuracy_pct")
            ax.step(front["energy_uj"], front["test_accuracy_pct"], where="post", color="black",
                    lw=1, label=f"Pareto front {dataset}")
        ax.set(title=hw, xlabel="energy per inference [uJ]", ylabel="test accuracy [%]")
        _scale(ax, "x", rows["energy_uj"])
        _legend(ax)
    _save(fig, path)


def firing_rate_vs_timesteps(configs: pd.DataFrame, layers: list[str], path: Path) -> None:
    """Spikes per neuron per timestep of each LIF layer, and of all LIF neurons, vs T."""
    panels = {column[len(FIRING):]: column for column in layers}
    panels["all LIF neurons"] = "mean_firing_rate_pct"
    fig, axes = _panels(list(panels), "firing rate vs timesteps (measured, test set)")
    snn = configs[configs["kind"] == "snn"]
    for name, ax in axes.items():
        _lines_vs_t(ax, snn, panels[name])
        ax.set(title=name, xlabel="timesteps T", ylabel="spikes per neuron per timestep [%]")
    _save(fig, path)


def break_even(be: pd.DataFrame, band: tuple[float, float], path: Path) -> None:
    """SNN/ANN energy (same weight bits) vs spikes per synapse, per hardware, with the published
    break-even range (Dampfhoffer et al. 2023) shaded."""
    hws = list(be.sort_values("hw")["hw"].unique()) or ["no SNN configuration"]
    fig, axes = _panels(hws, "SNN / ANN energy per inference vs activity (< 1: the SNN pays off)")
    for hw, ax in axes.items():
        rows = be[(be["hw"] == hw) & be["snn_over_ann_energy"].notna()]
        for _, group in rows.groupby(VARIANT):
            group = group.sort_values("spikes_per_synapse")
            ax.plot(group["spikes_per_synapse"], group["snn_over_ann_energy"], "o-",
                    label=variant_label(group.iloc[0]))
            for _, r in group.iterrows():
                ax.annotate(f"T{r['timesteps']}", (r["spikes_per_synapse"],
                                                   r["snn_over_ann_energy"]),
                            fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.axhline(1.0, color="black", lw=1, ls="--", label="break-even (ratio 1)")
        ax.axvspan(*band, color="tab:orange", alpha=0.15,
                   label=f"Dampfhoffer et al. 2023: {band[0]}-{band[1]}")
        ax.set(title=hw, xlabel="spikes per synapse per inference", ylabel="SNN / ANN energy")
        _scale(ax, "x", [*rows["spikes_per_synapse"], *band])
        _scale(ax, "y", [*rows["snn_over_ann_energy"], 1.0])
        _legend(ax)
    _save(fig, path)
