"""Command-line options generated from dataclasses: the dataclass holds each default, once.

Every field becomes `--field-name` (underscores as dashes), typed by its annotation
(int, float, str, an optional of those, or a tuple of ints given as several values), shown
with its default in --help, and absent from the parsed namespace unless the user gave it.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, NoReturn

from common.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line (a UserError), not a usage block."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see --help)")


def add_fields(group: argparse._ArgumentGroup, cls: type, help_text: dict[str, str],
               skip: frozenset[str] = frozenset(), aliases: dict[str, str] | None = None
               ) -> None:
    """Add one option per field of dataclass `cls` (except `skip`) to `group`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind, many = _scalar_type(hints[f.name])
        names = [f"--{f.name.replace('_', '-')}", *([f"--{aliases[f.name]}"]
                                                   if aliases and f.name in aliases else [])]
        default: Any = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        shown = " ".join(map(str, default)) if many else default
        group.add_argument(*names, dest=f.name, type=kind, nargs="+" if many else None,
                           default=argparse.SUPPRESS, metavar=f.name.upper(),
                           help=f"{help_text.get(f.name, '')} (default: {shown})".lstrip())


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of `cls` the user set on the command line."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


def _scalar_type(hint: Any) -> tuple[type, bool]:
    """(element type, repeated?) of int | float | str | X | None | tuple[int, ...]."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True
    return hint, False
