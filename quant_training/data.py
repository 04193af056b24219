"""MNIST-class datasets held in memory as uint8 tensors, with a fixed validation split.

Images stay uint8 until a batch is drawn; a batch is float pixels p / 256 (model.quantizers
.pixels: 8-bit fixed point, which the network's input quantizer reproduces exactly). The
validation split is carved from the training set with a fixed seed (VAL_SPLIT_SEED),
independent of the training seed, so every run of a dataset validates on the same images.
The test set is only evaluated once, at the end of training.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torchvision import datasets

from common.errors import UserError, check_choice
from model.quantizers import pixels

DATASETS = {"mnist": datasets.MNIST, "fashion": datasets.FashionMNIST}
DATA_DIR_ENV = "QSNN_DATA_DIR"
DEFAULT_DATA_DIR = "data"
VAL_SPLIT_SEED = 12345


@dataclass(frozen=True)
class Split:
    """Images (uint8, [N, 1, H, W]) and labels (int64, [N])."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: Tensor) -> Split:
        return Split(self.images[index], self.labels[index])

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split

    def to(self, device: torch.device) -> Dataset:
        """The dataset resident on `device` (MNIST: 55 MB of uint8), so a batch is drawn there."""
        return Dataset(self.name, self.train.to(device), self.val.to(device), self.test.to(device))


def resolve_data_dir(data_dir: str | None) -> Path:
    """The dataset root: the argument, else $QSNN_DATA_DIR, else ./data."""
    return Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def load_dataset(name: str, data_dir: str | Path, val_size: int = 5000,
                 limit: int | None = None) -> Dataset:
    """Load `name` ('mnist' | 'fashion'); `limit` keeps the first n training images."""
    check_choice("dataset", name, DATASETS)
    full_train = _load_split(name, Path(data_dir), train=True)
    if not 0 < val_size < len(full_train):
        raise UserError(f"val_size={val_size} must lie in 1..{len(full_train) - 1}")
    order = torch.randperm(len(full_train), generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
    val, train = full_train.subset(order[:val_size]), full_train.subset(order[val_size:])
    if limit is not None:
        if limit < 1:
            raise UserError(f"limit={limit} must be a positive number of training images")
        train = train.subset(torch.arange(min(limit, len(train))))
    return Dataset(name, train, val, _load_split(name, Path(data_dir), train=False))


def _load_split(name: str, root: Path, train: bool) -> Split:
    cls = DATASETS[name]
    raw = root / cls.__name__ / "raw"
    needed = [raw / Path(url).name.removesuffix(".gz") for url, _ in cls.resources]
    if not all(path.is_file() for path in needed):
        _download(cls, root)
    try:
        ds = cls(str(root), train=train, download=False)
    except Exception as err:  # a truncated or foreign IDX file
        raise UserError(f"{cls.__name__} files under {raw} are unreadable "
                        f"({type(err).__name__}: {err}); replace them and retry") from None
    return Split(ds.data.unsqueeze(1).contiguous(), ds.targets.long())


def _download(cls, root: Path) -> None:
    try:
        cls(str(root), train=True, download=True)
    except Exception as err:
        raise UserError(
            f"{cls.__name__} not found in {root / cls.__name__ / 'raw'} and the download failed "
            f"({type(err).__name__}); set DATA_DIR (or ${DATA_DIR_ENV}) to a folder holding "
            f"{cls.__name__}/raw/, e.g. DATA_DIR=../shared/data"
        ) from None


def batches(split: Split, batch_size: int, device: torch.device,
            generator: torch.Generator | None = None,
            shift_px: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (pixels in [0, 1], labels) batches on `device`; shuffled when a generator is given,
    and each image shifted by up to +-shift_px pixels.

    The order and the shifts are drawn from `generator` on the CPU before the first batch, in
    the order a batch-by-batch loop would draw them (the permutation, then each batch's
    shifts), so a seed gives the same batches on any device, and a split resident on a GPU
    (`Split.to`) yields its batches without a host-device copy or synchronisation per batch.
    """
    n = len(split)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    starts = range(0, n, batch_size)
    order = order.to(split.images.device)
    if shift_px:
        shifts = torch.cat([draw_shifts(min(batch_size, n - s), shift_px, generator)
                            for s in starts], dim=1).to(split.images.device)
    for start in starts:
        index = order[start:start + batch_size]
        images = split.images[index]
        if shift_px:
            images = random_shift(images, shift_px, shifts[:, start:start + batch_size])
        yield (pixels(images.to(device, non_blocking=True)),
               split.labels[index].to(device, non_blocking=True))


def draw_shifts(n: int, max_px: int, generator: torch.Generator | None) -> Tensor:
    """[2, n, 1]: each image's (dy, dx), uniform in -max_px..max_px."""
    return torch.randint(-max_px, max_px + 1, (2, n, 1), generator=generator)


def random_shift(images: Tensor, max_px: int, shifts: Tensor) -> Tensor:
    """Shift each image [N, C, H, W] by its (dy, dx) = shifts[:, n] (`draw_shifts`), zero fill:
    out[n, c, y, x] = images[n, c, y - dy_n, x - dx_n] (0 outside the image)."""
    n, channels, height, width = images.shape
    padded = torch.nn.functional.pad(images, (max_px,) * 4)
    dy, dx = shifts
    rows = (max_px - dy) + torch.arange(height, device=images.device)  # [N, H] padded rows
    cols = (max_px - dx) + torch.arange(width, device=images.device)
    index = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(channels, device=images.device)[:, None, None]
    return padded[index, channel, rows[:, None, :, None], cols[:, None, None, :]]


def num_batches(split: Split, batch_size: int) -> int:
    return -(-len(split) // batch_size)
