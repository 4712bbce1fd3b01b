"""The headless commands: `python main.py --headless COMMAND ...` (same as `photo-sorter --headless`).

Each submodule registers its commands and stays thin: parse arguments, call a core function,
print its plain result (JSON with --json). Every failure is one line on stderr and an exit
status, never a traceback: 2 for what the user can fix (arguments, input, paths, the database),
1 for a bug; tracebacks go to the log file (photo_sorter.errors).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path

# Submodules that define `register(subparsers)`; each adds its own commands.
COMMAND_MODULES = ("training", "scan", "clusters")

MAX_INT = 2**63 - 1  # the largest integer SQLite (and NumPy's int64) can hold


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (exit status 2), like every other failure."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())} (see --help)\n")


def int_arg(lo: int = 0, hi: int = MAX_INT):
    """An argparse type: a whole number in [lo, hi], so no command sees one it cannot store."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text[:40]!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}")
        return value
    return parse


def float_arg(lo: float, hi: float = math.inf, above: bool = False):
    """An argparse type: a finite number in [lo, hi] (above: lo itself excluded)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
        if not (math.isfinite(value) and (lo < value if above else lo <= value) and value <= hi):
            raise argparse.ArgumentTypeError(
                f"must be {'above' if above else 'at least'} {lo:g}" + (f" and at most {hi:g}" if hi < math.inf else ""))
        return value
    return parse


def _writable_place(path: Path, option: str) -> None:
    """The nearest existing folder above path must be a folder we may write into."""
    parent = next(p for p in path.absolute().parents if p.exists())
    if not parent.is_dir():
        raise UserError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: no permission to write in {parent}")


def check_out_file(path: str, option: str = "--out") -> Path:
    """A file the command will write (replacing it): refused, before any work, when it is a
    folder or cannot be written."""
    out = Path(path).expanduser()
    if out.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name")
    if out.exists() and not os.access(out, os.W_OK):
        raise UserError(f"{option} {path}: no permission to write it")
    _writable_place(out, option)
    return out


def check_out_dir(path: str, option: str = "--out") -> Path:
    """A folder the command will write into (made when missing): refused, before any work,
    when it is a file or cannot be written."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"{option} {path} is a file; give a folder")
    _writable_place(out / "x", option)
    return out


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
    else:  # a file name that is not valid UTF-8 shows its bytes as \xNN
        print(os.fsencode(text).decode("utf-8", "backslashreplace"))


@contextmanager
def progress_bar(label: str):
    """A progress bar on stderr (rich) while the block runs; yields update(done, total, detail).
    Silent when stderr is not a terminal, so logs and error output stay one line each."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"))
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(label, total=None, detail="")
        yield lambda done, total, detail="": progress.update(task, completed=done, total=total,
                                                            detail=detail)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="photo-sorter --headless", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"photo_sorter.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from photo_sorter.errors import log_failure, one_line
    from photo_sorter.store import DatabaseError

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the promise: one line, whatever went wrong
        where = log_failure(exc, "photo-sorter --headless " + " ".join(argv)[:1000])
        details = f" (details in {where})" if where else ""
        if isinstance(exc, (OSError, DatabaseError)):  # the user's paths, disk or database
            print(f"error: {one_line(exc)}{details}", file=sys.stderr)
            return 2
        print(f"error: unexpected {type(exc).__name__}: {one_line(exc)[:300]}{details}", file=sys.stderr)
        return 1
