"""make paper: it builds from committed files, and every number it prints is in one."""
import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from study import paper

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    study = tmp_path_factory.mktemp("paper")
    for figure in (ROOT / "reports/study").glob("*_mnist.png"):
        shutil.copy(figure, study)
    return study, paper.build(study)


def reread(entry: paper.Source) -> str:
    """The entry's number read again from its file here, with the paper's format."""
    path = ROOT / entry.file
    if path.suffix == ".csv":
        frame = pd.read_csv(path)
        for key, value in entry.where.items():
            frame = frame[frame[key] == value]
        assert len(frame) == 1, entry
        value = float(frame.iloc[0][entry.column])
    else:
        value = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(
            path.read_text())
        for key in entry.where:
            value = value[key]
    return format(entry.scale / value if entry.inverse else value * entry.scale, entry.fmt)


def test_paper_builds_a_pdf_of_four_to_six_pages(built):
    import typst

    study, _ = built
    assert (study / "paper.pdf").read_bytes().startswith(b"%PDF")
    pages = typst.compile(str(study / "paper.typ"), root=str(study), format="png", ppi=20)
    assert 4 <= len(pages) <= 6


def test_every_printed_number_comes_from_a_committed_file(built):
    study, sources = built
    text = (study / "paper.typ").read_text()
    assert len(sources.entries) > 40
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())
    for entry in sources.entries:
        assert entry.file in tracked, entry.file
        assert reread(entry) == entry.text, entry
        assert paper.esc(entry.text) in text or entry.text in text, entry


def test_a_missing_results_file_is_one_line():
    from common.errors import UserError

    with pytest.raises(UserError, match="does not exist; run `make study-report`"):
        paper.read_value("reports/study/missing.csv", {"kind": "snn"}, "energy_uj")


def test_every_fpga_number_names_its_operating_point(built):
    """Both FPGA columns of the energy and accuracy-per-energy tables are named by their
    rate, the operating-point table is cited from the `fpga max rate` and `fpga 1000/s` rows,
    and the measured RTL figures are cited from their own files, at their own point."""
    study, sources = built
    text = (study / "paper.typ").read_text()
    for column in ("FPGA 1,000/s", "FPGA max rate"):
        assert text.count(f"[*{paper.esc(column)}*]") == 2, column
    assert "<tab:fpga>" in text and "<tab:efficiency>" in text
    cited = {(e.where.get("hw"), e.column) for e in sources.entries if isinstance(e.where, dict)}
    for column in ("rate_per_s", "energy_uj", "lut", "bram18"):
        assert ("fpga max rate", column) in cited
    assert ("fpga 1000/s", "accuracy_pct_per_uj") in cited
    rtl = [e for e in sources.entries if e.file.startswith(paper.RTL)]
    assert {e.where[-1] for e in rtl} >= {"throughput_inferences_per_s", "lut", "bram18"}
    assert "xczu7ev at 250 MHz" in text
