"""Study grids: named TOML files of trial blocks, expanded into one trial per configuration.

    # study/grids/<name>.toml
    description = "what this grid is for"
    [defaults]                 # optional, applied to every block
    epochs = 15
    [[trials]]                 # one block = the cartesian product of its listed values
    kind = "snn"
    timesteps = [1, 2, 4]
    weight_bits = 4
    seed = [0, 1, 2]

Keys are ModelSpec fields (model/spec.py) and TrainConfig fields (quant_training/config.py)
except `device` (the study places trials). A trial is named as `make qat` names its run
folder, so one trial = one run folder; two trials with the same name are an error. Trials
run in file order: put the configurations the report's claims rest on first.
"""
from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from common.errors import UserError
from model.spec import ModelSpec
from quant_training.config import TrainConfig, run_name, shape_from_dataset

GRIDS_DIR = Path(__file__).resolve().parent / "grids"
SPEC_KEYS = frozenset(f.name for f in fields(ModelSpec))
TRAIN_KEYS = frozenset(f.name for f in fields(TrainConfig)) - {"device"}
FILE_KEYS = frozenset({"description", "defaults", "trials"})


@dataclass(frozen=True)
class TrialConfig:
    """One configuration of a grid: the network and how it is trained."""

    name: str
    spec: ModelSpec
    config: TrainConfig

    def train_options(self) -> dict:
        """The training fields but `device` (the study places each trial)."""
        return {k: v for k, v in self.config.to_dict().items() if k != "device"}

    def options(self) -> dict:
        return {**self.spec.to_dict(), **self.train_options()}

    def differences(self, spec: dict, train_config: dict) -> list[str]:
        """'key: recorded x, grid y' for each option in which a recorded run (its spec dict, in
        any format this version opens, and train_config dict) differs from this trial."""
        recorded = {**ModelSpec.from_dict(spec).to_dict(), **train_config}
        return [f"{k}: recorded {recorded.get(k)!r}, grid {v!r}"
                for k, v in self.options().items() if recorded.get(k) != v]


@dataclass(frozen=True)
class Grid:
    name: str
    path: Path
    description: str
    trials: list[TrialConfig]


def known_grids() -> list[str]:
    return sorted(p.stem for p in GRIDS_DIR.glob("*.toml"))


def grid_path(grid: str) -> Path:
    """A grid name (study/grids/<name>.toml) or a path to a grid file."""
    path = Path(grid)
    if path.suffix == ".toml":
        if not path.is_file():
            raise UserError(f"GRID={grid}: no such grid file")
        return path
    path = GRIDS_DIR / f"{grid}.toml"
    if not path.is_file():
        raise UserError(f"GRID={grid!r} is not a known grid; known: {', '.join(known_grids())} "
                        f"(or a path to a .toml grid file)")
    return path


def load_grid(grid: str) -> Grid:
    """Read and validate a grid; every problem is one line naming the file and the key."""
    path = grid_path(grid)
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML ({err})") from None
    _check_keys(path, "the file", data, FILE_KEYS)
    defaults = data.get("defaults", {})
    blocks = data.get("trials", [])
    if not isinstance(defaults, dict) or not isinstance(blocks, list) or not blocks:
        raise UserError(f"{path}: needs at least one [[trials]] block (and [defaults] a table)")
    _check_keys(path, "[defaults]", defaults, SPEC_KEYS | TRAIN_KEYS)
    trials: dict[str, TrialConfig] = {}
    for i, block in enumerate(blocks, 1):
        where = f"[[trials]] block {i}"
        _check_keys(path, where, block, SPEC_KEYS | TRAIN_KEYS)
        for values in _product({**defaults, **block}):
            trial = _trial(path, where, values)
            if trial.name in trials and trials[trial.name] != trial:
                raise UserError(f"{path}, {where}: two different trials are named {trial.name} "
                                f"(run names do not show every option; make them differ in one "
                                f"that they show, or split the grid)")
            trials[trial.name] = trial
    return Grid(path.stem, path, str(data.get("description", "")), list(trials.values()))


def _check_keys(path: Path, where: str, table: object, allowed: frozenset[str]) -> None:
    if not isinstance(table, dict):
        raise UserError(f"{path}, {where}: expected a table of keys, got {table!r}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UserError(f"{path}, {where}: unknown key {unknown[0]!r}; allowed: "
                        f"{', '.join(sorted(allowed))}")


def _product(table: dict) -> list[dict]:
    """Every combination of the listed values (a scalar is a one-value list)."""
    keys = list(table)
    choices = [v if isinstance(v, list) else [v] for v in table.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]


def _trial(path: Path, where: str, values: dict) -> TrialConfig:
    spec_values = {k: v for k, v in values.items() if k in SPEC_KEYS}
    if spec_values.get("kind") == "ann":
        spec_values["timesteps"] = 1  # the ANN runs one pass, as `make qat MODEL=ann` does
    try:
        config = TrainConfig(**{k: v for k, v in values.items() if k in TRAIN_KEYS})
        spec = ModelSpec.from_dict(shape_from_dataset(spec_values, config.dataset))
    except UserError as err:
        raise UserError(f"{path}, {where}: {err}") from None
    except (TypeError, ValueError) as err:
        raise UserError(f"{path}, {where}: invalid value ({err})") from None
    return TrialConfig(run_name(spec, config), spec, config)
