"""Report figures (matplotlib, PNG): energy and latency vs T, accuracy vs energy with the Pareto
front, per-layer energy breakdown, and the SNN / ANN energy ratio (break-even)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from common.atomic import write_with
from hw_model.costs import UJ


def pareto_front(points: pd.DataFrame, cost: str, value: str) -> pd.DataFrame:
    """Points not beaten by another with lower-or-equal cost and higher-or-equal value."""
    ordered = points.sort_values([cost, value], ascending=[True, False])
    best, keep = -float("inf"), []
    for index, row in ordered.iterrows():
        if row[value] > best:
            keep.append(index)
            best = row[value]
    return ordered.loc[keep]


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def _per_target_axes(targets: list[str], title: str) -> tuple[Figure, dict[str, Axes]]:
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 4), squeeze=False)
    fig.suptitle(title)
    return fig, dict(zip(targets, axes[0], strict=True))


def metric_vs_timesteps(summary: pd.DataFrame, column: str, scale: float, unit: str,
                        path: Path) -> None:
    targets = list(summary["target"].unique())
    fig, axes = _per_target_axes(targets, f"{column.split('_')[0]} per inference vs T "
                                          f"(default configuration)")
    for target, ax in axes.items():
        rows = summary[summary["target"] == target]
        for (bits, config), group in rows[rows["kind"] == "snn"].groupby(["weight_bits",
                                                                            "config"]):
            group = group.sort_values("timesteps")
            ax.plot(group["timesteps"], group[column] / scale, "o-",
                    label=f"SNN {bits}-bit{_config_note(rows, str(config))}")
        for _, ann in rows[rows["kind"] == "ann"].iterrows():
            ax.axhline(ann[column] / scale, ls="--", color="gray",
                       label=f"ANN {ann['weight_bits']}-bit{_config_note(rows, ann['config'])}")
        ax.set(title=target, xlabel="timesteps T", ylabel=f"{column.split('_')[0]} [{unit}]",
               yscale="log")
        ax.legend(fontsize=8)
    _save(fig, path)


def accuracy_vs_energy(summary: pd.DataFrame, path: Path) -> None:
    targets = list(summary["target"].unique())
    fig, axes = _per_target_axes(targets, "accuracy vs energy per inference (Pareto front)")
    for target, ax in axes.items():
        rows = summary[summary["target"] == target]
        for kind, group in rows.groupby("kind"):
            ax.scatter(group["energy_pj"] / UJ, group["accuracy_pct"], s=14, alpha=0.6,
                       label=str(kind).upper())
        front = pareto_front(rows, "energy_pj", "accuracy_pct")
        ax.step(front["energy_pj"] / UJ, front["accuracy_pct"], where="post", color="black",
                lw=1, label="Pareto front")
        ax.set(title=target, xlabel="energy per inference [uJ]", ylabel="test accuracy [%]",
               xscale="log")
        ax.legend(fontsize=8)
    _save(fig, path)


def layer_breakdown(layers: pd.DataFrame, path: Path) -> None:
    targets = list(layers["target"].unique())
    fig, axes = _per_target_axes(targets, "energy per inference by layer (default configuration)")
    for target, ax in axes.items():
        table = (layers[layers["target"] == target]
                 .pivot_table(index="run", columns="layer", values="energy_pj", aggfunc="sum")
                 / UJ)
        table.index = [_short(run) for run in table.index]
        table.plot.barh(stacked=True, ax=ax, legend=True)
        ax.set(title=target, xlabel="energy per inference [uJ]", ylabel="")
        ax.legend(fontsize=8)
    _save(fig, path)


def break_even(summary: pd.DataFrame, path: Path) -> None:
    """SNN energy / ANN energy per target at equal weight bits and configuration: < 1 means
    the SNN pays off."""
    targets = list(summary["target"].unique())
    fig, axes = _per_target_axes(targets, "SNN / ANN energy per inference (same weight bits)")
    for target, ax in axes.items():
        rows = summary[summary["target"] == target]
        for (bits, config), snn in rows[rows["kind"] == "snn"].groupby(["weight_bits",
                                                                          "config"]):
            ann = rows[(rows["kind"] == "ann") & (rows["weight_bits"] == bits)
                       & (rows["config"] == config)]
            if ann.empty:
                continue
            snn = snn.sort_values("timesteps")
            ax.plot(snn["timesteps"], snn["energy_pj"] / ann["energy_pj"].min(), "o-",
                    label=f"{bits}-bit{_config_note(rows, str(config))}")
        ax.axhline(1.0, color="black", lw=1, ls="--", label="break-even")
        ax.set(title=target, xlabel="timesteps T", ylabel="SNN / ANN energy", yscale="log")
        ax.legend(fontsize=8)
    _save(fig, path)


def _config_note(rows: pd.DataFrame, config: str) -> str:
    """What sets this configuration apart from the target's others (e.g. the IMC activity
    mode), for a legend label; empty when the target shows one configuration."""
    labels = [label.split("-") for label in rows["config"].unique()]
    shared = set.intersection(*(set(tokens) for tokens in labels))
    own = [token for token in config.split("-") if token not in shared]
    return f" {'-'.join(own)}" if own else ""


def _short(run: str) -> str:
    return run.replace("_mnist", "").replace("_direct", "").replace("_seed0", "")
