"""Image-classification datasets held in memory as uint8 tensors, with a fixed validation
split; each read from its files as published (shapes and classes: quant_training.datasets):

    mnist    1x28x28, 10 classes   MNIST/raw/*-ubyte (IDX), read by torchvision
    fashion  1x28x28, 10 classes   FashionMNIST/raw/*-ubyte (IDX), read by torchvision
    cifar10  3x32x32, 10 classes   cifar-10-batches-py/data_batch_1..5, test_batch (the python
                                   version: pickled dicts, b"data" N x 3072 uint8 in R, G, B
                                   planes, b"labels"), read by a pickle reader that refuses
                                   every global but numpy's array reconstruction
    svhn     3x32x32, 10 classes   svhn/train_32x32.mat, test_32x32.mat (cropped digits,
                                   MATLAB: X 32 x 32 x 3 x N uint8, y N x 1 with 10 for 0)

Images stay uint8 until a batch is drawn; a batch is float pixels p / 256 (model.quantizers
.pixels: 8-bit fixed point, which the network's input quantizer reproduces exactly; no
normalisation). The validation split is carved from the training set with a fixed seed
(VAL_SPLIT_SEED), independent of the training seed, so every run of a dataset validates on
the same images. The test set is only evaluated once, at the end of training. Only MNIST and
Fashion-MNIST are fetched when missing (torchvision's mirrors); a missing or unreadable file
of the others is one line saying where it looked.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision import datasets

from common.errors import UserError, check_choice
from model.quantizers import pixels
from quant_training.datasets import DATASETS

DATA_DIR_ENV = "QSNN_DATA_DIR"
DEFAULT_DATA_DIR = "data"
VAL_SPLIT_SEED = 12345


@dataclass(frozen=True)
class Split:
    """Images (uint8, [N, C, H, W]) and labels (int64, [N])."""

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
    """Load a registered dataset (DATASETS); `limit` keeps the first n training images."""
    check_choice("dataset", name, DATASETS)
    full_train = _read(name, Path(data_dir), train=True)
    if not 0 < val_size < len(full_train):
        raise UserError(f"val_size={val_size} must lie in 1..{len(full_train) - 1}")
    order = torch.randperm(len(full_train), generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
    val, train = full_train.subset(order[:val_size]), full_train.subset(order[val_size:])
    if limit is not None:
        if limit < 1:
            raise UserError(f"limit={limit} must be a positive number of training images")
        train = train.subset(torch.arange(min(limit, len(train))))
    return Dataset(name, train, val, _read(name, Path(data_dir), train=False))


def _read(name: str, root: Path, train: bool) -> Split:
    """A split read by the dataset's reader, its images checked against the registry."""
    data = READERS[name](root, train)
    shape = DATASETS[name].shape
    if tuple(data.images.shape[1:]) != shape:
        raise UserError(f"{name} under {root} holds images of shape "
                        f"{tuple(data.images.shape[1:])}; expected {shape}")
    return data


def _idx(cls) -> Callable[[Path, bool], Split]:
    """MNIST-format (IDX) files read by torchvision, fetched when missing."""
    def read(root: Path, train: bool) -> Split:
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
    return read


def _download(cls, root: Path) -> None:
    try:
        cls(str(root), train=True, download=True)
    except Exception as err:
        raise UserError(
            f"{cls.__name__} not found in {root / cls.__name__ / 'raw'} and the download failed "
            f"({type(err).__name__}); set DATA_DIR (or ${DATA_DIR_ENV}) to a folder holding "
            f"{cls.__name__}/raw/, e.g. DATA_DIR=../shared/data"
        ) from None


CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)
# What a CIFAR-10 python batch may reference: numpy's array reconstruction (the files were
# pickled by Python 2 with numpy; numpy >= 2 moved the module to numpy._core)
CIFAR_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
                 "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
                 ("_codecs", "encode")}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"it references {module}.{name}, which a CIFAR-10 "
                                         f"batch never does")
        return super().find_class(module, name)


def _read_cifar10(root: Path, train: bool) -> Split:
    folder = root / CIFAR_FOLDER
    images, labels = [], []
    for name in CIFAR_TRAIN if train else CIFAR_TEST:
        path = folder / name
        if not path.is_file():
            raise UserError(f"CIFAR-10 file {path} not found; put the python version "
                            f"({CIFAR_FOLDER}/{', '.join(CIFAR_TRAIN + CIFAR_TEST)}) under "
                            f"DATA_DIR (or ${DATA_DIR_ENV})")
        try:
            with path.open("rb") as f:
                batch = _ArraysOnly(f, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            images.append(torch.from_numpy(data.copy()))
            labels.append(torch.as_tensor(batch[b"labels"], dtype=torch.long))
        except Exception as err:  # truncated, foreign or unsafe
            raise UserError(f"CIFAR-10 file {path} is unreadable ({type(err).__name__}: "
                            f"{err}); replace it and retry") from None
    return Split(torch.cat(images), torch.cat(labels))


SVHN_FOLDER = "svhn"
SVHN_FILES = {True: "train_32x32.mat", False: "test_32x32.mat"}


def _read_svhn(root: Path, train: bool) -> Split:
    from scipy.io import loadmat

    path = root / SVHN_FOLDER / SVHN_FILES[train]
    if not path.is_file():
        raise UserError(f"SVHN file {path} not found; put the cropped digits "
                        f"({SVHN_FOLDER}/{SVHN_FILES[True]}, {SVHN_FILES[False]}) under DATA_DIR "
                        f"(or ${DATA_DIR_ENV})")
    try:
        mat = loadmat(str(path))
        images = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1)), dtype=np.uint8)
        labels = np.asarray(mat["y"], dtype=np.int64).reshape(-1) % 10  # 10 is the digit 0
    except Exception as err:
        raise UserError(f"SVHN file {path} is unreadable ({type(err).__name__}: {err}); "
                        f"replace it and retry") from None
    return Split(torch.from_numpy(images), torch.from_numpy(labels))


READERS: dict[str, Callable[[Path, bool], Split]] = {  # (data root, train) -> the split
    "mnist": _idx(datasets.MNIST), "fashion": _idx(datasets.FashionMNIST),
    "cifar10": _read_cifar10, "svhn": _read_svhn}


def batches(split: Split, batch_size: int, device: torch.device,
            generator: torch.Generator | None = None,
            shift_px: int = 0, flips: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (pixels in [0, 1], labels) batches on `device`; shuffled when a generator is given,
    each image shifted by up to +-shift_px pixels and, with `flips`, mirrored left-right with
    probability 1/2.

    The order, the shifts and the flips are drawn from `generator` on the CPU before the first
    batch (the permutation, each batch's shifts, then every image's flip), so a seed gives the
    same batches on any device, and a split resident on a GPU
    (`Split.to`) yields its batches without a host-device copy or synchronisation per batch.
    """
    n = len(split)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    starts = range(0, n, batch_size)
    order = order.to(split.images.device)
    if shift_px:
        shifts = torch.cat([draw_shifts(min(batch_size, n - s), shift_px, generator)
                            for s in starts], dim=1).to(split.images.device)
    if flips:
        mirrored = (torch.rand(n, generator=generator) < 0.5).to(split.images.device)
    for start in starts:
        index = order[start:start + batch_size]
        images = split.images[index]
        if shift_px:
            images = random_shift(images, shift_px, shifts[:, start:start + batch_size])
        if flips:
            images = torch.where(mirrored[start:start + batch_size, None, None, None],
                                 images.flip(-1), images)
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
