"""NIR export: the LIF discretisation, the graph, the sinabs round trip, `make nir`, bad inputs."""
import json
import math

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_module
from test_export import TINY, tiny_model

from common.errors import CheckFailed, UserError
from export.nir.nir_check import check_round_trip, load_with_sinabs
from export.nir.nir_export import DT, euler_tau, lif_r, lif_tau, nir_graph, write_graph
from export.nir.nir_export import main as nir_main
from model.spec import ModelSpec
from quant_training.checkpoint import save_checkpoint
from quant_training.config import TrainConfig

# Random weights with a lower threshold: every LIF layer of the tiny network spikes.
LIVELY = dict(TINY, threshold=0.25)
CHAIN = ["Input", "Conv2d", "LIF", "SumPool2d", "Threshold", "Conv2d", "LIF", "SumPool2d",
         "Threshold", "Flatten", "Affine", "LIF", "Affine", "Output"]
# LeNet-5-like: 28 -conv k5-> 24 -avgpool2-> 12 -conv k5-> 8 -avgpool2-> 4, then fc16.
LENET = dict(LIVELY, layers="conv4k5p0,avgpool2,conv8k5p0,avgpool2,fc16")
LENET_CHAIN = ["Input", "Conv2d", "LIF", "AvgPool2d", "Conv2d", "LIF", "AvgPool2d", "Flatten",
               "Affine", "LIF", "Affine", "Output"]


def chain_of(graph):
    """The node types along the graph's edges from `input`."""
    after, name, chain = dict(graph.edges), "input", ["Input"]
    while name in after:
        name = after[name]
        chain.append(type(graph.nodes[name]).__name__)
    return chain


@pytest.mark.parametrize("beta", [0.5, 0.25, 0.75, 0.9])
def test_lif_constants_give_beta_per_step(beta):
    """NIR's continuous LIF, tau dv/dt = -v + r I with I held over one step dt, integrated
    finely from v0, ends at our beta v0 + I; forward Euler needs tau = dt / (1 - beta)."""
    tau, r, v0, current = lif_tau(beta), lif_r(beta), 0.3, 0.7
    assert math.exp(-DT / tau) == pytest.approx(beta, rel=1e-15)
    substeps = 100_000
    v = v0
    for _ in range(substeps):
        v += DT / substeps * (r * current - v) / tau
    assert v == pytest.approx(beta * v0 + current, abs=1e-5)
    assert 1 - DT / euler_tau(beta) == pytest.approx(beta) and DT / euler_tau(beta) * r == 1


def test_lif_constants_are_exact_in_float32_for_beta_one_half():
    tau = torch.tensor(lif_tau(0.5), dtype=torch.float32)
    assert torch.exp(-DT / tau).item() == 0.5 and lif_r(0.5) == 2.0
    assert lif_tau(0.5) == pytest.approx(1 / math.log(2)) and euler_tau(0.5) == 2.0


@pytest.fixture(scope="module")
def lively():
    spec = ModelSpec(**LIVELY)
    return spec, tiny_model(spec)


def test_graph_states_the_network(tmp_path, lively):
    spec, model = lively
    graph = nir_graph(model)
    for pre, post in graph.edges:  # the shapes agree along every edge
        assert np.array_equal(graph.nodes[pre].output_type["output"],
                              graph.nodes[post].input_type["input"]), (pre, post)
    write_graph(graph, tmp_path / "model.nir")
    read = nir.read(tmp_path / "model.nir")
    assert chain_of(read) == CHAIN
    scales = read.metadata["weight_scales"]
    for layer in ("conv1", "conv2", "fc1", "fc2"):
        weight = read.nodes[layer].weight
        assert np.array_equal(weight, getattr(model, layer).quant_weight().value.detach().numpy())
        assert np.array_equal(weight / scales[layer], np.round(weight / scales[layer]))
        assert not read.nodes[layer].bias.any()
    for layer, shape in (("conv1_lif", (4, 28, 28)), ("conv2_lif", (8, 14, 14)),
                         ("fc1_lif", (16,))):
        lif = read.nodes[layer]
        assert lif.tau.shape == shape and np.all(lif.tau == np.float32(1 / math.log(2)))
        assert np.all(lif.r == 2) and not lif.v_leak.any() and np.all(lif.v_threshold == 0.25)
        assert lif.metadata["beta"] == 0.5 and lif.metadata["tau_forward_euler"] == 2.0
    assert np.all(read.nodes["conv1_spikes"].threshold == 0.5)
    assert read.nodes["conv1_pool"].kernel_size.tolist() == [2, 2]
    assert json.loads(read.metadata["spec"]) == spec.to_dict() and read.metadata["dt"] == DT
    assert set(read.metadata["not_represented"]) == {
        "membrane_grid", "input_quantizer", "spike_at_threshold", "readout"}


