"""Workload profile: hand-counted fan-outs, invariants, a sinabs cross-check, the schema."""
import json

import pytest
import torch
import torch.nn.functional as F

from common.errors import UserError
from common.profile import load_profile, profile_table, validate_profile
from model.hooks import WorkloadProbe, fanout_map
from model.network import build_model
from model.quantizers import pixels
from model.spec import ModelSpec
from quant_training.data import Split
from quant_training.profile import profile_model

SMALL = dict(layers="conv4,pool,conv8,pool,fc16", timesteps=3)


def profile_of(spec: ModelSpec, images: torch.Tensor, seed: int = 0) -> dict:
    """Profile of a random-weight network on uint8 `images`."""
    torch.manual_seed(seed)
    model = build_model(spec).eval()
    split = Split(images, torch.zeros(len(images), dtype=torch.long))
    _, profile = profile_model(model, spec, split, 64, torch.device("cpu"), "test", "mnist", "test")
    return profile


def layer(profile: dict, name: str) -> dict:
    return next(item for item in profile["layers"] if item["name"] == name)


def one_pixel_image(y: int, x: int) -> torch.Tensor:
    image = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    image[0, 0, y, x] = 255  # white: spikes at every step under rate encoding
    return image


@pytest.mark.parametrize("y, x, reach", [(0, 0, 4), (0, 13, 6), (14, 14, 9), (27, 27, 4)])
def test_single_input_spike_drives_its_exact_conv_fanout(y, x, reach):
    # Rate encoding with a single white pixel: exactly one input spike per step into conv1.
    spec = ModelSpec(encoding="rate", **SMALL)
    conv1 = layer(profile_of(spec, one_pixel_image(y, x)), "conv1")
    for step in conv1["per_timestep"]:
        assert step["input_events"] == 1
        assert step["synops"] == 4 * reach  # 4 output channels x valid kernel positions
        assert step["dense_macs"] == 0


def test_fanout_map_by_hand():
    conv = torch.nn.Conv2d(2, 5, 3, padding=1)
    fan = fanout_map(conv, torch.Size([1, 2, 6, 6]), torch.Size([1, 5, 6, 6]))
    assert fan[0, 0, 0].item() == 5 * 4 and fan[0, 0, 3].item() == 5 * 6 and fan[0, 2, 3] == 45
    linear = torch.nn.Linear(7, 3)
    assert fanout_map(linear, torch.Size([1, 7]), torch.Size([1, 3])).tolist() == [3.0] * 7
    strided = torch.nn.Conv2d(1, 1, 3, stride=2, padding=1)
    fan = fanout_map(strided, torch.Size([1, 1, 5, 5]), torch.Size([1, 1, 3, 3]))
    rows = torch.tensor([1.0, 2, 1, 2, 1])  # input rows 1 and 3 lie in two strided windows
    assert torch.equal(fan[0], rows[:, None] * rows[None, :])


def test_linear_synops_are_events_times_fanout_and_direct_conv1_is_dense_once():
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    profile = profile_of(ModelSpec(**SMALL), images)
    conv1, fc1, fc2 = layer(profile, "conv1"), layer(profile, "fc1"), layer(profile, "fc2")
    assert conv1["computed_once"] and not conv1["binary_input"]
    dense = [step["dense_macs"] for step in conv1["per_timestep"]]
    assert dense == [4 * (28 * 3 - 2) ** 2, 0, 0]  # 4 channels x sum of 3x3 reach over 28x28
    for item, fan in ((fc1, 16), (fc2, 10)):
        for step in item["per_timestep"]:
            assert step["synops"] == pytest.approx(step["input_events"] * fan)


def test_synops_equal_an_output_side_count(mnist_small):
    """Independent count: synops = sum over outputs of active inputs in their receptive field."""
    spec = ModelSpec(**SMALL)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    images = pixels(mnist_small.test.images[:8])
    inputs = []
    model.conv2.register_forward_hook(lambda m, i, o: inputs.append(i[0].detach()))
    with WorkloadProbe(model) as probe, torch.no_grad():
        model(images)
    measured = probe.summary()["conv2"]["synops"]
    (stack,) = inputs  # one call on all timesteps: [T*8, C, H, W]
    for t, spikes in enumerate(stack.unflatten(0, (spec.timesteps, 8))):
        ones = torch.ones(8, spikes.shape[1], 3, 3)
        per_image = F.conv2d(spikes, ones, padding=1).sum((1, 2, 3))
        assert measured[t][0] == pytest.approx(per_image.mean().item(), rel=1e-9)
        assert per_image.mean() > 0


def test_pooling_placement_changes_neurons_and_events(mnist_small):
    images = mnist_small.test.images[:16]
    after = profile_of(ModelSpec(**SMALL, pool="after_neuron"), images)
    before = profile_of(ModelSpec(**SMALL, pool="before_neuron"), images)
    assert layer(after, "conv1")["neurons"] == 4 * 28 * 28
    assert layer(before, "conv1")["neurons"] == 4 * 14 * 14
    # pooling after the neuron ORs 2x2 spikes: conv2 sees at most the spikes conv1 emitted
    for conv1, conv2 in zip(layer(after, "conv1")["per_timestep"],
                            layer(after, "conv2")["per_timestep"], strict=True):
        assert conv2["input_events"] <= conv1["output_events"]
    for conv1, conv2 in zip(layer(before, "conv1")["per_timestep"],
                            layer(before, "conv2")["per_timestep"], strict=True):
        assert conv2["input_events"] == pytest.approx(conv1["output_events"])


