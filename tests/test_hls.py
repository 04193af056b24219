"""HLS C++ generation and its C simulation against PyTorch and the QONNX step graph."""
import pytest
import torch
from test_export import TINY, tiny_model

from common.errors import UserError
from export.lockstep import PyTorchEngine, input_frames
from export.qonnx.step_graph import export_graph
from export.qonnx.verify import verify_graph
from hls.build import build_and_check
from hls.generate import integer_net, required_widths
from model.network import build_model
from model.spec import ModelSpec


def csim(spec: ModelSpec, data, images: int, tmp_path) -> dict:
    """A network trained one epoch, exported, generated and C-simulated on `images` test
    images against PyTorch and its QONNX step graph: build_and_check's report."""
    model = tiny_model(spec, data)
    graph = tmp_path / "step.qonnx.onnx"
    export_graph(model, spec, graph)
    return build_and_check(model, spec, data.test.images[:images], tmp_path / "hls", graph=graph)


@pytest.mark.parametrize("encoding, reset", [("direct", "subtract"), ("rate", "zero")])
def test_csim_is_bit_exact_against_torch_and_qonnx(tmp_path, mnist_small, encoding, reset):
    report = csim(ModelSpec(encoding=encoding, reset=reset, **TINY), mnist_small, 3, tmp_path)
    assert report["passed"], report
    for source in ("vs_pytorch", "vs_qonnx"):
        assert report[source]["max_abs_logit_error"] == 0 and report[source]["membranes_bit_exact"]
        assert report[source]["identical_predictions"] == 3
    files = {p.name for p in (tmp_path / "hls").iterdir()}
    assert {"params.h", "snn.h", "snn.cpp", "tb.cpp", "run_hls.tcl", "csim_report.json"} <= files
    assert "ap_int<ACC2_BITS>" in (tmp_path / "hls" / "params.h").read_text()


def test_a_non_seed_topology_exports_bit_exact_and_passes_the_csim(tmp_path, mnist_small):
    """Two convs before the first pool, a third conv, an fc: every downstream stage follows
    the layer list (4 LIF layers, 4 membranes in the graph and in the C simulation)."""
    spec = ModelSpec(layers="conv8,conv8,pool,conv16,pool,fc32", timesteps=2, weight_bits=4)
    model = tiny_model(spec, mnist_small)
    graph = tmp_path / "step.qonnx.onnx"
    meta = export_graph(model, spec, graph)
    assert meta["state_shapes"] == [[8, 28, 28], [8, 28, 28], [16, 14, 14], [32]]
    images = mnist_small.test.images[:3]
    verified = verify_graph(graph, model, spec, images, mnist_small.test.labels[:3])
    assert verified["passed"] and verified["qonnx_vs_pytorch"]["membranes_bit_exact"], verified
    report = build_and_check(model, spec, images, tmp_path / "hls", graph=graph)
    assert report["passed"], report
    assert report["vs_qonnx"]["membranes_bit_exact"]
    assert report["vs_pytorch"]["max_abs_logit_error"] == 0
    assert "fc_lif<784, 32," in (tmp_path / "hls" / "stages.h").read_text()


def test_a_too_narrow_accumulator_is_caught(tmp_path, mnist_small):
    spec = ModelSpec(**TINY)
    model = tiny_model(spec, mnist_small)
    widths = required_widths(integer_net(model, spec))
    widths["ACC3_BITS"] = 3  # fc1's sums overflow 3 bits
    report = build_and_check(model, spec, mnist_small.test.images[:3], tmp_path / "hls",
                             widths=widths)
    assert not report["passed"]
    assert report["vs_pytorch"]["first_mismatch"].startswith("membranes of fc1 differ")


def test_widths_follow_the_bit_widths():
    spec = ModelSpec(**TINY)
    torch.manual_seed(0)
    widths = required_widths(integer_net(build_model(spec), spec))
    # conv2: 4-bit weights, spikes in (1 bit), fan-in 4 * 9 = 36 -> 4 + 1 + 6 bits
    assert widths["ACC2_BITS"] == 11
    # conv1, direct: 8-bit pixels, fan-in 9 -> 4 + 8 + 4 bits
    assert widths["ACC1_BITS"] == 16
    lenet = ModelSpec(layers="conv6k5p0,avgpool2,conv16k5p0,avgpool4", timesteps=2, weight_bits=4)
    net = integer_net(build_model(lenet), lenet)
    # conv2 reads 2x2 spike counts (0..4: 3 bits, scale 2^-2), fan-in 6 * 25 = 150 -> 4 + 3 + 8
    assert (net.layers[1].in_bits, net.layers[1].in_frac) == (3, 2)
    assert required_widths(net)["ACC2_BITS"] == 15
    # the readout reads 4x4 counts of conv2's 16 x 8 x 8 spikes (0..16: 5 bits, scale 2^-4)
    assert (net.readout.in_bits, net.readout.in_frac, net.readout.fan_in) == (5, 4, 64)