def test_max_pool_of_spikes_is_the_sum_pool_and_threshold_in_sinabs(lively):
    _, model = lively
    net = load_with_sinabs(nir_graph(model), timesteps=3)
    spikes = torch.bernoulli(torch.full((6, 4, 28, 28), 0.3),
                             generator=torch.Generator().manual_seed(0))
    pooled = net.get_submodule("conv1_spikes")(net.get_submodule("conv1_pool")(spikes))
    assert torch.equal(pooled, F.max_pool2d(spikes, 2))


def test_average_pools_are_written_as_avg_pool_nodes(tmp_path):
    """Each avgpool2 is one AvgPool2d (kernel 2, stride 2, padding 0, no threshold after it);
    read back from the file, with the shapes of LeNet's maps."""
    write_graph(nir_graph(tiny_model(ModelSpec(**LENET))), tmp_path / "model.nir")
    read = nir.read(tmp_path / "model.nir")
    assert chain_of(read) == LENET_CHAIN
    for name, before, after in (("conv1_pool", (4, 24, 24), (4, 12, 12)),
                                ("conv2_pool", (8, 8, 8), (8, 4, 4))):
        pool = read.nodes[name]
        assert isinstance(pool, nir.AvgPool2d)
        assert pool.kernel_size.tolist() == [2, 2] and pool.stride.tolist() == [2, 2]
        assert pool.padding.tolist() == [0, 0]
        assert pool.input_type["input"].tolist() == list(before)
        assert pool.output_type["output"].tolist() == list(after)


def test_average_pool_in_sinabs_is_the_spike_count_over_k_squared():
    net = load_with_sinabs(nir_graph(tiny_model(ModelSpec(**LENET))), timesteps=3)
    spikes = torch.bernoulli(torch.full((6, 4, 24, 24), 0.3),
                             generator=torch.Generator().manual_seed(0))
    counts = spikes.unflatten(3, (12, 2)).unflatten(2, (12, 2)).sum((3, 5))  # 2x2 windows
    assert torch.equal(net.get_submodule("conv1_pool")(spikes), counts / 4)


@pytest.mark.parametrize("layers, inexact", [
    ("conv4k5p0,avgpool2,conv8k5p0,avgpool2,fc16", set()),
    ("conv4k5p0,avgpool3,conv8,maxpool2,fc16", {"average_pool_rounding"}),
])
def test_average_pools_round_trip_through_sinabs(tmp_path, mnist_small, layers, inexact):
    """Direct encoding, the 8-bit membrane: the NIR twin agrees with sinabs on every spike.
    A count / 9 is not exact in float32: the pass rule is then the float-weights one."""
    spec = ModelSpec(**dict(LENET, layers=layers))
    model = tiny_model(spec)
    write_graph(nir_graph(model), tmp_path / "model.nir")
    report = check_round_trip(tmp_path / "model.nir", model, mnist_small.test.images[:20],
                              mnist_small.test.labels[:20])
    twin = report["vs_nir_twin"]
    assert twin["spikes_bit_exact"] and twin["identical_predictions"] == 20
    assert all(layer["engine_spikes_per_image"] > 0 for layer in twin["layers"].values())
    assert set(twin["expected_differences"]) == inexact and report["passed"]
    assert report["pass_rule"].endswith("identical" if not inexact else ">= 99.0 %")
    assert "avg_pool" in report["loader_adjustments"]


