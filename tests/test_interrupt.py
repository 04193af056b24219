"""A training run killed in the middle of an epoch resumes to the weights of an uninterrupted
run."""
import os
import subprocess
import sys
import time

import torch
from conftest import ROOT, run_module

from quant_training.checkpoint import read_checkpoint


def test_run_killed_mid_epoch_resumes_to_identical_weights(tmp_path, data_dir):
    args = ["--timesteps", "1", "--limit", "2048", "--val-size", "256", "--batch-size", "16",
            "--epochs", "3", "--device", "cpu", "--data-dir", str(data_dir),
            "--runs-dir", str(tmp_path)]
    straight = run_module("quant_training.train", *args, "--name", "straight")
    assert straight.returncode == 0, straight.stderr
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)}
    victim = subprocess.Popen([sys.executable, "-m", "quant_training.train", *args,
                               "--name", "killed"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = tmp_path / "killed" / "history.csv"
    deadline = time.monotonic() + 300
    while not (history.exists() and len(history.read_text().splitlines()) >= 2):
        assert victim.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.4)  # into the second epoch
    victim.kill()
    victim.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists()
    done_before_kill = read_checkpoint(tmp_path / "killed" / "last.pt")["progress"]["epochs_done"]
    assert done_before_kill < 3
    resumed = run_module("quant_training.train", *args, "--name", "killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a = read_checkpoint(tmp_path / "straight" / "last.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "killed" / "last.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "killed" / "metrics.json").exists()
