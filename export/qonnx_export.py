"""Export a trained run to QONNX and verify it against PyTorch (`make export`).

    python -m export.qonnx_export [runs/<name>] [--images 100]

Writes runs/<name>/export/: step.qonnx.onnx (SNN: one timestep, membranes as I/O) or
ann.qonnx.onnx, and verification.json. Exits with status 1 if verification fails.
"""
from __future__ import annotations

import argparse
import sys

import torch

from common.atomic import write_json
from common.errors import UserError, run_cli
from common.runs import CHECKPOINT, resolve_run
from export.step_graph import export_graph
from export.verify import VerificationError, verify_graph
from quant_training.checkpoint import load_model
from quant_training.data import load_dataset, resolve_data_dir

EXPORT_DIR = "export"


def graph_name(kind: str) -> str:
    return "step.qonnx.onnx" if kind == "snn" else "ann.qonnx.onnx"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m export.qonnx_export", description=__doc__)
    p.add_argument("run", nargs="?", default=None, help="run folder (default: the latest)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--data-dir", default=None, help="dataset root (default $QSNN_DATA_DIR or data/)")
    p.add_argument("--images", type=int, default=100, help="test images to verify on")
    args = p.parse_args(argv)
    if args.images < 1:
        raise UserError(f"images={args.images} must be >= 1")
    run_dir = resolve_run(args.run, args.runs_dir)
    model, spec, payload = load_model(run_dir / CHECKPOINT)
    data = load_dataset(payload["train_config"]["dataset"], resolve_data_dir(args.data_dir),
                        payload["train_config"]["val_size"])
    out = run_dir / EXPORT_DIR
    graph = out / graph_name(spec.kind)
    export_graph(model, spec, graph)
    index = torch.arange(min(args.images, len(data.test)))
    report = verify_graph(graph, model, spec, data.test.images[index], data.test.labels[index])
    write_json(out / "verification.json", {"graph": graph.name, **report})
    print(f"{graph}: {report['images']} test images x T={report['timesteps']}: "
          f"membranes bit-exact {report['membranes_bit_exact']}, spikes bit-exact "
          f"{report['spikes_bit_exact']}, max |logit error| {report['max_abs_logit_error']:.2g}, "
          f"identical predictions {report['identical_predictions']}/{report['images']}, "
          f"graph accuracy {report['graph_accuracy_pct']:.2f} %", file=sys.stderr)
    if not report["passed"]:
        raise VerificationError(f"verification FAILED: {report['first_mismatch'] or 'logits'}; "
                                f"see {out / 'verification.json'}")


if __name__ == "__main__":
    try:
        run_cli(main)
    except VerificationError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