def test_invariants_and_ann_has_no_accumulates(mnist_small):
    images = mnist_small.test.images[:16]
    snn = profile_of(ModelSpec(**SMALL, encoding="rate"), images)
    for item in snn["layers"]:
        assert item["totals"]["output_events"] <= item["neurons"] * snn["timesteps"]
        assert item["totals"]["weight_reads"] == pytest.approx(
            item["totals"]["synops"] + item["totals"]["dense_macs"])
        for step in item["per_timestep"]:
            assert step["synops"] <= step["input_events"] * item["max_fanout"] + 1e-6
    ann = profile_of(ModelSpec(kind="ann", timesteps=1, layers=SMALL["layers"]), images)
    assert ann["totals"]["synops"] == 0 and ann["totals"]["dense_macs"] > 0
    assert ann["totals"]["potential_reads"] == 0


def test_synops_agree_with_sinabs_hooks(mnist_small):
    """Cross-check against sinabs' synaptic-operation hooks on the same network and inputs."""
    from sinabs.hooks import conv_layer_synops_hook, linear_layer_synops_hook

    spec = ModelSpec(encoding="rate", timesteps=4)
    torch.manual_seed(1)
    model = build_model(spec).eval()
    theirs: dict[str, list[float]] = {}

    def per_timestep(name: str, sinabs_hook):
        """sinabs' hook on each timestep of the layer's [T*B, ...] call."""
        def hook(module, inputs, output) -> None:
            steps = (inputs[0].unflatten(0, (spec.timesteps, -1)),
                     output.unflatten(0, (spec.timesteps, -1)))
            for x_t, y_t in zip(*steps, strict=True):
                sinabs_hook(module, [x_t], y_t)
                theirs.setdefault(name, []).append(
                    float(module.hook_data["layer_synops_per_timestep"]))
        return hook

    for name in ("conv1", "conv2", "fc1", "fc2"):
        sinabs_hook = (conv_layer_synops_hook if name.startswith("conv")
                       else linear_layer_synops_hook)
        getattr(model, name).register_forward_hook(per_timestep(name, sinabs_hook))
    images = pixels(mnist_small.test.images[:32])
    torch.manual_seed(2)
    with WorkloadProbe(model) as probe, torch.no_grad():
        model(images)
    ours = probe.summary()
    for name, per_step in theirs.items():
        assert len(per_step) == spec.timesteps
        for t, value in enumerate(per_step):
            assert ours[name]["synops"][t][0] == pytest.approx(value, rel=1e-5), (name, t)
    assert sum(theirs["conv2"]) > 0


def test_profile_schema_round_trip_and_rejections(tmp_path, mnist_small):
    profile = profile_of(ModelSpec(**SMALL), mnist_small.test.images[:4])
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    assert load_profile(path)["timesteps"] == 3
    table = profile_table(profile)
    assert len(table) == 4 * 3 and {"layer", "t", "synops", "weight_bits"} <= set(table.columns)
    bad = json.loads(json.dumps(profile))
    bad["layers"][1]["per_timestep"][0]["synops"] = -1
    with pytest.raises(UserError, match="conv2 t=1: synops=-1 must be a finite number >= 0"):
        validate_profile(bad)
    not_finite = json.loads(json.dumps(profile))
    not_finite["layers"][0]["per_timestep"][0]["synops"] = float("nan")
    path.write_text(json.dumps(not_finite))  # written as NaN, read back as nan
    with pytest.raises(UserError, match="layer conv1 t=1: synops=nan must be a finite number"):
        load_profile(path)
    not_finite["layers"][0]["per_timestep"][0]["synops"] = 0.0
    not_finite["layers"][2]["connections"] = float("inf")
    with pytest.raises(UserError, match="layer fc1: connections=inf must be a finite number"):
        validate_profile(not_finite)
    del bad["layers"][0]["neurons"]
    with pytest.raises(UserError, match=r"lacks field\(s\) \['neurons'\]"):
        validate_profile(bad)
    with pytest.raises(UserError, match="has schema 'other/1'"):
        validate_profile({**profile, "schema": "other/1"})
    path.write_text("{not json")
    with pytest.raises(UserError, match="is not valid JSON"):
        load_profile(path)


