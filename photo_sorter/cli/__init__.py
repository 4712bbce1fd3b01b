"""The headless commands: `python main.py --headless COMMAND ...` (same as `photo-sorter --headless`).

Each submodule registers its commands and stays thin: parse arguments, call a core function,
print its plain result (JSON with --json). Errors the user can fix exit with status 2 and one
readable line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

# Submodules that define `register(subparsers)`; each adds its own commands.
COMMAND_MODULES = ("training", "scan", "clusters")


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def add_db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database path or SQLAlchemy URL (default: user data dir)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def open_library(args):
    """The engine of --db, with a database problem turned into a one-line user error."""
    from photo_sorter.store import DatabaseError, open_engine

    try:
        return open_engine(args.db)
    except DatabaseError as exc:
        raise UserError(str(exc)) from None


def emit(result, as_json: bool, text: str | None = None) -> None:
    """Print a command's result: JSON when asked (or when there is no text form), else text."""
    if as_json or text is None:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(text)


class ProgressBar:
    """A one-line progress bar on stderr for headless runs (silent when stderr is not a TTY
    unless forced, so logs stay readable)."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last = ""

    def __call__(self, done: int, total: int | None, detail: str = "") -> None:
        if total:
            frac = min(1.0, done / total)
            bar = "#" * int(frac * 30)
            line = f"{self.label} [{bar:<30}] {done}/{total} {detail}"
        else:
            line = f"{self.label} {done} {detail}"
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self._last)))
            self.stream.flush()
        elif done == total:
            self.stream.write(line + "\n")
        self._last = line

    def close(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photo-sorter --headless", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"photo_sorter.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
