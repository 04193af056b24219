"""Checkpoints: the model spec plus weights, written atomically and loaded without pickle code.

A checkpoint is a dict saved with torch.save and read with `torch.load(weights_only=True)`,
which only rebuilds tensors and plain containers, so a checkpoint from the internet cannot run
code. Keys: format, spec (ModelSpec.to_dict()), state_dict, and any extra entries (training
state for resuming: optimizer, RNG states, history, ...).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.atomic import write_with
from common.errors import UserError
from model.network import QuantCNN, SpikingCNN, build_model
from model.spec import ModelSpec

FORMAT = "qsnn-checkpoint/1"


def save_checkpoint(path: str | Path, spec: ModelSpec, model: nn.Module, **extra: Any) -> None:
    payload = {"format": FORMAT, "spec": spec.to_dict(), "state_dict": model.state_dict(), **extra}
    write_with(path, lambda tmp: torch.save(payload, tmp))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dict, or a one-line UserError for a missing, corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, or holds objects other than tensors
        raise UserError(f"checkpoint {path} is corrupt or not loadable safely "
                        f"({type(err).__name__}; only tensors and plain containers are accepted)"
                        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"checkpoint {path} is not a {FORMAT} file")
    return payload


def load_model(path: str | Path) -> tuple[SpikingCNN | QuantCNN, ModelSpec, dict[str, Any]]:
    """Rebuild the network from the checkpoint's spec and load its weights (eval mode)."""
    payload = read_checkpoint(path)
    spec = ModelSpec.from_dict(payload["spec"])
    model = build_model(spec)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0]
        raise UserError(f"checkpoint {path} does not match its own spec: {first}") from None
    return model.eval(), spec, payload
