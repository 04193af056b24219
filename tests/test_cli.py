"""End to end through the command line: the smoke run, bad input, resume, make eval."""
import json
import os
import subprocess

import pandas as pd
import pytest
import torch
from conftest import ROOT, run_module

from quant_training.checkpoint import read_checkpoint

SMOKE_MIN_TEST_ACCURACY_PCT = 80.0


def test_make_qat_smoke_run_learns(tmp_path, data_dir):
    """The README's smoke run: T=2, 4-bit weights, 1 epoch on 2,000 images."""
    env = {**os.environ, "TQDM_DISABLE": "1"}
    done = subprocess.run(
        ["make", "--no-print-directory", "qat", "TIMESTEPS=2", "WBITS=4", "EPOCHS=1",
         "LIMIT=2000", f"DATA_DIR={data_dir}", f"RUNS_DIR={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = tmp_path / "snn_mnist_T2_w4_s8_direct_seed0_n2000"
    assert f"run folder: {run_dir}" in done.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_accuracy_pct"] >= SMOKE_MIN_TEST_ACCURACY_PCT
    assert metrics["spec"]["weight_bits"] == 4 and metrics["spec"]["timesteps"] == 2
    assert metrics["data"]["train_images"] == 2000 and metrics["data"]["val_images"] == 5000
    assert set(metrics["spikes_per_image"]) == {"lif1", "lif2", "lif3"}
    assert all(0 < rate < 1 for rate in metrics["firing_rate"].values())
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [1]
    assert history["val_accuracy_pct"].iloc[0] == metrics["val_accuracy_pct"]

    shown = run_module("quant_training.evaluate", str(run_dir), "--data-dir", str(data_dir))
    assert shown.returncode == 0, shown.stderr
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["test"]["accuracy_pct"] == pytest.approx(metrics["test_accuracy_pct"])


@pytest.mark.parametrize("args, words", [
    (["--weight-bits", "3"], "weight_bits=3 is not supported; allowed: 2, 4, 8, 32"),
    (["--timesteps", "0"], "timesteps=0 must be an integer >= 1"),
    (["--dataset", "cifar"], "dataset='cifar' is not supported"),
    (["--colour", "red"], "unrecognized arguments: --colour red"),
    (["--timesteps", "two"], "argument --timesteps: invalid int value: 'two'"),
    (["--epochs", "0"], "epochs=0 must be an integer >= 1"),
    (["--data-dir", "/nonexistent/data"], "MNIST not found in /nonexistent/data/MNIST/raw"),
])
def test_bad_options_give_one_line_errors_and_no_run_folder(tmp_path, data_dir, args, words):
    runs = tmp_path / "runs"
    done = run_module("quant_training.train", "--limit", "64", "--epochs", "1",
                      "--data-dir", str(data_dir), "--runs-dir", str(runs), *args)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {done.stderr.strip()[7:]}"]
    assert words in done.stderr
    assert not runs.exists()


def test_eval_of_missing_or_corrupt_run_gives_one_line_errors(tmp_path):
    missing = run_module("quant_training.evaluate", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    run_dir = tmp_path / "broken"
    run_dir.mkdir()
    (run_dir / "best.pt").write_bytes(b"not a checkpoint")
    corrupt = run_module("quant_training.evaluate", str(run_dir))
    assert corrupt.returncode == 2 and "is corrupt or not loadable safely" in corrupt.stderr
    assert len(corrupt.stderr.strip().splitlines()) == 1


def test_resume_continues_to_the_same_weights_as_an_uninterrupted_run(tmp_path, data_dir):
    common = ["--timesteps", "1", "--limit", "256", "--val-size", "256", "--batch-size", "64",
              "--data-dir", str(data_dir), "--runs-dir", str(tmp_path), "--device", "cpu"]
    straight = run_module("quant_training.train", *common, "--epochs", "2", "--name", "straight")
    assert straight.returncode == 0, straight.stderr
    first = run_module("quant_training.train", *common, "--epochs", "1", "--name", "resumed")
    assert first.returncode == 0, first.stderr
    (tmp_path / "resumed" / "metrics.json").unlink()  # as if killed before finishing
    again = run_module("quant_training.train", *common, "--epochs", "2", "--name", "resumed")
    assert again.returncode == 2 and "already exists (resume it with --resume)" in again.stderr
    changed = run_module("quant_training.train", *common, "--epochs", "2", "--name", "resumed",
                         "--resume", "--seed", "7")
    assert changed.returncode == 2 and "seed: run has 0, asked 7" in changed.stderr
    resumed = run_module("quant_training.train", *common, "--epochs", "2", "--name", "resumed",
                         "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a = read_checkpoint(tmp_path / "straight" / "last.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "resumed" / "last.pt")["state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = pd.read_csv(tmp_path / "resumed" / "history.csv")
    assert list(history["epoch"]) == [1, 2]
