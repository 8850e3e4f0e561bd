"""Starting the kiosk window: ``run_gui(ctx, args)`` is what ``faceguard`` with no command calls.

Options read from ``args`` (when the top-level parser has them): ``demo`` (the built-in demo
with a throw-away library, or ``--data-dir``), ``source`` (a camera index, file, URL, folder or
``demo``), ``kiosk`` (start full screen). ``data_dir`` and ``min_face`` are the usual ones.
"""

from __future__ import annotations

import argparse
import sys

from PySide6.QtWidgets import QApplication, QMessageBox

from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.gui.main_window import MainWindow
from faceguard.gui.theme import apply_theme
from faceguard.gui.threading import ThreadRunner
from faceguard.kiosk.demo import DemoSession, prepare_demo


def application() -> QApplication:
    """The QApplication (created once), themed."""
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("FaceGuard")
    app.setOrganizationName("FaceGuard")
    apply_theme(app)
    return app


def run_gui(ctx: AppContext, args: argparse.Namespace) -> int:
    """Open the kiosk window and run until it is closed; returns the exit code."""
    app = application()
    demo = bool(getattr(args, "demo", False))
    source = getattr(args, "source", None)
    kiosk = bool(getattr(args, "kiosk", False))
    session: DemoSession | None = None
    runner = ThreadRunner()
    try:
        if demo:
            session = prepare_demo(getattr(args, "data_dir", None), base=ctx.settings,
                                   min_face=getattr(args, "min_face", None))
            ctx = session.ctx
            source = source or "demo"
        window = MainWindow(ctx, runner, source=source, demo=session)
    except FaceGuardError as error:
        QMessageBox.critical(None, "FaceGuard cannot start", str(error))
        if session is not None:
            session.close()
        return 1
    if kiosk:
        window.enter_kiosk()
    else:
        window.show()
    try:
        return int(app.exec())
    finally:
        window.shutdown()
        if window.demo is not None:
            window.demo.close()
