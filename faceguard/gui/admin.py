"""Admin accounts in the window: the first administrator's PIN on first run, signing in with
an account and its PIN, the lock-out after five wrong tries (per account), what each role
may open, and each of these in the audit table under the account's name.

The PIN and the lock-out live in the face library (:mod:`faceguard.core.admin`); a library that
was protected and has lost its PIN shows the recovery steps instead of a first-run dialog."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from PySide6.QtCore import QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
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

from faceguard.core.admin import (
    AccountPinStore,
    CredentialState,
    credential_state,
    default_account,
    pin_gate,
    recovery_message,
)
from faceguard.core.context import AppContext
from faceguard.core.pin import (
    MIN_PASSWORD_LEN,
    MIN_PIN_DIGITS,
    MemoryPinStore,
    PinError,
    PinGate,
    hash_pin,
    pin_problem,
)
from faceguard.core.roles import Permission, may
from faceguard.errors import FaceGuardError, LibraryClosedError
from faceguard.gui import theme
from faceguard.library.accounts import FIRST_ACCOUNT, Account, find_account

log = logging.getLogger(__name__)

DialogOpener = Callable[[QDialog], int]


def audit(ctx: AppContext, action: str, details: str | dict[str, object] = "") -> None:
    """Write an admin action to the audit table under the signed-in account's name (never
    fails the action itself; a closed context is refused loudly, not logged and ignored)."""
    try:
        ctx.library.audit(ctx.actor, action, details)
    except LibraryClosedError:
        raise
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
        buttons = theme.accept_cancel(self, self.submit, accept=QDialogButtonBox.StandardButton.Ok)
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
    """Asks for an admin account and its PIN; shows tries left and a count-down while that
    account is locked. On success ``signed_in`` is the account."""

    def __init__(self, ctx: AppContext, reason: str, parent: QWidget | None = None, *,
                 purpose: str = "", clock: Callable[[], float] = time.time,
                 legacy: PinGate | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Admin sign-in")
        self.ctx = ctx
        self.purpose = purpose
        self.clock = clock
        self.legacy = legacy  # a PIN only in memory (a library that cannot hold it yet)
        self.signed_in: Account | None = None
        heading = QLabel(reason)
        heading.setWordWrap(True)
        self.account = QLineEdit(FIRST_ACCOUNT if legacy else default_account(ctx.library))
        self.account.setPlaceholderText("Account")
        self.account.setEnabled(legacy is None)
        self.account.textChanged.connect(lambda _text: self.refresh_lock())
        self.pin = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.pin.setPlaceholderText("PIN")
        self.message = QLabel(" ")
        theme.set_role(self.message, "error")
        buttons = theme.accept_cancel(self, self.submit, accept=QDialogButtonBox.StandardButton.Ok)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Unlock")
        form = QFormLayout()
        form.addRow("Account", self.account)
        form.addRow("PIN", self.pin)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self._ticker = QTimer(self)
        self._ticker.timeout.connect(self.refresh_lock)
        self._lock_shown = False  # the message says the account is locked
        self.refresh_lock()

    @property
    def gate(self) -> PinGate:
        """The PIN gate (lock-out) of the account typed in."""
        if self.legacy is not None:
            return self.legacy
        return pin_gate(self.ctx, clock=self.clock,
                        account=self.account.text().strip() or FIRST_ACCOUNT)

    @property
    def locked(self) -> bool:
        return self.gate.remaining_lock_s() > 0

    def refresh_lock(self) -> None:
        """Disable the entry while the account is locked, with a count-down (ticking only
        while the dialog is on screen)."""
        left = self.gate.remaining_lock_s()
        self.pin.setEnabled(left <= 0)
        self.ok_button.setEnabled(left <= 0)
        if left > 0:
            self._lock_shown = True
            self.message.setText(f"Too many wrong tries. This account is locked for "
                                 f"{left:.0f} s.")
            if not self._ticker.isActive() and self.isVisible():
                self._ticker.start(1000)
        else:
            self._ticker.stop()
            if self._lock_shown:
                self._lock_shown = False
                self.message.setText(" ")
            self.pin.setFocus()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh_lock()  # starts the count-down of a locked account

    def hideEvent(self, event: QHideEvent) -> None:
        """Closed, accepted or rejected: the count-down stops with the dialog, so it never
        reads the library of a context that has been closed since."""
        self._ticker.stop()
        super().hideEvent(event)

    def submit(self) -> None:
        """Check the PIN for the account (nothing is checked while it is locked)."""
        if self.locked:
            self.refresh_lock()
            return
        pin = self.pin.text()
        self.pin.clear()
        try:
            if self.legacy is not None:
                check = self.legacy.attempt(pin)
                account = Account(0, FIRST_ACCOUNT, "administrator", "", 0, None,
                                  datetime.now(UTC)) if check.ok else None
                audit(self.ctx, "admin_unlock" if check.ok else "admin_pin_wrong",
                      {"purpose": self.purpose})
            else:
                result = self.ctx.sign_in(self.account.text(), pin, purpose=self.purpose,
                                          clock=self.clock)
                check, account = result.check, result.account
        except (PinError, FaceGuardError) as error:
            self.message.setText(str(error))
            return
        if check.ok and account is not None:
            self.signed_in = account
            self.accept()
            return
        self.message.setText(check.message().replace("Wrong PIN.", "Wrong account or PIN."))
        self.refresh_lock()


class AdminGate:
    """Guards the admin screens of one window: who is signed in, with which role, until when.

    :meth:`ask` signs an account in (or uses the account still signed in, for
    ``admin.session_s`` seconds after its last action) and checks that its role allows the
    permission; ``on_change`` is called when the signed-in account changes (the window then
    hides what that role may not do).
    """

    def __init__(self, ctx: AppContext, *, opener: DialogOpener = _exec,
                 clock: Callable[[], float] = time.time,
                 on_change: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        self.opener = opener
        self.clock = clock
        self.on_change = on_change or (lambda: None)
        self.session_until = 0.0
        self._shown_account: str | None = None  # whose role the window shows now
        self.gate: PinGate = pin_gate(ctx, clock=clock)

    def set_context(self, ctx: AppContext) -> None:
        """Follow a switch of data folder (the demo has its own accounts)."""
        self.ctx = ctx
        self.gate = pin_gate(ctx, clock=self.clock)
        self.sign_out(audited=False)

    @property
    def has_pin(self) -> bool:
        return self.state is CredentialState.SET

    @property
    def state(self) -> CredentialState:
        """Whether an account exists, may be created now, or must be recovered."""
        return credential_state(self.ctx, self.gate)

    @property
    def account(self) -> Account | None:
        """The account signed in now (None: nobody, or the session ran out)."""
        if self.ctx.signed_in is not None and self.clock() > self.session_until:
            self.sign_out(audited=False)
        return self.ctx.signed_in

    def allows(self, permission: Permission) -> bool:
        """Whether the account signed in may do this (True while nobody is signed in: the
        action then asks for an account)."""
        account = self.account
        return account is None or may(account.role, permission)

    def sign_out(self, *, audited: bool = True) -> None:
        """End the session (the next admin action asks for an account again)."""
        if self.ctx.signed_in is None:
            return
        if audited:
            audit(self.ctx, "admin_sign_out")
        self.ctx.sign_out()
        self.session_until = 0.0
        self._shown_account = None
        self.on_change()

    def show_recovery(self, parent: QWidget | None) -> None:
        """Tell the admin that the PIN is missing and how to recover it."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Admin PIN missing",
                          recovery_message(self.ctx), QMessageBox.StandardButton.Ok, parent)
        self.opener(box)

    def set_pin(self, parent: QWidget | None = None, *, first_run: bool = True) -> bool:
        """Ask for a new PIN and store its hash: the first administrator account on first
        run, else the signed-in account's. True when set."""
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
        """Store a PIN hash for the signed-in account (first run: the account ``admin``,
        an administrator); LibraryError when it cannot be written."""
        current = self.ctx.signed_in
        name = current.name if current is not None else default_account(self.ctx.library)
        AccountPinStore(self.ctx.library, name).save_pin_hash(pin_hash)
        self.gate = pin_gate(self.ctx, clock=self.clock)
        audit(self.ctx, "set_pin", {"account": name})

    def _start_session(self, account: Account) -> None:
        changed = self._shown_account != account.name
        self.ctx.signed_in = account
        self._shown_account = account.name
        self.session_until = self.clock() + float(self.ctx.settings.admin_session_s)
        if changed:
            self.on_change()

    def ask(self, parent: QWidget | None, purpose: str,
            permission: Permission | None = None) -> bool:
        """True when an account whose role allows ``permission`` is signed in (asked for,
        or still signed in); a role that may not is told so."""
        current = self.account
        if current is not None and (permission is None or may(current.role, permission)):
            self._start_session(current)
            return True
        state = self.state
        if state is CredentialState.RECOVERY:
            self.show_recovery(parent)
            return False
        if state is CredentialState.FIRST_RUN:
            if not self.set_pin(parent):
                return False
            first = find_account(self.ctx.library, FIRST_ACCOUNT)
            if first is not None:
                self._start_session(first)
            return True
        previous = self.ctx.signed_in
        legacy = self.gate if isinstance(self.gate.store, MemoryPinStore) else None
        dialog = PinDialog(self.ctx, f"Sign in to {purpose}.", parent, purpose=purpose,
                           clock=self.clock, legacy=legacy)
        if self.opener(dialog) != QDialog.DialogCode.Accepted or dialog.signed_in is None:
            return False
        account = dialog.signed_in
        if permission is not None and not may(account.role, permission):
            audit(self.ctx, "admin_refused", {"purpose": purpose, "role": account.role})
            self.ctx.signed_in = previous  # the refused account does not stay signed in
            box = QMessageBox(QMessageBox.Icon.Information, "Not allowed",
                              f"{account.name} is a {account.role} account and may not "
                              f"{permission.value}. Ask an administrator.",
                              QMessageBox.StandardButton.Ok, parent)
            self.opener(box)
            return False
        self._start_session(account)
        return True
