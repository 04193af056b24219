"""NIR import: a network trained and exported by snnTorch, our own `make nir` files, PTQ,
`make qat FROM=`, and the refusals (one line each)."""
import json

import nir
import numpy as np
import pytest
import torch
from conftest import run_module
from test_export import tiny_model
from test_nir import LIVELY

from common.errors import UserError
from export.nir.nir_check import nir_twin
from export.nir.nir_export import nir_graph, write_graph
from model.quantizers import pixels
from model.spec import ModelSpec
from model.timesteps import input_frames, run_timesteps
from quant_training.checkpoint import load_model
from quant_training.nir_import import Timing, float_model, import_graph, read_graph
from quant_training.nir_import import main as import_main
from quant_training.ptq import grid_max, leak_shift, quantized_spec
from quant_training.ptq import main as ptq_main

snn = pytest.importorskip("snntorch")
from snntorch.export_nir import export_to_nir  # noqa: E402

SNNTORCH_TIMING = Timing(dt=1e-4, discretisation="euler")  # snnTorch's export: dt = 1e-4, Euler
STEPS = 4
IMAGES = 200  # test images compared


def leaky(shape, threshold, output=False):
    """snnTorch's Leaky as its NIR writer needs it (beta, threshold shaped like the neurons),
    reset to zero: the reset NIR's v_reset = 0 states."""
    return snn.Leaky(beta=torch.full(shape, 0.5), threshold=torch.full(shape, threshold),
                     init_hidden=True, reset_mechanism="zero", output=output)


