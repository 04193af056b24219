"""Quantization-aware training of a spiking CNN or its ANN baseline (`make qat`).

    python -m quant_training.train --timesteps 10 --weight-bits 4 --state-bits 8 --epochs 10
    python -m quant_training.train --from runs/<float run> --weight-bits 4 --epochs 2

Writes runs/<name>/: best.pt (best validation accuracy), last.pt (for --resume), history.csv
(one row per epoch) and, once training has finished, the best checkpoint's single test pass:
metrics.json and the workload profile (profile.json, profile.csv; see common/profile.py).
Options are validated before anything is written; every network and training option and its
default comes from ModelSpec (model/spec.py) and TrainConfig (quant_training/config.py).
--from starts from another run's weights (an imported NIR graph: quant_training/nir_import.py)
with its network on the fixed point (quant_training.ptq.quantized_spec; the options given
override) and its dataset.
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from common.atomic import write_json, write_with
from common.cpu_memory import keep_freed_memory
from common.dataclass_cli import ArgumentParser, add_fields, given
from common.errors import UserError, run_cli
from common.runs import CHECKPOINT, HISTORY, LAST, METRICS, resolve_run
from model.network import build_model
from model.spec import ModelSpec
from quant_training.checkpoint import load_model, read_checkpoint, save_checkpoint
from quant_training.config import TrainConfig, run_name, shape_from_dataset
from quant_training.data import VAL_SPLIT_SEED, Dataset, load_dataset, resolve_data_dir
from quant_training.datasets import DATASETS
from quant_training.engine import Result, evaluate, spike_summary, train_one_epoch
from quant_training.profile import profile_model, write_profile
from quant_training.step import TrainStep, load_optimizer_state, optimizer_for

RESUMABLE_CHANGES = {"epochs", "max_minutes", "device"}  # may differ when resuming


@dataclass
class Progress:
    """What a resumed run continues from."""

    epochs_done: int = 0
    best_epoch: int = 0
    best_val_accuracy_pct: float = -1.0
    elapsed_s: float = 0.0
    history: list[dict] = field(default_factory=list)


SPEC_HELP = {
    "kind": "snn | ann", "timesteps": "T (snn only)", "weight_bits": "2 | 4 | 8 | 32 (= float)",
    "weight_scale": "max | mse: each weight tensor's power-of-two scale from its max |w|, or the "
                    "one with the least squared rounding error",
    "state_bits": "membrane bits: 4 | 8 | 16 | 32 (= float)", "encoding": "direct | rate",
    "reset": "subtract | zero", "beta": "membrane leak factor", "threshold": "theta",
    "state_max": "membrane range +-state_max (a power of two)",
    "surrogate": "spike-function surrogate gradient", "pool": "after_neuron | before_neuron",
    "readout": "mean | sum of the output layer over T",
    "layers": "comma-separated conv<c>[k<kernel>][s<stride>][p<padding>] (default 3x3, stride "
              "1, same padding), maxpool<k> / avgpool<k> / pool (= maxpool2) after a conv, "
              "fc<n>, convolutions first; the readout to the classes is implied",
}
TRAIN_HELP = {
    "dataset": "mnist | fashion | cifar10 | svhn (quant_training.data)",
    "lr": "peak learning rate",
    "schedule": "cosine | constant (learning rate per epoch)",
    "shift_px": "random shifts of the training images by up to +-n pixels (0 = off)",
    "limit": "first n training images", "val_size": "validation images held out of training",
    "device": "auto | cpu | cuda",
    "max_minutes": "stop after the epoch that passes this much wall time",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Options generated from ModelSpec and TrainConfig: their defaults are the only ones."""
    p = ArgumentParser(prog="python -m quant_training.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fields(p.add_argument_group("network (saved in the checkpoint's model spec)"),
               ModelSpec, SPEC_HELP, aliases={"kind": "model"})
    run = p.add_argument_group("training")
    add_fields(run, TrainConfig, TRAIN_HELP)
    run.add_argument("--data-dir", default=None,
                     help="dataset root (default $QSNN_DATA_DIR or data/)")
    out = p.add_argument_group("output")
    out.add_argument("--runs-dir", default="runs")
    out.add_argument("--name", default=None, help="run folder name (default from the options)")
    out.add_argument("--resume", action="store_true", help="continue runs/<name> from last.pt")
    out.add_argument("--from", dest="from_run", default=None,
                     help="start from this run's best.pt (its network, quantized; its dataset)")
    return p.parse_args(argv)


def spec_from_args(args: argparse.Namespace) -> ModelSpec:
    values = given(args, ModelSpec)
    if values.get("kind") == "ann":
        values["timesteps"] = 1  # the ANN runs one pass
    dataset = given(args, TrainConfig).get("dataset", TrainConfig.dataset)
    return ModelSpec.from_dict(shape_from_dataset(values, dataset))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**given(args, TrainConfig))


