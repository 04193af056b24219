"""python -m hw_model.validate: each cost model against its external reference."""
import math

import pytest

from hw_model import validate


def test_imc_dense_reproduces_spikesims_released_code_on_its_own_case():
    first, *departures = validate.imc_lines()
    assert abs(first.error) < 1e-6  # SpikeSim printed 15906934.026240002 pJ when run
    # by hand: SpikeSim's case spends 1024+256+512+256+512+1024+256 = 3,840 PE cycles per step;
    # counting the three pooled layers before their 2x2 pool gives 6,144
    assert departures[0].compared.endswith(f"x{6144 / 3840:.5g}")
    # conv1 (1,024 PE cycles per step) at 8 bit-serial cycles once instead of 5 steps
    assert departures[1].ours / departures[0].ours == pytest.approx(
        (6144 * 5 + 1024 * (8 - 5)) / (6144 * 5))
    assert all(line.reference is None and line.ours > 0 for line in departures)


def test_fpga_lines_compare_with_the_committed_rtl_measurements():
    lines = {(line.model, line.compared): line for line in validate.fpga_lines()}
    cycles = lines[("fpga analytic", "cycles per inference")]
    assert cycles.reference == 4096 and cycles.error == pytest.approx(0.0)
    luts = lines[("fpga FINN estimate", "LUTs")]
    assert (luts.ours, luts.reference) == (116923, 36463)  # FINN's estimate, yosys's mapping
    assert all("reports/runs/" in line.source or "TOOLCHAIN" in line.source
               for line in lines.values())


def test_the_table_states_every_source_and_marks_lines_without_a_reference(capsys):
    validate.main([])
    text = capsys.readouterr().out
    table = validate.validation_table()
    assert table["reference source"].str.len().gt(20).all()
    assert set(table["model"]) >= {"imc dense", "fpga analytic", "loihi", "digital"}
    no_reference = table[table["reference"].isna()]
    assert no_reference["error"].isna().all() and not no_reference.empty
    assert "| imc dense" in text and math.isfinite(table["ours"].astype(float).sum())
