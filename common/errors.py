"""One error type for everything a user can get wrong, and the CLI wrapper that prints it."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable


class UserError(Exception):
    """A bad option, file or environment: shown to the user as one line, never as a traceback."""


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise UserError unless `value` is one of `allowed`."""
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise UserError(f"{name}={value!r} is not supported; allowed: {shown}")


def run_cli(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run a command-line `main`, turning a UserError into `error: ...` and exit status 2."""
    try:
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