def snntorch_cnn():
    """conv-LIF-avgpool-conv-LIF-avgpool-fc-LIF, no biases, a threshold per layer (imported
    as one theta = 0.25, the layers' weights rescaled)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 5, bias=False), leaky((4, 24, 24), 0.25), nn.AvgPool2d(2),
        nn.Conv2d(4, 8, 5, bias=False), leaky((8, 8, 8), 0.5), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(128, 10, bias=False), leaky((10,), 0.3, output=True))


def run_snntorch(net, images):
    """T steps of the image p / 256 held at the input: (output spike counts [B, 10], the
    spikes of every Leaky [T, B, ...] in order)."""
    leakies = [m for m in net if isinstance(m, snn.Leaky)]
    seen = {m: [] for m in leakies}
    hooks = [m.register_forward_hook(
        lambda module, args, out: seen[module].append(out[0] if isinstance(out, tuple) else out))
        for m in leakies]
    for m in leakies:
        m.reset_mem()
    x = pixels(images)
    try:
        counts = sum(net(x)[0] for _ in range(STEPS))
    finally:
        for hook in hooks:
            hook.remove()
    return counts, [torch.stack(seen[m]) for m in leakies]


@pytest.fixture(scope="module")
def snntorch_file(tmp_path_factory, mnist_small):
    """A tiny snnTorch CNN trained for one pass over 600 images, exported by snnTorch."""
    torch.manual_seed(0)
    net = snntorch_cnn()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    train = mnist_small.train
    for first in range(0, len(train), 50):
        counts, _ = run_snntorch(net, train.images[first:first + 50])
        loss = torch.nn.functional.cross_entropy(5 * counts / STEPS, train.labels[first:first + 50])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    path = tmp_path_factory.mktemp("snntorch") / "snntorch.nir"
    nir.write(path, export_to_nir(net, torch.zeros(1, 1, 28, 28), ignore_dims=[0]))
    return path, net


def test_snntorch_network_is_reproduced(snntorch_file, mnist_small):
    """Imported, our float network gives snnTorch's spikes (>= 99.99 % of the (step, image,
    neuron) entries: the two spike at v > theta and V >= theta and sum the convolutions in
    another order, so only a membrane within float32 rounding of theta may differ) and its
    spike counts as logits (predictions on >= 99.5 % of the images, counts within one spike)."""
    path, net = snntorch_file
    imported = import_graph(read_graph(path), "mnist", STEPS, SNNTORCH_TIMING)
    spec = imported.spec
    assert spec.layers == ("conv4k5s1p0", "avgpool2", "conv8k5s1p0", "avgpool2", "fc10")
    assert (spec.beta, spec.threshold, spec.reset, spec.readout) == (0.5, 0.25, "zero", "sum")
    model = float_model(imported)
    images = mnist_small.test.images[:IMAGES]
    with torch.no_grad():
        theirs, their_spikes = run_snntorch(net, images)
        logits, spikes = run_network(model, input_frames(spec, pixels(images)))
    assert sum(s.sum() for s in their_spikes) > 1000  # every layer is alive
    for a, b in zip(spikes, their_spikes, strict=True):
        assert a.shape == b.shape and b.sum() > 0
        assert (a == b).float().mean() >= 0.9999
    same = (logits.argmax(1) == theirs.argmax(1)).float().mean()
    assert same >= 0.995 and (logits - theirs).abs().max() <= 1
    with torch.no_grad():
        assert torch.equal(model(pixels(images)), logits)  # forward = step by step


def test_round_trip_of_our_own_nir_file(tmp_path, mnist_small):
    """`make nir`'s file imports as the network NIR states (its NIR twin: the same weights, a
    float membrane), every spike and logit equal; T, beta, theta and reset from the file."""
    original = tiny_model(ModelSpec(**LIVELY))
    write_graph(nir_graph(original), tmp_path / "model.nir")
    imported = import_graph(read_graph(tmp_path / "model.nir"), "mnist", None, Timing())
    spec = imported.spec
    assert spec.layers == ("conv4k3s1p1", "maxpool2", "conv8k3s1p1", "maxpool2", "fc16")
    assert (spec.timesteps, spec.beta, spec.threshold, spec.reset) == (3, 0.5, 0.25, "subtract")
    twin, model = nir_twin(original), float_model(imported)
    frames = input_frames(spec, pixels(mnist_small.test.images[:50]))
    with torch.no_grad():
        (logits, spikes), (twin_logits, twin_spikes) = (run_network(model, frames),
                                                        run_network(twin, frames))
    assert torch.equal(logits, twin_logits)
    for a, b in zip(spikes, twin_spikes, strict=True):
        assert torch.equal(a, b) and b.sum() > 0


def run_network(model, frames):
    """Our network step by step (`SpikingCNN.step`, the definition): (logits, the spikes of
    every LIF layer [T, B, ...])."""
    spikes = []

    def step(frame, membranes):
        out, membranes, step_spikes = model.step(model.input_current(frame), membranes)
        spikes.append(step_spikes)
        return out, membranes

    logits, _ = run_timesteps(step, frames, [None] * len(model.neurons()), model.spec)
    return logits, [torch.stack(layer) for layer in zip(*spikes, strict=True)]


def chain_graph(**changes):
    """Input (1, 28, 28) -> Conv2d 4x3x3 -> LIF -> Flatten -> Affine -> Output, with nodes
    replaced or edges added by `changes` (nodes=..., edges=...)."""
    rng = np.random.default_rng(0)
    shape = (4, 26, 26)
    lif = nir.LIF(tau=np.full(shape, 2.0), r=np.full(shape, 2.0), v_leak=np.zeros(shape),
                  v_threshold=np.ones(shape))
    nodes = {"input": nir.Input(np.array([1, 28, 28])),
             "conv": nir.Conv2d(input_shape=(28, 28), weight=rng.normal(size=(4, 1, 3, 3)),
                                stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(4)),
             "lif": lif, "flat": nir.Flatten(np.array(shape)),
             "fc": nir.Linear(weight=rng.normal(size=(10, int(np.prod(shape))))),
             "output": nir.Output(np.array([10]))}
    nodes.update(changes.get("nodes", {}))
    edges = [("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "fc"),
             ("fc", "output"), *changes.get("edges", [])]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_a_hand_made_graph_imports():
    imported = import_graph(chain_graph(), "mnist", 2, Timing())
    assert imported.spec.layers == ("conv4k3s1p0",)
    assert imported.spec.beta == pytest.approx(np.exp(-0.5)) and imported.spec.reset == "zero"
    gain = (1 - np.exp(-0.5)) * 2  # exp discretisation: (1 - beta) r
    assert np.allclose(imported.weights["conv1"], chain_graph().nodes["conv"].weight * gain,
                       rtol=1e-6)


@pytest.mark.parametrize("changes, message", [
    ({"nodes": {"rec": nir.Linear(weight=np.eye(4))},
      "edges": [("lif", "rec"), ("rec", "conv")]},
     r"^edge rec -> conv is recurrent \(it closes a loop back to 'conv'\); "),
    ({"nodes": {"lif": nir.LIF(tau=np.linspace(1, 3, 4 * 26 * 26).reshape(4, 26, 26),
                               r=np.full((4, 26, 26), 2.0), v_leak=np.zeros((4, 26, 26)),
                               v_threshold=np.ones((4, 26, 26)))}},
     r"^node 'lif': tau varies within the layer \(1 \.\. 3\); ModelSpec has one value"),
    ({"nodes": {"flat": nir.Scale(scale=np.ones((4, 26, 26)))}},
     r"^node 'flat' \(Scale\): node type Scale is not supported; supported: Input, "),
    ({"nodes": {"lif": nir.Delay(delay=np.ones((4, 26, 26)))}},
     r"^node 'lif' \(Delay\): delays are not supported"),
])
def test_unsupported_graphs_are_one_line(changes, message):
    with pytest.raises(UserError, match=message) as err:
        import_graph(chain_graph(**changes), "mnist", 2, Timing())
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_nir_is_one_line(tmp_path):
    (tmp_path / "model.nir").write_text("not a NIR graph")
    done = run_module("quant_training.nir_import", str(tmp_path / "model.nir"),
                      "--dataset", "mnist", "--name", "x", "--runs-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'model.nir'} is not a NIR file (OSError: Unable to synchronously "
        f"open file (file signature not found))"]


def test_ptq_rounding_rules():
    assert [leak_shift(b) for b in (0.9, 0.7, 0.5, 0.3, 0.2)] == [1.0, 0.5, 0.5, 0.25, 0.25]
    assert (grid_max(1.0), grid_max(0.5), grid_max(0.3)) == (4.0, 2.0, 2.0)
    spec = quantized_spec(ModelSpec(weight_bits=32, state_bits=32, beta=0.6, threshold=0.3))
    # 8-bit membrane in +-2: step 1/64; 0.3 * 64 = 19.2 -> 19
    assert (spec.weight_bits, spec.state_bits, spec.beta, spec.weight_scale) == (4, 8, 0.5, "mse")
    assert (spec.state_max, spec.threshold) == (2.0, 19 / 64)


@pytest.fixture(scope="module")
def runs_dir_with_import(tmp_path_factory, snntorch_file, data_dir):
    """`python -m quant_training.nir_import` on the snnTorch file: runs/snntorch/."""
    runs = tmp_path_factory.mktemp("runs")
    import_main([str(snntorch_file[0]), "--dataset", "mnist", "--name", "snntorch",
                 "--timesteps", str(STEPS), "--dt", "1e-4", "--discretisation", "euler",
                 "--runs-dir", str(runs), "--data-dir", str(data_dir)])
    return runs


def test_import_ptq_and_qat_from(runs_dir_with_import, data_dir):
    """The imported run opens as a checkpoint (weights only), PTQ reports its table, and
    `train --from` fine-tunes it on the fixed point."""
    run = runs_dir_with_import / "snntorch"
    _, spec, payload = load_model(run / "best.pt")
    metrics = json.loads((run / "metrics.json").read_text())
    assert spec.weight_bits == 32 and "forward Euler at dt = 0.0001" in \
        payload["nir_import"]["conversions"]["time"]
    assert (run / "profile.json").is_file() and metrics["test_images"] == 10000
    ptq_main([str(run), "--images", "100", "--data-dir", str(data_dir)])
    report = json.loads((run / "ptq.json").read_text())
    assert report["quantized_spec"]["weight_bits"] == 4
    assert set(report["rounded"]) >= {"beta", "threshold", "membrane", "conv1 weights"}
    assert report["table"].count("\n") == 3
    done = run_module("quant_training.train", "--from", str(run), "--epochs", "1",
                      "--limit", "300", "--val-size", "100", "--name", "qat",
                      "--runs-dir", str(runs_dir_with_import), "--data-dir", str(data_dir),
                      "--device", "cpu")
    assert done.returncode == 0, done.stderr
    qat = json.loads((runs_dir_with_import / "qat" / "metrics.json").read_text())
    assert qat["spec"]["weight_bits"] == 4 and qat["spec"]["state_bits"] == 8
    assert (qat["spec"]["weight_scale"], qat["spec"]["readout"]) == ("mse", "sum")
    assert qat["spec"]["layers"] == spec.to_dict()["layers"]
    assert qat["started_from"]["run"] == str(run)
