"""One error type for everything a user can get wrong, and the CLI wrapper that prints it."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable


class UserError(Exception):
    """A bad option, file or environment: shown to the user as one line, never as a traceback."""


class CheckFailed(Exception):
    """An output failed its own verification (exported graph, C simulation): exit status 1."""


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise UserError unless `value` is one of `allowed`."""
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise UserError(f"{name}={value!r} is not supported; allowed: {shown}")


def run_cli(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run a command-line `main`: a UserError prints `error: ...` and exits with status 2,
    a CheckFailed with status 1."""
    try:
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except CheckFailed as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
