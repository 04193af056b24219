"""The container installs the same pinned set as the Makefile, and its recipe lints clean."""
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

DOCKERFILE = ROOT / "docker" / "Dockerfile"


def test_dockerfile_installs_through_make_setup_from_the_same_files():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim-\w+$", text, re.M)  # pinned base
    assert "COPY Makefile requirements.txt requirements-test.txt ./" in text
    assert "make setup" in text and "pip install -r" not in text
    makefile = (ROOT / "Makefile").read_text()
    assert "-r requirements.txt" in makefile and "--no-deps -r requirements-test.txt" in makefile


def test_every_requirement_is_pinned():
    for name in ("requirements.txt", "requirements-test.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][A-Za-z0-9.+]*", line), (name, line)


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
