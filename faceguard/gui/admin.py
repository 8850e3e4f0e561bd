"""The admin PIN in the window: setting it on first run, asking for it, locking after five
wrong tries, and writing each of these to the audit table."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.gui import theme
from faceguard.kiosk.pin import PinError, PinGate, hash_pin, pin_problem
from faceguard.settings import save_settings

log = logging.getLogger(__name__)

ACTOR = "admin"
DialogOpener = Callable[[QDialog], int]


def audit(ctx: AppContext, action: str, details: str | dict[str, object] = "") -> None:
    """Write an admin action to the audit table (never fails the action itself)."""
    try:
        ctx.library.audit(ACTOR, action, details)
    except FaceGuardError as error:
        log.warning("audit entry %s not written: %s", action, error)


def _exec(dialog: QDialog) -> int:
    return dialog.exec()


class SetPinDialog(QDialog):
    """Choose the admin PIN (first run, or a change)."""

    def __init__(self, parent: QWidget | None = None, *, first_run: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set the admin PIN")
        self.pin_hash: str | None = None
        intro = QLabel("Choose the PIN that protects enrolment, the logs and the settings, and "
                       "leaving kiosk mode." if first_run else "Choose a new admin PIN.")
        intro.setWordWrap(True)
        self.pin = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.repeat = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.message = QLabel(" ")
        theme.set_role(self.message, "error")
        form = QFormLayout()
        form.addRow("New PIN", self.pin)
        form.addRow("Repeat", self.repeat)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok |
                                   QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)

    def submit(self) -> None:
        """Check the two entries and hash the PIN (salted scrypt)."""
        pin = self.pin.text()
        problem = pin_problem(pin)
        if problem is None and pin != self.repeat.text():
            problem = "the two entries differ"
        if problem:
            self.message.setText(problem[0].upper() + problem[1:] + ".")
            return
        self.pin_hash = hash_pin(pin)
        self.accept()


class PinDialog(QDialog):
    """Asks for the admin PIN; shows tries left and a count-down while locked."""

    def __init__(self, gate: PinGate, reason: str, parent: QWidget | None = None,
                 on_result: Callable[[str], None] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Admin PIN")
        self.gate = gate
        self.on_result = on_result or (lambda action: None)
        heading = QLabel(reason)
        heading.setWordWrap(True)
        self.pin = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.pin.setPlaceholderText("PIN")
        self.message = QLabel(" ")
        theme.set_role(self.message, "error")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok |
                                   QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Unlock")
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.pin)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self._ticker = QTimer(self)
        self._ticker.timeout.connect(self.refresh_lock)
        self.refresh_lock()

    @property
    def locked(self) -> bool:
        return self.gate.remaining_lock_s() > 0

    def refresh_lock(self) -> None:
        """Disable the entry while locked, with a count-down; enable it afterwards."""
        left = self.gate.remaining_lock_s()
        self.pin.setEnabled(left <= 0)
        self.ok_button.setEnabled(left <= 0)
        if left > 0:
            self.message.setText(f"Too many wrong tries. Admin is locked for {left:.0f} s.")
            if not self._ticker.isActive():
                self._ticker.start(1000)
        else:
            if self._ticker.isActive():
                self._ticker.stop()
                self.message.setText(" ")
            self.pin.setFocus()

    def submit(self) -> None:
        """Check the entered PIN (nothing is checked while locked)."""
        if self.locked:
            self.refresh_lock()
            return
        try:
            check = self.gate.attempt(self.pin.text())
        except PinError as error:
            self.message.setText(str(error))
            return
        self.pin.clear()
        if check.ok:
            self.on_result("admin_unlock")
            self.accept()
            return
        self.on_result("admin_locked" if check.locked else "admin_pin_wrong")
        self.message.setText(check.message())
        self.refresh_lock()


class AdminGate:
    """Guards the admin screens of one window: one lock-out counter for all of them."""

    def __init__(self, ctx: AppContext, *, opener: DialogOpener = _exec,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.opener = opener
        self.gate = PinGate(ctx.settings.pin_hash, lock_s=float(ctx.settings.admin_lock_s),
                            clock=clock)

    def set_context(self, ctx: AppContext) -> None:
        """Follow a switch of data folder (the demo has its own PIN)."""
        self.ctx = ctx
        self.gate.stored_hash = ctx.settings.pin_hash
        self.gate.lock_s = float(ctx.settings.admin_lock_s)

    @property
    def has_pin(self) -> bool:
        return self.gate.has_pin

    def set_pin(self, parent: QWidget | None = None, *, first_run: bool = True) -> bool:
        """Ask for a new PIN and store its hash in the settings; True when set."""
        dialog = SetPinDialog(parent, first_run=first_run)
        if self.opener(dialog) != QDialog.DialogCode.Accepted or not dialog.pin_hash:
            return False
        self.store_hash(dialog.pin_hash)
        return True

    def store_hash(self, pin_hash: str) -> None:
        """Save a PIN hash to the settings file and use it from now on."""
        settings = self.ctx.settings.replace(pin_hash=pin_hash)
        save_settings(settings, self.ctx.data_dir)
        self.ctx.settings = settings
        self.gate.stored_hash = pin_hash
        self.gate.failures = 0
        self.gate.locked_until = None
        audit(self.ctx, "set_pin")

    def ask(self, parent: QWidget | None, purpose: str) -> bool:
        """True when the admin PIN was given (set first when there is none)."""
        if not self.gate.has_pin:
            return self.set_pin(parent)
        dialog = PinDialog(self.gate, f"Enter the admin PIN to {purpose}.", parent,
                           on_result=lambda action: audit(self.ctx, action,
                                                          {"purpose": purpose}))
        return self.opener(dialog) == QDialog.DialogCode.Accepted
