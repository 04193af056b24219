"""Training configuration: everything about a run that is not the network itself (importable
without torch: torch is imported when a device is checked or chosen)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from common.errors import UserError, check_choice
from model.layers import SEED_LAYERS
from model.spec import ModelSpec
from quant_training.datasets import DATASETS

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("cosine", "constant")
MAX_SHIFT_PX = 4


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser (Adam, learning-rate schedule), augmentation, data and bookkeeping of one QAT
    run. The recipe (schedule, shift_px) was chosen on the validation split (reports/study)."""

    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3  # peak learning rate
    schedule: str = "cosine"  # lr per epoch, see learning_rate()
    shift_px: int = 2  # training images shifted by up to +-shift_px pixels (0 = off)
    seed: int = 0
    limit: int | None = None  # first n training images; None = all
    val_size: int = 5000
    device: str = "auto"
    max_minutes: float | None = None  # stop after the epoch that passes this wall time

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("device", self.device, DEVICES)
        check_choice("schedule", self.schedule, SCHEDULES)
        if not isinstance(self.shift_px, int) or not 0 <= self.shift_px <= MAX_SHIFT_PX:
            raise UserError(f"shift_px={self.shift_px!r} must be an integer in 0..{MAX_SHIFT_PX}")
        for name in ("epochs", "batch_size", "val_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"{name}={value!r} must be an integer >= 1")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"limit={self.limit} must be a positive number of training images")
        if not self.lr > 0:
            raise UserError(f"lr={self.lr} must be > 0")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise UserError(f"max_minutes={self.max_minutes} must be > 0")
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise UserError("device='cuda' was asked for but no CUDA device is available")

    def torch_device(self) -> torch.device:
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def to_dict(self) -> dict:
        return asdict(self)

    def learning_rate(self, epoch: int) -> float:
        """Learning rate of epoch 1..epochs: constant, or cosine from lr down to lr / 100,
        lr_e = lr_min + (lr - lr_min) (1 + cos(pi (e - 1) / epochs)) / 2."""
        if self.schedule == "constant":
            return self.lr
        lr_min = self.lr / 100
        return lr_min + (self.lr - lr_min) * (1 + math.cos(math.pi * (epoch - 1) / self.epochs)) / 2


def run_name(spec: ModelSpec, config: TrainConfig) -> str:
    """Default run folder name, e.g. snn_mnist_T10_w4_s8_direct_seed0; a recipe other than
    the default adds e.g. _constant_shift0, a layer list other than the seed's e.g.
    _conv16-pool-fc64."""
    if spec.kind == "ann":
        name = f"ann_{config.dataset}_w{spec.weight_bits}"
    else:
        name = (f"snn_{config.dataset}_T{spec.timesteps}_w{spec.weight_bits}"
                f"_s{spec.state_bits}_{spec.encoding}")
    name += f"_seed{config.seed}"
    if spec.layers != SEED_LAYERS:
        name += "_" + "-".join(spec.layers)
    default = TrainConfig(dataset=config.dataset)
    if config.schedule != default.schedule:
        name += f"_{config.schedule}"
    if config.shift_px != default.shift_px:
        name += f"_shift{config.shift_px}"
    return name + (f"_n{config.limit}" if config.limit else "")


def shape_from_dataset(spec_values: dict, dataset: str) -> dict:
    """ModelSpec values with the dataset's input shape and class count (in_channels,
    image_size, num_classes from quant_training.datasets.DATASETS); a value given that differs is
    one line."""
    check_choice("dataset", dataset, DATASETS)
    source = DATASETS[dataset]
    channels, height, width = source.shape
    if height != width:
        raise UserError(f"dataset={dataset}: {height}x{width} images are not square")
    implied = {"in_channels": channels, "image_size": height, "num_classes": source.classes}
    for key, value in implied.items():
        if key in spec_values and spec_values[key] != value:
            raise UserError(f"{key}={spec_values[key]!r} does not fit dataset={dataset} "
                            f"({channels}x{height}x{width} images, {source.classes} classes); "
                            f"leave it out")
    return {**spec_values, **implied}

