"""A trained run opened from the command line: its folder, network and dataset."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from common.runs import CHECKPOINT, resolve_run
from model.network import QuantCNN, SpikingCNN
from model.spec import ModelSpec
from quant_training.checkpoint import load_model
from quant_training.data import Dataset, load_dataset, resolve_data_dir


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """RUN (default: the latest run), --runs-dir and --data-dir."""
    parser.add_argument("run", nargs="?", default=None, help="run folder (default: the latest)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--data-dir", default=None,
                        help="dataset root (default $QSNN_DATA_DIR or data/)")


@dataclass
class TrainedRun:
    path: Path
    model: SpikingCNN | QuantCNN
    spec: ModelSpec
    checkpoint: dict

    @classmethod
    def open(cls, args: argparse.Namespace) -> TrainedRun:
        path = resolve_run(args.run, args.runs_dir)
        model, spec, checkpoint = load_model(path / CHECKPOINT)
        return cls(path, model, spec, checkpoint)

    @property
    def dataset_name(self) -> str:
        return self.checkpoint["train_config"]["dataset"]

    def dataset(self, data_dir: str | None) -> Dataset:
        """The run's dataset with its validation split (the run's val_size)."""
        return load_dataset(self.dataset_name, resolve_data_dir(data_dir),
                            self.checkpoint["train_config"]["val_size"])
