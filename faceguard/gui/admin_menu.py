"""The window's Admin menu (on the menu bar and behind the header's Admin button): its entries,
each behind the account sign-in and the role's permission, and what each one opens.

Entries the signed-in account's role may not use are hidden; the button names the account.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import SignalInstance
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QMenu, QToolButton

from faceguard.core.access_admin import AccessAdmin
from faceguard.core.door import DoorResult
from faceguard.core.roles import Permission
from faceguard.gui.door_panel import DoorSettingsDialog
from faceguard.gui.encryption_dialog import EncryptionDialog
from faceguard.gui.enrol import EnrolDialog
from faceguard.gui.import_dialog import ImportDialog
from faceguard.gui.logs import LogsDialog
from faceguard.gui.people import PeopleDialog
from faceguard.gui.rules_editor import RulesDialog
from faceguard.gui.settings_dialog import SettingsDialog
from faceguard.gui.tasks import Task
from faceguard.kiosk.decisions import KioskEvent

if TYPE_CHECKING:
    from faceguard.gui.main_window import MainWindow


class AdminMenu(QMenu):
    """The Admin menu of one :class:`MainWindow`; ``button`` opens it from the header."""

    def __init__(self, window: MainWindow, button: QToolButton) -> None:
        super().__init__("&Admin", window)
        self.main = window
        self.button = button
        self.logs: list[LogsDialog] = []  # open entry logs: they hear each new event
        people, logs, settings = Permission.PEOPLE, Permission.LOGS, Permission.SETTINGS
        entries: list[tuple[str, Callable[[], object], Permission | None]] = [
            ("Enrol a person…", self.open_enrol, people), ("People…", self.open_people, people),
            ("Import a folder of people…", self.open_import, people),
            ("Entry log…", self.open_logs, logs),
            ("Access rules…", self.open_rules, settings),
            ("Door…", self.open_door_settings, settings),
            ("Open the door", self.open_door, Permission.KIOSK),
            ("Settings…", self.open_settings, settings),
            ("Encryption…", self.open_encryption, settings),
            ("Change my PIN…", self.change_pin, None)]
        self.role_actions: list[tuple[QAction, Permission]] = []
        for text, slot, permission in entries:
            action = self.addAction(text, slot)
            if permission is not None:
                self.role_actions.append((action, permission))
        self.addSeparator()
        self.sign_out_action = self.addAction("Sign out", self._sign_out)
        self.sign_out_action.setVisible(False)
        self.aboutToShow.connect(self.show_role)
        button.setMenu(self)

    def show_role(self) -> None:
        """Show only what the signed-in account's role may do (everything while nobody is
        signed in: each entry then asks for an account)."""
        admin = self.main.admin
        account = admin.account
        for action, permission in self.role_actions:
            action.setVisible(admin.allows(permission))
        self.sign_out_action.setVisible(account is not None)
        if account is not None:
            self.sign_out_action.setText(f"Sign out {account.name} ({account.role})")
        self.button.setText("Admin" if account is None else f"Admin: {account.name}")

    def event_logged(self, event: KioskEvent) -> None:
        """A new kiosk event: the open entry logs add it."""
        for dialog in self.logs:
            dialog.event_logged(event)

    def first_run_pin(self) -> None:
        """First run: the first administrator's PIN, then the choice of encrypting the face
        data (keyring or passphrase; the dialog says what is lost without)."""
        main = self.main
        if not main.admin.has_pin and main.admin.set_pin(main, first_run=True) \
                and main.ctx.encryption_status().state == "off":
            main.opener(EncryptionDialog(main.ctx, main.runner, main))

    def _unlock(self, purpose: str, permission: Permission | None = None) -> bool:
        return self.main.admin.ask(self.main, purpose, permission)

    def _sign_out(self) -> None:
        self.main.admin.sign_out()

    def _open_for_people(self, dialog: QDialog, changed: SignalInstance) -> None:
        """Open a dialog that changes who is enrolled; the window's counts follow."""
        changed.connect(self._people_changed)
        self.main.opener(dialog)
        self.main.refresh_counts()

    def _people_changed(self, *_details: object) -> None:
        self.main.refresh_counts()

    def open_enrol(self) -> None:
        if not self._unlock("enrol a person", Permission.PEOPLE):
            return
        main = self.main
        dialog = EnrolDialog(main.ctx, main.runner, main, frame_provider=main.current_frame)
        self._open_for_people(dialog, dialog.enrolled)

    def open_people(self) -> None:
        if not self._unlock("manage people", Permission.PEOPLE):
            return
        main = self.main
        dialog = PeopleDialog(main.ctx, main.runner, main, frame_provider=main.current_frame,
                              opener=main.opener)
        self._open_for_people(dialog, dialog.changed)

    def open_import(self) -> None:
        if not self._unlock("import people", Permission.PEOPLE):
            return
        dialog = ImportDialog(self.main.ctx, self.main.runner, self.main)
        self._open_for_people(dialog, dialog.imported)

    def open_logs(self) -> None:
        if not self._unlock("see the entry log", Permission.LOGS):
            return
        dialog = LogsDialog(self.main.ctx, self.main)
        dialog.allow_reports(self.main.admin.allows(Permission.REPORTS))
        self.logs.append(dialog)
        try:
            self.main.opener(dialog)
        finally:
            self.logs.remove(dialog)

    def open_settings(self) -> None:
        """The settings dialog; what it saves is put in force in the window at once."""
        if not self._unlock("change the settings", Permission.SETTINGS):
            return
        dialog = SettingsDialog(self.main.ctx, self.main)
        self.main.opener(dialog)
        if dialog.saved is not None:
            self.main.settings_saved(dialog.saved)

    def open_encryption(self) -> None:
        """Encryption of the face data: its state, and turning it on (administrators)."""
        if not self._unlock("encrypt the face data", Permission.SETTINGS):
            return
        self.main.opener(EncryptionDialog(self.main.ctx, self.main.runner, self.main))

    def open_rules(self) -> None:
        """The access rules editor; the kiosk reads the rules again after each change."""
        if not self._unlock("change the access rules", Permission.SETTINGS):
            return
        ctx, gate = self.main.ctx, self.main.pipeline.gate
        admin = AccessAdmin(ctx, actor=ctx.actor)
        if gate is not None:
            admin.on_changed(gate.reload)
        self.main.opener(RulesDialog(admin, self.main))

    def open_door_settings(self) -> None:
        """The door settings with "Test door"."""
        main = self.main
        if not self._unlock("change the door settings", Permission.SETTINGS) \
                or main.pipeline.gate is None:
            return
        main.opener(DoorSettingsDialog(main.ctx, main.pipeline.gate, main.runner, main))

    def open_door(self) -> None:
        """The admin's manual "Open door": behind the PIN, audited, in a worker."""
        gate = self.main.pipeline.gate
        if gate is None or not self._unlock("open the door", Permission.KIOSK):
            return
        actor = self.main.ctx.actor
        task = Task(lambda _task: gate.manual_open(actor))
        task.on_done(self._door_opened)
        task.failed.connect(partial(self.main.show_error, "Door"))
        self.main.runner.start(task)

    def _door_opened(self, result: object) -> None:
        assert isinstance(result, DoorResult)
        if result.done or result.queued:
            self.main.statusBar().showMessage("Door opened by the admin (audited)", 10_000)
        else:
            self.main.show_error("Door", f"The door did not open: {result.message}")

    def change_pin(self) -> None:
        if not self._unlock("change the admin PIN"):
            return
        self.main.admin.set_pin(self.main, first_run=False)
