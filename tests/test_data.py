"""Datasets: the fixed validation split, LIMIT, and errors for missing or broken data."""
import shutil

import pytest
import torch

from common.errors import UserError
from model.quantizers import pixels
from quant_training.data import batches, draw_shifts, load_dataset, random_shift

CPU = torch.device("cpu")


def test_validation_split_is_fixed_disjoint_and_seed_independent(mnist_small, data_dir):
    data = mnist_small
    assert (len(data.train), len(data.val), len(data.test)) == (600, 5000, 10000)
    again = load_dataset("mnist", data_dir, limit=50)
    assert torch.equal(again.val.images, data.val.images)
    assert torch.equal(again.train.images, data.train.images[:50])
    train_rows = {bytes(img.numpy()) for img in data.train.images}
    assert not train_rows & {bytes(img.numpy()) for img in data.val.images[:500]}


def test_batches_are_pixels_in_unit_range_and_shuffle_with_a_seed(mnist_small):
    x, y = next(batches(mnist_small.train, 32, torch.device("cpu")))
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (32,)
    assert x.min() >= 0 and x.max() <= 1
    first = [next(batches(mnist_small.train, 8, torch.device("cpu"),
                          torch.Generator().manual_seed(s)))[1] for s in (1, 1, 2)]
    assert torch.equal(first[0], first[1]) and not torch.equal(first[0], first[2])


def test_batches_draw_order_and_shifts_as_a_batch_by_batch_loop(mnist_small):
    """All random numbers of an epoch come from the generator in loop order (the permutation,
    then each batch's shifts), drawn before the first batch: a seed gives the same batches
    with the split on the CPU or resident on a GPU (test_cuda.py)."""
    split, generator = mnist_small.train, torch.Generator().manual_seed(3)
    got = list(batches(split, 64, CPU, torch.Generator().manual_seed(3), shift_px=2))
    order = torch.randperm(len(split), generator=generator)
    starts = range(0, len(split), 64)
    assert len(got) == len(starts) == 10
    for (images, labels), start in zip(got, starts, strict=True):
        index = order[start:start + 64]
        shifted = random_shift(split.images[index], 2, draw_shifts(len(index), 2, generator))
        assert torch.equal(images, pixels(shifted)) and torch.equal(labels, split.labels[index])


def test_random_shift_moves_each_image_by_its_own_offset():
    images = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    images[:, 0, 10, 10] = 200
    shifted = random_shift(images, 2, torch.tensor([[[2], [-1]], [[-1], [0]]]))  # (dy, dx)
    assert shifted[0, 0, 12, 9] == 200 and shifted[1, 0, 9, 10] == 200
    assert int((shifted > 0).sum()) == 2
    edge = torch.full((1, 1, 28, 28), 7, dtype=torch.uint8)
    moved = random_shift(edge, 2, torch.tensor([[[2]], [[2]]]))
    assert moved[0, 0, :2].eq(0).all() and moved[0, 0, :, :2].eq(0).all()
    assert moved[0, 0, 2:, 2:].eq(7).all()


def test_missing_data_folder_says_where_it_looked(tmp_path):
    with pytest.raises(UserError) as err:
        load_dataset("mnist", tmp_path / "nowhere")
    message = str(err.value)
    assert "MNIST not found in" in message and "nowhere" in message and "DATA_DIR" in message
    assert "\n" not in message


def test_unknown_dataset_and_truncated_files(tmp_path, data_dir):
    with pytest.raises(UserError,
                       match="dataset='cifar' is not supported; allowed: mnist, fashion"):
        load_dataset("cifar", data_dir)
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(data_dir / "MNIST" / "raw", raw)
    broken = raw / "train-images-idx3-ubyte"
    broken.write_bytes(broken.read_bytes()[:1000])
    with pytest.raises(UserError, match="unreadable"):
        load_dataset("mnist", tmp_path)


def test_fashion_mnist_loads(data_dir):
    data = load_dataset("fashion", data_dir, limit=10)
    assert len(data.train) == 10 and len(data.test) == 10000
