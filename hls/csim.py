"""Build and run the C simulation (g++ and the open-source ap_types headers), and compare it
with PyTorch and the QONNX step graph on the same input frames."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError
from export.step_graph import StepModule, state_names, state_shapes
from model import timesteps
from model.quantizers import pixels
from model.spec import ModelSpec
from model.timesteps import FRAME_SEED

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


def input_frames(spec: ModelSpec, images: torch.Tensor) -> np.ndarray:
    """uint8 [N, T, C, H, W]: the image at every step (direct) or its Bernoulli spike frames
    (rate), drawn as export.verify draws them."""
    if spec.encoding == "direct":
        return images[:, None].repeat(1, spec.timesteps, 1, 1, 1).numpy().astype(np.uint8)
    generator = torch.Generator().manual_seed(FRAME_SEED)
    frames = [timesteps.input_frames(spec, pixels(image[None]), generator)[:, 0]
              for image in images]
    return torch.stack(frames).numpy().astype(np.uint8)


def run_csim(executable: Path, frames: np.ndarray, spec: ModelSpec, shapes: list[list[int]]
             ) -> dict[str, np.ndarray]:
    """Membrane codes [N, T, neurons] per LIF stage (`shapes`: their membranes' shapes) and
    the readout's accumulators [N, T, classes]: the record tb.cpp writes per step."""
    work = executable.parent
    n, steps = frames.shape[:2]
    with open(work / "frames.bin", "wb") as f:
        f.write(np.array([n, steps], dtype=np.int32).tobytes())
        f.write(np.ascontiguousarray(frames).tobytes())
    done = subprocess.run([str(executable), str(work / "frames.bin"), str(work / "csim_out.bin")],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise UserError(f"C simulation failed: {done.stderr.strip() or done.returncode}")
    raw = (work / "csim_out.bin").read_bytes()
    names = state_names(spec)
    record = np.dtype([*((name, np.int16, (int(np.prod(shape)),))
                         for name, shape in zip(names, shapes, strict=True)),
                       ("logits", np.int32, (spec.num_classes,))])
    data = np.frombuffer(raw, dtype=record).reshape(n, steps)
    return {name: data[name] for name in (*names, "logits")}


def torch_reference(model, spec: ModelSpec, frames: np.ndarray) -> dict[str, np.ndarray]:
    """PyTorch on the same frames: membrane codes (V / step) and readout outputs per step."""
    module = StepModule(model.eval().cpu())
    zeros = [np.zeros((1, *shape), np.float32) for shape in state_shapes(module.snn)]

    def step(x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        with torch.no_grad():
            logits, *states = module(torch.from_numpy(x), *map(torch.from_numpy, states))
        return logits.numpy(), [state.numpy() for state in states]

    return _record_steps(step, spec, frames, zeros)


def step_input(spec: ModelSpec, frame: torch.Tensor) -> torch.Tensor:
    """The step graph's x for a uint8 frame: pixels p / 256 (direct) or spikes 0/1 (rate)."""
    return pixels(frame) if spec.encoding == "direct" else frame.float()


def qonnx_reference(graph_path: Path, spec: ModelSpec, frames: np.ndarray) -> dict[str, np.ndarray]:
    """The exported step graph (qonnx execution) on the same frames, as torch_reference."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    graph = ModelWrapper(str(graph_path))
    names = state_names(spec)
    zeros = [np.zeros(graph.get_tensor_shape(f"in_{n}"), np.float32) for n in names]

    def step(x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        result = execute_onnx(graph, {"x": x, **dict(zip((f"in_{n}" for n in names),
                                                         states, strict=True))})
        return result["logits_t"], [result[f"out_{n}"] for n in names]

    return _record_steps(step, spec, frames, zeros)


def _record_steps(step, spec: ModelSpec, frames: np.ndarray, zeros: list[np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """Run `step` over every image's frames (model.timesteps.run_timesteps) and record, per
    image and step, the membrane codes (V / step) and the output layer's logits."""
    names = state_names(spec)
    out: dict[str, list] = {name: [] for name in (*names, "logits")}

    def recording(frame: np.ndarray, states: list) -> tuple[np.ndarray, list]:
        logits, states = step(step_input(spec, torch.from_numpy(frame[None])).numpy(), states)
        for name, state in zip(names, states, strict=True):
            out[name][-1].append((state[0] / spec.state_step).flatten())
        out["logits"][-1].append(logits[0])
        return logits, states

    for image_frames in frames:
        for name in out:
            out[name].append([])
        timesteps.run_timesteps(recording, image_frames, zeros, spec)
    return {name: np.stack([np.stack(steps) for steps in values]) for name, values in out.items()}


def compare(csim: dict[str, np.ndarray], reference: dict[str, np.ndarray],
            logit_frac: int) -> dict:
    """Bit-exact comparison of membranes and logits; predictions from the summed logits."""
    names = [name for name in reference if name != "logits"]
    report: dict = {"first_mismatch": None}
    for name in names:
        equal = np.array_equal(csim[name].astype(np.float64), reference[name].astype(np.float64))
        report[f"{name}_bit_exact"] = bool(equal)
        if not equal and report["first_mismatch"] is None:
            image, step = np.argwhere((csim[name] != reference[name]).any(-1))[0]
            report["first_mismatch"] = f"{name} differs (image {image}, t={step + 1})"
    logits = csim["logits"].astype(np.float64) * 2.0**-logit_frac
    report["logits_exact"] = bool(np.array_equal(logits, reference["logits"].astype(np.float64)))
    report["identical_predictions"] = int(
        (logits.sum(1).argmax(-1) == reference["logits"].sum(1).argmax(-1)).sum())
    report["passed"] = all(report[f"{n}_bit_exact"] for n in names) and report["logits_exact"]
    return report
