"""Entry point: the desktop app by default, `--headless COMMAND ...` for batch mode."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--headless" in argv:
        argv.remove("--headless")
        from photo_sorter.cli import main as cli_main

        return cli_main(argv)
    from photo_sorter.gui.app import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
