"""The datasets the tool trains on: name -> image shape and classes (torch-free; the readers
of their files are quant_training.data.READERS, keyed alike).

    mnist    1x28x28, 10 classes     fashion  1x28x28, 10 classes
    cifar10  3x32x32, 10 classes     svhn     3x32x32, 10 classes (cropped digits)

Augmentation that fits the data: random shifts for all (TrainConfig.shift_px); horizontal
flips only where a mirror image keeps its class (CIFAR-10's objects; not digits, whose
mirror is no digit or another one, nor Fashion-MNIST, kept as the seed study trained it).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    shape: tuple[int, int, int]  # C x H x W of an image
    classes: int
    flips: bool = False  # training images mirrored left-right with probability 1/2


DATASETS = {info.name: info for info in (
    DatasetInfo("mnist", (1, 28, 28), 10), DatasetInfo("fashion", (1, 28, 28), 10),
    DatasetInfo("cifar10", (3, 32, 32), 10, flips=True), DatasetInfo("svhn", (3, 32, 32), 10))}
