"""Build and run the C simulation (g++ and the open-source ap_types headers) as a lockstep
engine (export.lockstep), compared with PyTorch and the QONNX step graph on the same frames."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from common.errors import UserError
from export.lockstep import Engine, Trace
from model.spec import ModelSpec

EXECUTABLE = "csim"


def ap_types_dir() -> Path:
    """hls4ml's bundled copy of the ap_types headers (ap_int.h, ap_fixed.h)."""
    import hls4ml

    path = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise UserError(f"ap_types headers not found in {path}; reinstall with `make setup`")
    return path


def compile_csim(project: Path) -> Path:
    command = ["g++", "-O2", "-std=c++14", "-w", f"-I{ap_types_dir()}", f"-I{project}",
               str(project / "snn.cpp"), str(project / "tb.cpp"), "-o", str(project / EXECUTABLE)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except FileNotFoundError:
        raise UserError("g++ was not found; install a C++ compiler (Debian: build-essential)"
                        ) from None
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if "error" in line),
                     done.stderr[:200])
        raise UserError(f"C simulation did not compile: {first}")
    return project / EXECUTABLE


class CSim(Engine):
    """The compiled C simulation as a lockstep engine: tb.cpp runs every image's T frames from
    zero membranes and records, per step, each LIF stage's membrane codes (int16, (C, H, W)
    order) and the readout's accumulators (int32), whose scale is 2^-logit_frac."""

    name = "csim"

    def __init__(self, executable: Path, spec: ModelSpec, shapes: list[list[int]],
                 logit_frac: int) -> None:
        self.executable, self.spec, self.shapes = executable, spec, shapes
        self.logit_frac = logit_frac

    def run(self, frames: np.ndarray) -> Trace:
        work = self.executable.parent
        n, steps = frames.shape[:2]
        with open(work / "frames.bin", "wb") as f:
            f.write(np.array([n, steps], dtype=np.int32).tobytes())
            f.write(np.ascontiguousarray(frames, dtype=np.uint8).tobytes())
        done = subprocess.run([str(self.executable), str(work / "frames.bin"),
                               str(work / "csim_out.bin")], capture_output=True, text=True,
                              timeout=3600)
        if done.returncode != 0:
            raise UserError(f"C simulation failed: {done.stderr.strip() or done.returncode}")
        names = [f"membrane_{index}" for index in range(1, len(self.shapes) + 1)]
        record = np.dtype([*((name, np.int16, (int(np.prod(shape)),))
                             for name, shape in zip(names, self.shapes, strict=True)),
                           ("logits", np.int32, (self.spec.num_classes,))])
        data = np.frombuffer((work / "csim_out.bin").read_bytes(), dtype=record)
        data = data.reshape(n, steps)
        return Trace(data["logits"].astype(np.float64) * 2.0**-self.logit_frac,
                     membranes=[data[name].astype(np.float64) for name in names])
