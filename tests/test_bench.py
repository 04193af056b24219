"""Benchmarks: the baselines compute our network, and the benchmark commands run end to end."""
import json

import pytest
import torch
from conftest import run_module

from benchmarks.nets import BASELINES, SJ_CUDA_GRAPH, WEIGHTS, bench_spec, build, copy_weights
from model.quantizers import pixels

CPU_BASELINES = [lib for lib in BASELINES if lib != SJ_CUDA_GRAPH]


@pytest.fixture(scope="module")
def images():
    return pixels(torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8,
                                generator=torch.Generator().manual_seed(0)))


def logits_and_grads(model, images):
    model.eval().zero_grad()
    logits = model(images)
    logits.square().sum().backward()
    return logits.detach(), {name: getattr(model, name).weight.grad for name in WEIGHTS}


@pytest.mark.parametrize("library", ["snntorch", "spikingjelly"])
def test_baselines_compute_our_network(images, library):
    """With our weights, snnTorch and SpikingJelly give our logits: the same network.
    SpikingJelly's gradients equal ours too. snnTorch's Leaky evaluates its spike function at
    V - theta - theta R, R = H(V'[t-1] - theta) a detached reset that reset_delay=False undoes
    afterwards, so its surrogate gradients differ wherever V'[t-1] >= theta: not compared."""
    torch.manual_seed(0)
    ours = build("qsnn", bench_spec(4))
    theirs = build(library, bench_spec(4))
    copy_weights(ours, theirs)
    (our_logits, our_grads), (their_logits, their_grads) = (
        logits_and_grads(ours, images), logits_and_grads(theirs, images))
    torch.testing.assert_close(their_logits, our_logits, rtol=1e-5, atol=1e-6)
    assert our_logits.abs().max() > 0
    for name in WEIGHTS if library == "spikingjelly" else ():
        torch.testing.assert_close(their_grads[name], our_grads[name], rtol=1e-4,
                                   atol=1e-5 * our_grads[name].abs().max())


def test_speed_benchmark_writes_results_and_ratios(tmp_path):
    done = run_module("benchmarks.speed", "--timesteps", "2", "--batch", "4", "--seconds",
                      "0.01", "--libraries", "qsnn", *CPU_BASELINES, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "speed_cpu.json").read_text())
    assert {r["library"] for r in report["results"]} == {"qsnn", *CPU_BASELINES}
    for result in report["results"]:
        for phase in ("inference", "training"):
            assert result[phase]["images_per_s"] > 0 and result[phase]["steps"] >= 3
            assert result[phase]["peak_memory_mib"] >= result["baseline_memory_mib"] > 0
    (row,) = report["ratios"]["training"]
    assert row["qsnn / snntorch"] == pytest.approx(row["qsnn img/s"] / row["snntorch img/s"])
    assert "qsnn / spikingjelly" in (tmp_path / "speed_cpu.md").read_text()


@pytest.mark.parametrize("args, words", [
    (["--libraries", "torchsnn"], "library='torchsnn' is not supported; allowed: qsnn"),
    (["--timesteps", "0"], "timesteps=0 must be an integer >= 1"),
    (["--libraries", SJ_CUDA_GRAPH], "is a CUDA-graph mode: use it with --device cuda"),
])
def test_speed_benchmark_bad_options_are_one_line_errors(tmp_path, args, words):
    done = run_module("benchmarks.speed", *args, "--out", str(tmp_path))
    assert done.returncode == 2 and words in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


def test_step_graph_benchmark_engines_agree(tmp_path):
    done = run_module("benchmarks.step_graph", "--timesteps", "2", "--seconds", "0.01",
                      "--max-images", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "step_graph.json").read_text())["results"]
    assert [r["engine"] for r in results] == ["pytorch-step", "pytorch-forward", "qonnx",
                                              "onnxruntime"]
    for result in results:
        assert result["images_per_s"] > 0 and result["logits_identical_to_qonnx"]


def test_training_step_profile_writes_its_table(tmp_path):
    done = run_module("benchmarks.profile_step", "--device", "cpu", "--timesteps", "1",
                      "--batch", "4", "--steps", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "profile_step_cpu.md").read_text()
    assert "## eager:" in text and "ms per step" in text and "aten::" in text
    assert "CUDA graph" not in text  # a CPU step runs eagerly
