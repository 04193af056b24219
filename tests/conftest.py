import os
import subprocess
import sys
from pathlib import Path

import pytest

from quant_training.data import load_dataset, resolve_data_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The dataset root that CI and `make test` point at (QSNN_DATA_DIR)."""
    return resolve_data_dir(None)


@pytest.fixture(scope="session")
def mnist_small(data_dir):
    """MNIST with 600 training images (validation and test sets unchanged)."""
    return load_dataset("mnist", data_dir, limit=600)


def run_module(module: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run `python -m module args` as a user would; returns the finished process."""
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
