"""The `faceguard` program: the CLI, or the kiosk window when no command is given.

This is the one place where the command line and the Qt GUI meet; the CLI itself (a core
module) never imports Qt.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import faceguard.threads  # noqa: F401  (pins native thread pools before numpy loads)
from faceguard.cli import CommandError
from faceguard.cli import main as cli_main
from faceguard.core.context import AppContext


def open_gui(ctx: AppContext, args: argparse.Namespace) -> int:
    """Start the PySide6 kiosk application."""
    try:
        from faceguard.gui.app import run_gui
    except ImportError as error:
        raise CommandError(f"the kiosk window cannot start: {error}") from error
    return int(run_gui(ctx, args))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `faceguard` console script."""
    return cli_main(argv, open_gui=open_gui)


if __name__ == "__main__":
    sys.exit(main())