@pytest.mark.parametrize("changes, expected", [
    (dict(state_bits=32), set()),
    (dict(state_bits=32, encoding="rate"), set()),
    (dict(), {"membrane_grid"}),
    (dict(encoding="rate", reset="zero"), {"membrane_grid", "reset_to_zero"}),
])
def test_round_trip_through_sinabs(tmp_path, mnist_small, changes, expected):
    """sinabs runs the graph exactly as our network with a float membrane and subtractive
    reset (the NIR twin); our network differs only by what NIR cannot state."""
    spec = ModelSpec(**LIVELY, **changes)
    model = tiny_model(spec)
    write_graph(nir_graph(model), tmp_path / "model.nir")
    report = check_round_trip(tmp_path / "model.nir", model, mnist_small.test.images[:20],
                              mnist_small.test.labels[:20])
    twin, network = report["vs_nir_twin"], report["vs_network"]
    assert twin["spikes_bit_exact"] and twin["max_abs_logit_error"] == 0
    assert twin["identical_predictions"] == 20
    assert all(layer["engine_spikes_per_image"] > 0 for layer in twin["layers"].values())
    assert report["leak_per_step"] == {"conv1_lif": 0.5, "conv2_lif": 0.5, "fc1_lif": 0.5}
    assert set(network["expected_differences"]) == expected
    assert network["spikes_bit_exact"] == (not expected)
    assert report["library"] == "sinabs 3.1.3" and report["images"] == 20


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run folders: a float-membrane SNN, a reset-to-zero SNN, a LeNet-like SNN and an ANN."""
    runs = tmp_path_factory.mktemp("runs")
    specs = {"float": ModelSpec(state_bits=32, **LIVELY),
             "zero": ModelSpec(reset="zero", **LIVELY),
             "lenet": ModelSpec(**LENET),
             "ann": ModelSpec(kind="ann", timesteps=1, layers="conv4,pool,conv8,pool,fc16",
                              weight_bits=4)}
    for name, spec in specs.items():
        model = tiny_model(spec)
        if spec.kind == "ann":  # one pass creates the activation quantizers' scales
            model.train()(torch.zeros(1, 1, 28, 28))
        save_checkpoint(runs / name / "best.pt", spec, model,
                        train_config=TrainConfig(limit=600).to_dict(), epoch=1)
    return runs


def test_make_nir_writes_the_graph_and_the_check(runs, data_dir, capsys):
    nir_main([str(runs / "float"), "--data-dir", str(data_dir), "--images", "12"])
    out = runs / "float" / "export"
    assert [type(n).__name__ for n in nir.read(out / "model.nir").nodes.values()].count("LIF") == 3
    report = json.loads((out / "nir_check.json").read_text())
    assert report["passed"] and report["images"] == 12
    assert report["vs_network"]["prediction_agreement_pct"] == 100.0
    shown = capsys.readouterr().err
    assert "LIF tau=1.4427 (beta=0.5), r=2" in shown and "input_quantizer:" in shown
    assert "predictions agree 100.00 % (12/12" in shown and "passed True" in shown


def test_make_nir_exports_average_pools(runs, data_dir, capsys):
    nir_main([str(runs / "lenet"), "--data-dir", str(data_dir), "--images", "12"])
    report = json.loads((runs / "lenet" / "export" / "nir_check.json").read_text())
    assert report["passed"] and report["vs_nir_twin"]["spikes_bit_exact"]
    assert "AvgPool2d x2" in capsys.readouterr().err


def test_what_nir_cannot_state_is_information_not_a_failure(runs, data_dir, capsys):
    """A reset-to-zero network on the membrane grid: NIR states neither, so the network and the
    NIR reading differ, while the file says exactly what NIR can (the twin agrees on every
    spike): exit 0, the disagreement reported with its causes."""
    nir_main([str(runs / "zero"), "--data-dir", str(data_dir), "--images", "20"])
    report = json.loads((runs / "zero" / "export" / "nir_check.json").read_text())
    assert report["passed"] and report["vs_nir_twin"]["spikes_bit_exact"]
    assert report["vs_network"]["expected_differences"].keys() == {"membrane_grid",
                                                                  "reset_to_zero"}
    assert min(layer["spike_agreement_pct"]
               for layer in report["vs_network"]["layers"].values()) < 100.0
    if report["vs_network"]["prediction_agreement_pct"] < 100.0:
        assert "membrane_grid, reset_to_zero" in capsys.readouterr().err


def test_a_wrong_graph_fails_after_writing_its_report(runs, data_dir, monkeypatch):
    """A threshold written twice too high: the NIR twin disagrees, the round trip fails."""
    import export.nir.nir_export as nir_export

    right = nir_export.nir_graph

    def wrong(model):
        graph = right(model)
        lif = next(n for n in graph.nodes.values() if isinstance(n, nir.LIF))
        lif.v_threshold = lif.v_threshold * 2
        return graph

    monkeypatch.setattr(nir_export, "nir_graph", wrong)
    with pytest.raises(CheckFailed, match="NIR round trip FAILED: the NIR twin's spikes and "
                                          "predictions identical does not hold"):
        nir_main([str(runs / "zero"), "--data-dir", str(data_dir), "--images", "20"])
    report = json.loads((runs / "zero" / "export" / "nir_check.json").read_text())
    assert not report["passed"] and not report["vs_nir_twin"]["spikes_bit_exact"]


def test_bad_nir_inputs(tmp_path, runs, data_dir):
    with pytest.raises(UserError, match="kind='ann' is not a spiking network"):
        nir_main([str(runs / "ann"), "--data-dir", str(data_dir)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"has no best\.pt"):
        nir_main([str(tmp_path / "empty")])
    with pytest.raises(UserError, match="images=0 must be >= 1"):
        nir_main([str(runs / "float"), "--images", "0"])
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "best.pt").write_bytes((runs / "float" / "best.pt").read_bytes())
    (blocked / "export").write_text("a file where the export folder goes")
    with pytest.raises(UserError, match=f"cannot write to {blocked / 'export'}: "):
        nir_main([str(blocked), "--data-dir", str(data_dir)])
    with pytest.raises(UserError, match="pool='before_neuron' is not supported; allowed: "):
        nir_graph(tiny_model(ModelSpec(pool="before_neuron", **TINY)))
    with pytest.raises(UserError, match=r"beta=1\.0 has no finite NIR LIF time constant"):
        nir_graph(tiny_model(ModelSpec(beta=1.0, **TINY)))


def test_an_ann_run_is_one_line_on_the_command_line(runs):
    done = run_module("export.nir.nir_export", str(runs / "ann"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: kind='ann' is not a spiking network; NIR export needs kind='snn' (an ANN has "
        "no LIF neurons)"]
