"""The admin PIN in the window: setting it on first run, asking for it, locking after five
wrong tries, and writing each of these to the audit table.

The PIN and the lock-out live in the face library (:mod:`faceguard.core.admin`); a library that
was protected and has lost its PIN shows the recovery steps instead of a first-run dialog."""

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
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.admin import CredentialState, credential_state, pin_gate, recovery_message
from faceguard.core.context import AppContext
from faceguard.core.pin import (
    MIN_PASSWORD_LEN,
    MIN_PIN_DIGITS,
    PinError,
    PinGate,
    hash_pin,
    pin_problem,
)
from faceguard.errors import FaceGuardError
from faceguard.gui import theme

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
        rules = QLabel(f"At least {MIN_PIN_DIGITS} digits, or a password of at least "
                       f"{MIN_PASSWORD_LEN} characters. Common PINs, sequences, repeats and "
                       "dates are refused.")
        rules.setWordWrap(True)
        theme.set_role(rules, "hint")
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
        layout.addWidget(rules)
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
                 clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.opener = opener
        self.clock = clock
        self.gate: PinGate = pin_gate(ctx, clock=clock)

    def set_context(self, ctx: AppContext) -> None:
        """Follow a switch of data folder (the demo has its own PIN)."""
        self.ctx = ctx
        self.gate = pin_gate(ctx, clock=self.clock)

    @property
    def has_pin(self) -> bool:
        return self.gate.has_pin

    @property
    def state(self) -> CredentialState:
        """Whether the PIN is set, may be chosen now, or must be recovered."""
        return credential_state(self.ctx, self.gate)

    def show_recovery(self, parent: QWidget | None) -> None:
        """Tell the admin that the PIN is missing and how to recover it."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Admin PIN missing",
                          recovery_message(self.ctx), QMessageBox.StandardButton.Ok, parent)
        self.opener(box)

    def set_pin(self, parent: QWidget | None = None, *, first_run: bool = True) -> bool:
        """Ask for a new PIN and store its hash in the library; True when set."""
        if first_run and self.state is CredentialState.RECOVERY:
            self.show_recovery(parent)
            return False
        dialog = SetPinDialog(parent, first_run=first_run)
        if self.opener(dialog) != QDialog.DialogCode.Accepted or not dialog.pin_hash:
            return False
        try:
            self.store_hash(dialog.pin_hash)
        except FaceGuardError as error:
            box = QMessageBox(QMessageBox.Icon.Warning, "The PIN was not set", str(error),
                              QMessageBox.StandardButton.Ok, parent)
            self.opener(box)
            return False
        return True

    def store_hash(self, pin_hash: str) -> None:
        """Store a PIN hash in the library (LibraryError when it cannot be written)."""
        self.gate.store.save_pin_hash(pin_hash)
        self.gate = pin_gate(self.ctx, clock=self.clock)
        audit(self.ctx, "set_pin")

    def ask(self, parent: QWidget | None, purpose: str) -> bool:
        """True when the admin PIN was given (set first when there is none)."""
        state = self.state
        if state is CredentialState.RECOVERY:
            self.show_recovery(parent)
            return False
        if state is CredentialState.FIRST_RUN:
            return self.set_pin(parent)
        dialog = PinDialog(self.gate, f"Enter the admin PIN to {purpose}.", parent,
                           on_result=lambda action: audit(self.ctx, action,
                                                          {"purpose": purpose}))
        return self.opener(dialog) == QDialog.DialogCode.Accepted