@dataclass(frozen=True)
class Start:
    """Weights to start from (--from): the state dict and where it came from."""

    state_dict: dict
    source: dict


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start_from = None
    if args.from_run:
        spec, config, start_from = from_run(args)
        name = args.name or f"{run_name(spec, config)}_from-{Path(args.from_run).name}"
    else:
        spec, config = spec_from_args(args), config_from_args(args)
        name = args.name or run_name(spec, config)
    train(spec, config, resolve_data_dir(args.data_dir), Path(args.runs_dir) / name,
          args.resume, start_from=start_from)


def from_run(args: argparse.Namespace) -> tuple[ModelSpec, TrainConfig, Start]:
    """--from: the run's network on the fixed point (options given override), its dataset,
    and its weights."""
    from quant_training.ptq import quantized_spec

    path = resolve_run(args.from_run)
    payload = read_checkpoint(path / CHECKPOINT)
    source = ModelSpec.from_dict(payload["spec"])
    spec = quantized_spec(source, **given(args, ModelSpec))
    dataset = payload.get("train_config", {}).get("dataset", TrainConfig.dataset)
    config = TrainConfig(**{"dataset": dataset, **given(args, TrainConfig)})
    record = {"run": str(path), "spec": source.to_dict(),
              "nir_import": payload.get("nir_import")}
    return spec, config, Start(payload["state_dict"], record)


def train(spec: ModelSpec, config: TrainConfig, data_dir: Path, run_dir: Path,
          resume: bool = False, command: str | None = None,
          start_from: Start | None = None) -> dict:
    """Train a new run in `run_dir` (or continue it from last.pt), from freshly initialised
    weights or `start_from`'s; return its metrics."""
    data = load_dataset(config.dataset, data_dir, config.val_size, config.limit)
    payload = None
    if resume:
        payload = _resume_payload(run_dir, spec, config)
    else:
        check_new_run(run_dir)
    keep_freed_memory(config.torch_device().type)  # this process trains: reuse freed memory
    return fit(spec, config, data, run_dir, payload, command, start_from)


def check_new_run(run_dir: Path) -> None:
    """One line unless `run_dir` is new or empty."""
    if run_dir.exists() and any(run_dir.iterdir()):
        hint = "it is finished" if (run_dir / METRICS).exists() else "resume it with --resume"
        raise UserError(f"run folder {run_dir} already exists ({hint}); choose another --name "
                        f"(NAME=...) or delete it")


def _resume_payload(run_dir: Path, spec: ModelSpec, config: TrainConfig) -> dict:
    if (run_dir / METRICS).exists():
        raise UserError(f"run {run_dir} has already finished; nothing to resume")
    payload = read_checkpoint(run_dir / LAST)
    saved = {**ModelSpec.from_dict(payload["spec"]).to_dict(), **payload["train_config"]}
    asked = {**spec.to_dict(), **config.to_dict()}
    changed = sorted(k for k in asked if k not in RESUMABLE_CHANGES and saved.get(k) != asked[k])
    if changed:
        diffs = ", ".join(f"{k}: run has {saved.get(k)!r}, asked {asked[k]!r}" for k in changed)
        raise UserError(f"cannot resume {run_dir} with different options ({diffs})")
    return payload


