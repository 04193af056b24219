"""Technology tables: every constant with its value, unit and source, read from TOML files.

A table file (hw_model/tables/<target>.toml) holds entries of the form

    [name]
    value = 0.03
    unit = "pJ"
    source = "Horowitz, ISSCC 2014, 45 nm energy table"

Loading checks that every entry has a finite number >= 0, a unit and a non-empty source, and
that the file holds every name its cost model needs.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError

TABLES = Path(__file__).parent / "tables"


@dataclass(frozen=True)
class Constant:
    value: float
    unit: str
    source: str


class Table(dict):
    """name -> Constant; `table["x"]` is the Constant, `table.v("x")` its value."""

    def v(self, name: str) -> float:
        return self[name].value


def load_table(path: str | Path, required: tuple[str, ...] = ()) -> Table:
    """Read and validate a technology table (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"technology table {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"technology table {path} is not valid TOML ({err})") from None
    table = Table()
    for name, entry in raw.items():
        table[name] = _constant(path, name, entry)
    missing = [name for name in required if name not in table]
    if missing:
        raise UserError(f"technology table {path} lacks constant(s) {missing}")
    return table


def _constant(path: Path, name: str, entry: object) -> Constant:
    where = f"{path.name}: constant {name!r}"
    if not isinstance(entry, dict):
        raise UserError(f"{where} must be a table with value, unit and source")
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where} has value {value!r}; a finite number is required")
    if value < 0:
        raise UserError(f"{where} has value {value}; it must be >= 0")
    for key in ("unit", "source"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise UserError(f"{where} lacks a {key}")
    return Constant(float(value), entry["unit"], entry["source"])
