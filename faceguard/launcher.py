"""The `faceguard` program: the CLI, or the kiosk window when no command is given.

This is the one place where the command line and the Qt GUI meet; the CLI itself (a core
module) never imports Qt.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import faceguard.native_threads  # noqa: F401  (pins native thread pools before numpy loads)
from faceguard.cli import main as cli_main
from faceguard.console import CommandError
from faceguard.core.context import AppContext


def display_problem(environ: Mapping[str, str] = os.environ,
                    platform: str = sys.platform) -> str | None:
    """Why no window can open here (Linux without a display), or None."""
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display to open the kiosk window on (DISPLAY and WAYLAND_DISPLAY are unset); "
            "start it from a desktop session, or use 'faceguard run --source SRC --headless'")


def open_gui(ctx: AppContext, args: argparse.Namespace) -> int:
    """Start the PySide6 kiosk application."""
    problem = display_problem()
    if problem:
        raise CommandError(problem)
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