def fit(spec: ModelSpec, config: TrainConfig, data: Dataset, run_dir: Path,
        resume: dict | None = None, command: str | None = None,
        start_from: Start | None = None) -> dict:
    """Train, keep the best checkpoint by validation accuracy, test it once; return metrics."""
    shape_from_dataset(spec.to_dict(), data.name)  # one line if the network does not fit it
    device = config.torch_device()
    data = data.to(device)
    torch.manual_seed(config.seed)
    model = build_model(spec)
    if start_from is not None:
        load_weights(model, start_from)
    model.to(device)
    optimizer = optimizer_for(model, config.lr)
    step = TrainStep(model, optimizer)
    shuffle = torch.Generator().manual_seed(config.seed)
    progress = Progress()
    if resume:
        progress = _restore(resume, model, optimizer, shuffle)
        print(f"resuming {run_dir} after epoch {progress.epochs_done}", file=sys.stderr)
    start = time.perf_counter() - progress.elapsed_s
    stopped_early = None
    for epoch in range(progress.epochs_done + 1, config.epochs + 1):
        desc = f"epoch {epoch}/{config.epochs}"
        lr = config.learning_rate(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train = train_one_epoch(step, data.train, config.batch_size, device, shuffle, desc,
                                config.shift_px, DATASETS[config.dataset].flips)
        val = evaluate(model, data.val, config.batch_size, device, desc=f"{desc} val")
        is_best = val.accuracy_pct > progress.best_val_accuracy_pct
        if is_best:
            progress.best_epoch, progress.best_val_accuracy_pct = epoch, val.accuracy_pct
            save_checkpoint(run_dir / CHECKPOINT, spec, model, train_config=config.to_dict(),
                            epoch=epoch, val_accuracy_pct=val.accuracy_pct)
        progress.epochs_done, progress.elapsed_s = epoch, time.perf_counter() - start
        progress.history.append(_history_row(epoch, lr, train, val))
        _save_last(run_dir, spec, config, model, optimizer, shuffle, progress)
        print(f"{desc}: train loss {train.loss:.4f} acc {train.accuracy_pct:.2f}% | "
              f"val loss {val.loss:.4f} acc {val.accuracy_pct:.2f}% | "
              f"{train.images / train.seconds:.0f} img/s{' *best' if is_best else ''}",
              file=sys.stderr)
        if config.max_minutes and progress.elapsed_s > 60 * config.max_minutes:
            stopped_early = f"max_minutes={config.max_minutes}"
            break
    return _finish(run_dir, spec, config, data, progress, stopped_early,
                   command or " ".join(sys.argv), start_from)


def load_weights(model: torch.nn.Module, start: Start) -> None:
    """`start`'s weights into `model` (one line if the layers differ)."""
    try:
        model.load_state_dict(start.state_dict)
    except RuntimeError as err:
        raise UserError(f"cannot start from {start.source['run']}: its weights do not fit the "
                        f"network asked for ({str(err).strip().splitlines()[-1].strip()})"
                        ) from None


def _history_row(epoch: int, lr: float, train: Result, val: Result) -> dict:
    return {"epoch": epoch, "lr": lr, "train_loss": train.loss,
            "train_accuracy_pct": train.accuracy_pct, "val_loss": val.loss,
            "val_accuracy_pct": val.accuracy_pct, "train_seconds": train.seconds,
            "train_images_per_s": train.images / train.seconds}


def _save_last(run_dir: Path, spec: ModelSpec, config: TrainConfig, model, optimizer,
               shuffle: torch.Generator, progress: Progress) -> None:
    rng: dict[str, object] = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    save_checkpoint(run_dir / LAST, spec, model, train_config=config.to_dict(),
                    optimizer=optimizer.state_dict(), rng=rng, progress=vars(progress))
    table = pd.DataFrame(progress.history)
    write_with(run_dir / HISTORY, lambda tmp: table.to_csv(tmp, index=False))


def _restore(payload: dict, model, optimizer, shuffle: torch.Generator) -> Progress:
    model.load_state_dict(payload["state_dict"])
    load_optimizer_state(optimizer, payload["optimizer"])
    torch.set_rng_state(payload["rng"]["torch"])
    shuffle.set_state(payload["rng"]["shuffle"])
    if "cuda" in payload["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
    return Progress(**payload["progress"])


def _finish(run_dir: Path, spec: ModelSpec, config: TrainConfig, data: Dataset,
            progress: Progress, stopped_early: str | None, command: str,
            start_from: Start | None = None) -> dict:
    device = config.torch_device()
    model, _, _ = load_model(run_dir / CHECKPOINT)
    test, profile = profile_model(model.to(device), spec, data.test, config.batch_size, device,
                                  run_dir.name, data.name, "test")
    write_profile(run_dir, profile)
    metrics = {
        "run": run_dir.name,
        "spec": spec.to_dict(),
        "train_config": config.to_dict(),
        "data": {"dataset": data.name, "train_images": len(data.train),
                 "val_images": len(data.val), "val_split_seed": VAL_SPLIT_SEED,
                 "test_images": len(data.test)},
        "epochs_completed": progress.epochs_done,
        "stopped_early": stopped_early,
        "best_epoch": progress.best_epoch,
        "val_accuracy_pct": progress.best_val_accuracy_pct,
        "test_accuracy_pct": test.accuracy_pct,
        "test_loss": test.loss,
        **spike_summary(test, spec.timesteps),
        "train_wall_time_s": progress.elapsed_s,
        "device": _device_name(device),
        "versions": _versions(),
        "command": command,
    }
    if start_from is not None:
        metrics["started_from"] = start_from.source
    write_json(run_dir / METRICS, metrics)
    print(f"test accuracy {test.accuracy_pct:.2f}% (best epoch {progress.best_epoch} of "
          f"{progress.epochs_done} by validation accuracy {progress.best_val_accuracy_pct:.2f}%)",
          file=sys.stderr)
    print(f"run folder: {run_dir}")
    return metrics


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _versions() -> dict:
    import brevitas
    import torchvision

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "brevitas": brevitas.__version__,
            "project_commit": commit}


if __name__ == "__main__":
    run_cli(main)