def test_unsupported_specs_are_refused_in_one_line():
    spec = ModelSpec(beta=0.75, **{k: v for k, v in TINY.items()})
    with pytest.raises(UserError, match=r"beta=0\.75 \(a power of two"):
        integer_net(build_model(spec), spec)
    ann = ModelSpec(kind="ann", timesteps=1, weight_bits=4)
    with pytest.raises(UserError, match="kind=ann \\(spiking networks only\\)"):
        integer_net(build_model(ann), ann)
    average = ModelSpec(timesteps=2, weight_bits=4, layers="conv4,avgpool2,conv8,avgpool3,fc8")
    with pytest.raises(UserError, match=r"^the HLS generator cannot build layer conv2 "
                                        r"\(conv8k3s1p1\+avgpool3\); it builds convs of any .*"
                                        r"average pools of spikes of size 2, 4, 8, [^\n]*$"):
        integer_net(build_model(average), average)


def test_kernels_strides_paddings_and_pool_sizes_pass_the_csim(tmp_path, mnist_small):
    """A 5x5 unpadded conv with a 3x3 max pool (28 -> 24 -> 8), then a stride-2 conv (8 -> 4):
    the templates take K, S, P and the pool size as parameters."""
    spec = ModelSpec(layers="conv4k5p0,maxpool3,conv8s2,fc16", timesteps=2, weight_bits=4)
    report = csim(spec, mnist_small, 2, tmp_path)
    assert report["passed"], report
    assert report["vs_qonnx"]["membranes_bit_exact"]
    assert report["vs_pytorch"]["max_abs_logit_error"] == 0
    stages = (tmp_path / "hls" / "stages.h").read_text()
    assert "conv_lif<1, 28, 28, 4, 5, 1, 0, 24, 24," in stages
    assert "pool<4, 24, 24, 3, MAX_POOL>(s1, p1);" in stages
    assert "conv_lif<4, 8, 8, 8, 3, 2, 1, 4, 4," in stages


@pytest.mark.parametrize("layers, timesteps, fragments", [
    # LeNet-5-like: 28 -> conv 24 -> pool 12 -> conv 8 -> pool 4; fc1 reads 16 x 4 x 4 counts
    ("conv6k5p0,avgpool2,conv16k5p0,avgpool2,fc120,fc84", 3,
     ["ap_uint<3> p1[6][12][12];", "pool<6, 24, 24, 2, SUM_POOL>(s1, p1);",
      "conv_lif<6, 12, 12, 16, 5, 1, 0, 8, 8,", "ap_uint<3> f3[256];", "fc_lif<256, 120,"]),
    # a 4x4 pool (counts 0..16 in 5 bits, scale 2^-4) read by the readout: 8 -> 2
    ("conv4k5p0,avgpool2,conv8k5p0,avgpool4", 2,
     ["ap_uint<5> p2[8][2][2];", "pool<8, 8, 8, 4, SUM_POOL>(s2, p2);",
      "fc_readout<32, 10>(f3, W3_INT, logits);"])])
def test_average_pools_of_spikes_pass_the_csim(tmp_path, mnist_small, layers, timesteps,
                                               fragments):
    """Each average pool of spikes is a sum pool (the spike count over the window) and the
    next layer reads the count with scale 2^-2log2(k): membranes and logits stay bit-exact."""
    spec = ModelSpec(layers=layers, timesteps=timesteps, weight_bits=4)
    model = tiny_model(spec, mnist_small)
    graph = tmp_path / "step.qonnx.onnx"
    export_graph(model, spec, graph)
    images = mnist_small.test.images[:2]
    report = build_and_check(model, spec, images, tmp_path / "hls", graph=graph)
    assert report["passed"], report
    assert report["vs_qonnx"]["logits_match"] and report["vs_pytorch"]["logits_match"]
    spikes = PyTorchEngine(model).run(input_frames(spec, images)).spikes
    pooled = [index for index, layer in enumerate(spec.weight_layers) if layer.pooled]
    assert all(spikes[index].any() for index in pooled)  # every pool counts some spikes
    stages = (tmp_path / "hls" / "stages.h").read_text()
    assert all(fragment in stages for fragment in fragments), stages
