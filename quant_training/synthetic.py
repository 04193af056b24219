"""A learnable stand-in for CIFAR-10, written in CIFAR-10's published python format, for trying
the whole flow on 3x32x32 colour images where the real files cannot be fetched.

    python -m quant_training.synthetic DATA_DIR [--train 10000] [--test 2000] [--seed 0]

Writes DATA_DIR/cifar-10-batches-py/data_batch_1..5 and test_batch (pickled dicts, protocol 2,
b"data" N x 3072 uint8 in R, G, B planes, b"labels"), the layout `DATASET=cifar10` reads.
Image of class c (0..9): a sinusoidal grating of orientation 18 c degrees and period 8 px, at
a random phase, tinted by one of two colours (c even: warm, odd: cool), plus uniform noise of
+-48 and a random shift of the whole pattern. Orientation and tint tell the classes apart, a
mirror image keeps roughly its class's texture; numbers measured on it say nothing about
CIFAR-10 itself.
"""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from common.atomic import atomic_path
from common.errors import UserError, run_cli
from quant_training.data import CIFAR_FOLDER, CIFAR_TEST, CIFAR_TRAIN

SIDE = 32
CLASSES = 10
PERIOD_PX = 8.0
NOISE = 48
TINTS = np.array([[1.0, 0.6, 0.3], [0.3, 0.6, 1.0]])  # R, G, B gains: warm, cool


def images_of(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [N, 3, 32, 32] images of the given classes (the module docstring's recipe)."""
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    angle = np.deg2rad(18.0 * labels)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, len(labels))[:, None, None]
    along = x[None] * np.cos(angle) + y[None] * np.sin(angle)
    grating = 0.5 + 0.5 * np.sin(2 * np.pi * along / PERIOD_PX + phase)  # [N, H, W] in 0..1
    colour = TINTS[labels % 2][:, :, None, None] * grating[:, None] * 255.0
    noisy = colour + rng.integers(-NOISE, NOISE + 1, colour.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def write_batches(root: Path, train: int, test: int, seed: int) -> Path:
    """The five training batches (train images split evenly) and the test batch, atomically."""
    if train < len(CIFAR_TRAIN) or test < 1:
        raise UserError(f"train={train} and test={test}: need train >= {len(CIFAR_TRAIN)} "
                        f"(one image per batch file) and test >= 1")
    rng = np.random.default_rng(seed)
    folder = root / CIFAR_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [len(part) for part in np.array_split(np.arange(train), len(CIFAR_TRAIN))] + [test]
    for name, n in zip((*CIFAR_TRAIN, *CIFAR_TEST), sizes, strict=True):
        labels = rng.integers(0, CLASSES, n)
        batch = {b"batch_label": f"synthetic {name}".encode(), b"labels": labels.tolist(),
                 b"data": images_of(labels, rng).reshape(n, 3 * SIDE * SIDE),
                 b"filenames": [f"synthetic_{i}.png".encode() for i in range(n)]}
        with atomic_path(folder / name) as tmp:
            tmp.write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m quant_training.synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", type=Path)
    p.add_argument("--train", type=int, default=10000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(write_batches(args.data_dir, args.train, args.test, args.seed))


if __name__ == "__main__":
    run_cli(main)