def test_strides_paddings_and_average_pools_in_the_profile(mnist_small):
    """conv6k5p0 on 28x28: 24x24 outputs of 25 taps -> 6 * 576 * 25 = 86,400 connections;
    conv4s2 (pad 1) on its 12x12 average-pooled map: 6 x 6 outputs, windows at rows 2i - 1..2i + 1:
    -> each input row is reached by 1 (even rows) or 2 (odd rows 1..9) windows, 17 per axis,
    4 * 17^2 * 6 = 6,936 connections, counted as MACs (its input is spike counts / 4: 0..4,
    3 bits), computed at every step (its input changes), unlike conv1 under direct encoding."""
    spec = ModelSpec(layers="conv6k5p0,avgpool2,conv4s2,fc8", timesteps=2)
    profile = profile_of(spec, mnist_small.test.images[:4])
    conv1, conv2, fc1 = (layer(profile, n) for n in ("conv1", "conv2", "fc1"))
    assert (conv1["kernel"], conv1["stride"], conv1["padding"]) == (5, 1, 0)
    assert (conv1["pool_kind"], conv1["pool_size"], conv1["pool"]) == ("avg", 2, "after_neuron")
    assert conv1["connections"] == 86_400 and conv1["output_shape"] == [6, 24, 24]
    assert (conv2["stride"], conv2["padding"], conv2["connections"]) == (2, 1, 6_936)
    assert not conv2["binary_input"] and conv2["input_bits"] == 3 and fc1["binary_input"]
    assert conv1["computed_once"] and not conv2["computed_once"] and not fc1["computed_once"]
    assert (conv1["input_bits"], fc1["input_bits"]) == (8, 1)
    assert all(step["dense_macs"] == 6_936 and step["synops"] == 0
               for step in conv2["per_timestep"])
    assert conv2["pool_kind"] is None and conv2["pool_size"] is None
    # the average pool of conv1's spikes: 6 x 12 x 12 outputs x 3 additions at every step (it
    # follows the neuron, which runs every step); its events are all of conv1's spikes (2 | 24)
    for step in conv1["per_timestep"]:
        assert step["pool_ops"] == 6 * 12 * 12 * 3
        assert step["pool_events"] == step["output_events"] > 0
    assert all(s["pool_ops"] == s["pool_events"] == 0 for s in conv2["per_timestep"])


def test_pool_events_are_the_spikes_its_windows_read_on_an_odd_map(mnist_small):
    """conv4k4p0 on 28x28: 25x25 spikes; maxpool2 reads rows and columns 0..23 only: 4 x 12 x
    12 outputs x 3 ORs = 1,728 dense ops; events counted from the LIF's own spikes."""
    spec = ModelSpec(layers="conv4k4p0,maxpool2,fc8", encoding="rate", timesteps=2)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    spikes = []
    model.lif1.register_forward_hook(lambda m, i, o: spikes.append(o[0].detach()))
    with WorkloadProbe(model) as probe, torch.no_grad():
        model(pixels(mnist_small.test.images[:8]))
    measured = probe.summary()["conv1"]
    (conv1_spikes,) = spikes  # [T, B, 4, 25, 25]
    for t, per_t in enumerate(conv1_spikes):
        in_windows = per_t[..., :24, :24].sum((1, 2, 3)).mean().item()
        assert measured["pool_events"][t][0] == pytest.approx(in_windows, rel=1e-9)
        assert in_windows < per_t.sum((1, 2, 3)).mean().item()  # row and column 24 dropped
        assert measured["pool_ops"][t][0] == 1_728


def test_a_pool_of_held_currents_runs_once_and_an_ann_pool_is_dense(mnist_small):
    """Before the neuron of conv1 under direct encoding the pool reads the held current once:
    4 x 14 x 14 x 3 = 2,352 ops at t = 1; the ANN's 3x3 pool: 4 x 9 x 9 x 8 = 2,592."""
    images = mnist_small.test.images[:4]
    held = layer(profile_of(ModelSpec(layers="conv4,avgpool2,fc8", timesteps=3,
                                      pool="before_neuron"), images), "conv1")
    assert [s["pool_ops"] for s in held["per_timestep"]] == [2_352, 0, 0]
    assert held["per_timestep"][0]["pool_events"] <= 4 * 28 * 28
    ann = layer(profile_of(ModelSpec(kind="ann", timesteps=1, layers="conv4,avgpool3,fc8"),
                           images), "conv1")
    assert ann["totals"]["pool_ops"] == 2_592


def test_a_profile_written_before_pool_counts_reads_them_from_shapes_and_spikes(mnist_small):
    """The seed-like network's 2x2 max pools on 28x28 and 14x14 maps: the filled counts equal
    the measured ones (k divides every map)."""
    measured = profile_of(ModelSpec(**SMALL), mnist_small.test.images[:4])
    old = json.loads(json.dumps(measured))
    for item in old["layers"]:
        for record in (*item["per_timestep"], item["totals"]):
            del record["pool_ops"], record["pool_events"]
    del old["totals"]["pool_ops"], old["totals"]["pool_events"]
    filled = validate_profile(old)
    assert filled == measured
    assert layer(filled, "conv2")["per_timestep"][0]["pool_ops"] == 8 * 7 * 7 * 3


def test_a_profile_written_before_pool_kinds_reads_as_2x2_max_pools(mnist_small):
    profile = profile_of(ModelSpec(**SMALL), mnist_small.test.images[:2])
    for item in profile["layers"]:
        del item["pool_kind"], item["pool_size"]
    conv1 = validate_profile(profile)["layers"][0]
    assert (conv1["pool_kind"], conv1["pool_size"]) == ("max", 2)
