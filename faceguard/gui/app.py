"""Starting the kiosk window: ``run_gui(ctx, args)`` is what ``faceguard`` with no command calls.

Options read from ``args`` (when the top-level parser has them): ``demo`` (the built-in demo
with a throw-away library, or ``--data-dir``), ``source`` (a camera index, file, URL, folder or
``demo``), ``kiosk`` (start full screen). ``data_dir`` and ``min_face`` are the usual ones.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit, QMessageBox

from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.gui.main_window import MainWindow
from faceguard.gui.qt_binding import check_binding
from faceguard.gui.soak import SoakRun
from faceguard.gui.tasks import ThreadRunner
from faceguard.gui.theme import apply_theme
from faceguard.gui.upgrade import upgrade_library
from faceguard.kiosk.demo import DemoSession, prepare_demo
from faceguard.paths import resources_dir


def application() -> QApplication:
    """The QApplication (created once), themed."""
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("FaceGuard")
    app.setOrganizationName("FaceGuard")
    icon = resources_dir() / "icons" / "faceguard_256.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    apply_theme(app)
    return app


def quit_on_signals(app: QApplication) -> Callable[[], None]:
    """Ctrl-C and SIGTERM close the window cleanly (the demo's folder is still removed).

    Returns the function that puts the previous handlers back.
    """
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, lambda *_: app.quit())
    timer = QTimer()
    timer.timeout.connect(lambda: None)  # lets Python run its signal handlers
    timer.start(250)

    def restore() -> None:
        timer.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore


PassphraseAsker = Callable[[str], "str | None"]


def _ask_passphrase(message: str) -> str | None:
    text, ok = QInputDialog.getText(None, "Encrypted face data", message,
                                    QLineEdit.EchoMode.Password)
    return text if ok else None


def unlock_face_data(ctx: AppContext, ask: PassphraseAsker = _ask_passphrase,
                     tries: int = 3) -> bool:
    """Ask for the passphrase of an encrypted library that was not unlocked from the keyring
    or $FACEGUARD_PASSPHRASE; True when the face data can be read (or is not encrypted)."""
    if not ctx.face_data_locked():
        return True
    message = ("The face data of this kiosk is encrypted. Enter its passphrase (or start "
               "FaceGuard with FACEGUARD_PASSPHRASE set).")
    for _ in range(tries):
        passphrase = ask(message)
        if passphrase is None:
            return False
        try:
            ctx.unlock_face_data(passphrase)
            return True
        except FaceGuardError as error:
            text = str(error)
            message = f"{text[0].upper()}{text[1:]}. Try again."
    return False


def run_gui(ctx: AppContext, args: argparse.Namespace) -> int:
    """Open the kiosk window and run until it is closed; returns the exit code."""
    app = application()
    check_binding()
    soak_minutes: float | None = getattr(args, "soak_minutes", None)
    demo = bool(getattr(args, "demo", False)) or soak_minutes is not None
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
        elif not unlock_face_data(ctx):
            QMessageBox.critical(None, "FaceGuard cannot start",
                                 "The face data is encrypted and its passphrase was not given.")
            return 1
        upgrade_library(ctx)  # an older model's templates: re-embedded, with a progress bar
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
    restore_signals = quit_on_signals(app)
    soak: SoakRun | None = None
    if soak_minutes is not None:
        soak = SoakRun(window, soak_minutes, every_s=getattr(args, "soak_every", 30.0),
                       quit_app=app.quit)
        soak.start()
    try:
        code = int(app.exec())
        if soak is not None:
            soak.finish()  # a no-op unless stopped early (SIGINT/SIGTERM): report what was seen
            return soak.exit_code or code
        return code
    finally:
        restore_signals()
        window.shutdown()
        if window.demo is not None:
            window.demo.close()
