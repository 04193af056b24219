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


def test_flips_mirror_about_half_of_the_images_left_right_and_only_where_asked():
    """An image with one bright pixel in its left half: mirrored, the pixel moves to column
    W - 1 - x; each image comes out either as it is or mirrored, both occur, and the same seed
    gives the same flips. Digits are never flipped (the registry), CIFAR-10's objects are."""
    from quant_training.data import Split
    from quant_training.datasets import DATASETS

    images = torch.zeros(200, 3, 32, 32, dtype=torch.uint8)
    images[:, :, 5, 3] = 255
    split = Split(images, torch.zeros(200, dtype=torch.long))
    runs = [torch.cat([x for x, _ in batches(split, 64, CPU, torch.Generator().manual_seed(4),
                                             flips=True)]) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    bright = runs[0][:, 0, 5] > 0  # [N, W]
    mirrored = bright[:, 32 - 1 - 3]
    assert torch.equal(bright[:, 3], ~mirrored) and 60 < int(mirrored.sum()) < 140
    assert int(bright.sum()) == 200  # one bright column per image, nothing else moved
    assert [n for n, info in DATASETS.items() if info.flips] == ["cifar10"]


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
    with pytest.raises(UserError, match=r"dataset='cifar' is not supported; allowed: mnist, "
                                        r"fashion, cifar10, svhn"):
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


def write_cifar10(root, n: int = 12, seed: int = 0):
    """The CIFAR-10 python version in its published layout and format: pickled dicts (protocol
    2, as the published Python 2 files) with b"data" (n x 3072 uint8, R, G, B planes of 32 x
    32) and b"labels"; returns the images (N, 3, 32, 32) and labels, training batches first."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    images = rng.integers(0, 256, (len(names) * n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, len(names) * n)
    for k, name in enumerate(names):
        part = slice(k * n, (k + 1) * n)
        batch = {b"batch_label": name.encode(), b"labels": labels[part].tolist(),
                 b"data": images[part].reshape(n, 3072),
                 b"filenames": [b"x.png"] * n}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return images, labels


def write_svhn(root, n: int = 30, seed: int = 0):
    """SVHN's cropped digits as published: MATLAB files with X (32, 32, 3, N) uint8 and y
    (N, 1) in 1..10, 10 standing for the digit 0."""
    import numpy as np
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    (root / "svhn").mkdir(parents=True)
    out = {}
    for name in ("train_32x32.mat", "test_32x32.mat"):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
        savemat(str(root / "svhn" / name), {"X": x, "y": y})
        out[name] = (x, y)
    return out


def test_cifar10_reads_its_python_batches_channel_planes_intact(tmp_path):
    images, labels = write_cifar10(tmp_path)
    data = load_dataset("cifar10", tmp_path, val_size=10)
    assert data.test.images.shape == (12, 3, 32, 32) and data.test.images.dtype == torch.uint8
    assert torch.equal(data.test.images, torch.from_numpy(images[60:]))  # test_batch
    assert torch.equal(data.test.labels, torch.from_numpy(labels[60:]))
    assert len(data.train) + len(data.val) == 60


def test_svhn_reads_its_mat_files_with_10_as_the_digit_0(tmp_path):
    files = write_svhn(tmp_path)
    data = load_dataset("svhn", tmp_path, val_size=5)
    x, y = files["test_32x32.mat"]
    # X[h, w, c, n] -> image n, channel c, row h, column w
    assert int(data.test.images[3, 1, 4, 7]) == int(x[4, 7, 1, 3])
    assert data.test.labels.tolist() == [int(v) % 10 for v in y[:, 0]]
    assert 0 in data.test.labels.tolist() or 10 not in y


def test_missing_truncated_and_unsafe_dataset_files_are_one_line(tmp_path):
    import pickle

    with pytest.raises(UserError, match=r"CIFAR-10 file .*data_batch_1 not found"):
        load_dataset("cifar10", tmp_path / "none")
    with pytest.raises(UserError, match=r"SVHN file .*train_32x32.mat not found"):
        load_dataset("svhn", tmp_path / "none")
    write_cifar10(tmp_path / "cut")
    batch = tmp_path / "cut" / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(UserError, match=r"data_batch_2 is unreadable"):
        load_dataset("cifar10", tmp_path / "cut", val_size=5)

    class Exploit:
        def __reduce__(self):
            return (print, ("ran code",))

    write_cifar10(tmp_path / "evil")
    (tmp_path / "evil" / "cifar-10-batches-py" / "test_batch").write_bytes(
        pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(UserError, match=r"references __builtin__.print, which a CIFAR-10 batch"):
        load_dataset("cifar10", tmp_path / "evil", val_size=5)
    write_svhn(tmp_path / "svcut")
    mat = tmp_path / "svcut" / "svhn" / "test_32x32.mat"
    mat.write_bytes(mat.read_bytes()[:300])
    with pytest.raises(UserError, match=r"test_32x32.mat is unreadable"):
        load_dataset("svhn", tmp_path / "svcut", val_size=5)


def test_the_spec_takes_its_input_shape_and_classes_from_the_dataset():
    from quant_training.train import parse_args, spec_from_args

    spec = spec_from_args(parse_args(["--dataset", "cifar10", "--layers", "conv8,pool,fc16"]))
    assert (spec.in_channels, spec.image_size, spec.num_classes) == (3, 32, 10)
    assert spec.weight_layers[0].input_shape == (3, 32, 32)
    with pytest.raises(UserError, match=r"in_channels=1 does not fit dataset=svhn \(3x32x32"):
        spec_from_args(parse_args(["--dataset", "svhn", "--in-channels", "1"]))


def test_every_registered_dataset_has_a_reader_and_specs_read_without_torch():
    import subprocess
    import sys

    from conftest import ROOT

    from model.spec import SURROGATE_NAMES
    from model.surrogate import SURROGATES
    from quant_training.data import READERS
    from quant_training.datasets import DATASETS

    assert set(READERS) == set(DATASETS) and set(SURROGATES) == set(SURROGATE_NAMES)
    code = ("import sys, study.report, quant_training.config, model.spec; "
            "print(sorted(m for m in ('torch', 'torchvision', 'brevitas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"  # make study-report imports no torch


def test_synthetic_cifar10_is_read_as_cifar10_and_its_classes_differ_as_described(tmp_path):
    """quant_training.synthetic writes the python version's files; class 0's grating runs
    along x (columns differ, rows alike), class 5's along y (90 degrees), even classes are
    warm (R > B), odd ones cool."""
    from quant_training.synthetic import main as synthetic_main

    synthetic_main([str(tmp_path), "--train", "400", "--test", "100"])
    data = load_dataset("cifar10", tmp_path, val_size=50)
    assert (len(data.train), len(data.val), len(data.test)) == (350, 50, 100)
    images, labels = data.test.images.float(), data.test.labels
    for label, varying in ((0, -1), (5, -2)):  # the axis along which the grating varies
        summed = images[labels == label].sum(1)  # [N, H, W], channels added
        across = summed.std(dim=varying).mean()  # spread across the stripes
        along = summed.std(dim=-3 - varying).mean()  # spread along them: noise only
        assert along < across / 2, (label, along, across)
    warm, cool = images[labels % 2 == 0], images[labels % 2 == 1]
    assert warm[:, 0].mean() > 2 * warm[:, 2].mean() and cool[:, 2].mean() > 2 * cool[:, 0].mean()
    with pytest.raises(UserError, match=r"^train=3 and test=1: need train >= 5"):
        synthetic_main([str(tmp_path / "small"), "--train", "3", "--test", "1"])
