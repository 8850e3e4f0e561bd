"""The window's side of issue 12: signing in with an account, what each role sees and may
open, the enrolment dialog's consent box, and the passphrase asked for an encrypted library."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialog, QMessageBox

from faceguard.core.context import AppContext
from faceguard.core.pin import hash_pin
from faceguard.core.roles import Permission
from faceguard.gui.admin import AdminGate, PinDialog
from faceguard.gui.app import unlock_face_data
from faceguard.gui.enrol import EnrolDialog
from faceguard.gui.logs import LogsDialog
from faceguard.library import encryption
from faceguard.library.accounts import add_account
from faceguard.library.consent import get_consent
from tests.conftest import make_data_dir
from tests.sync_runner import SyncRunner

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "resources" / "demo" / "astronaut.png"
CHEAP = 2**10


@pytest.fixture()
def ctx(tmp_path: Path, open_context: Callable[..., AppContext]) -> AppContext:
    context = open_context(make_data_dir(tmp_path, min_face_px=40, consent_required="auto"))
    add_account(context.library, "Ada", "administrator", hash_pin("583020", n=CHEAP),
                actor="cli")
    add_account(context.library, "Max", "manager", hash_pin("731904", n=CHEAP), actor="cli")
    add_account(context.library, "Vic", "viewer", hash_pin("482913", n=CHEAP), actor="cli")
    return context


def _sign_in_as(qtbot, account: str, pin: str):  # type: ignore[no-untyped-def]
    shown: list[QDialog] = []

    def opener(dialog: QDialog) -> int:
        qtbot.addWidget(dialog)
        shown.append(dialog)
        if isinstance(dialog, PinDialog):
            dialog.account.setText(account)
            dialog.pin.setText(pin)
            dialog.submit()
        return dialog.result()

    return opener, shown


def test_a_viewer_sees_the_log_only_and_is_told_what_it_may_not_do(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    opener, shown = _sign_in_as(qtbot, "vic", "482913")
    changes: list[str] = []
    gate = AdminGate(ctx, opener=opener, on_change=lambda: changes.append("role"))
    assert gate.ask(None, "see the entry log", Permission.LOGS)
    assert gate.account is not None and gate.account.name == "Vic" and changes == ["role"]
    assert gate.allows(Permission.LOGS) and not gate.allows(Permission.PEOPLE)
    assert not gate.allows(Permission.REPORTS) and not gate.allows(Permission.SETTINGS)
    assert gate.ask(None, "see the entry log", Permission.LOGS)  # still signed in: no dialog
    assert len(shown) == 1
    logs = LogsDialog(ctx, None)
    qtbot.addWidget(logs)
    logs.allow_reports(gate.allows(Permission.REPORTS))
    assert logs.export_events_button.isHidden() and not logs.tabs.isTabVisible(1)
    gate.sign_out()
    assert gate.account is None and ctx.actor == "admin"
    assert not gate.ask(None, "change the settings", Permission.SETTINGS)  # Vic again: refused
    assert isinstance(shown[-1], QMessageBox) and "may not change the settings" in \
        shown[-1].text()
    actions = [(e.actor, e.action) for e in ctx.library.list_audit(newest_first=False)]
    assert ("Vic", "admin_unlock") in actions and ("Vic", "admin_sign_out") in actions
    assert actions[-1] == ("Vic", "admin_refused") and ctx.signed_in is None


def test_a_manager_may_manage_people_and_their_actions_carry_their_name(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    opener, _ = _sign_in_as(qtbot, "Max", "731904")
    gate = AdminGate(ctx, opener=opener)
    assert gate.ask(None, "enrol a person", Permission.PEOPLE)
    assert gate.allows(Permission.REPORTS) and not gate.allows(Permission.ACCOUNTS)
    dialog = EnrolDialog(ctx, SyncRunner())
    qtbot.addWidget(dialog)
    dialog.name.setText("Eileen Collins")
    dialog.add_files([ASTRONAUT])
    dialog.enrol()  # this new library requires consent: refused until it is given
    assert "requires the person's consent" in dialog.status.text()
    assert ctx.library.list_people() == []
    dialog.consent.setChecked(True)
    dialog.enrol()
    assert "who gave it" in dialog.status.text()
    dialog.consent_by.setText("Eileen Collins (form 3)")
    with qtbot.waitSignal(dialog.enrolled, timeout=10_000):
        dialog.enrol()
    [person] = ctx.library.list_people()
    consent = get_consent(ctx.library, person.id)
    assert consent is not None and consent.given_by == "Eileen Collins (form 3)"
    assert consent.recorded_by == "Max" and consent.notice_version == ctx.notice_version()
    assert {e.actor for e in ctx.library.list_audit(limit=4)} == {"Max"}


def test_a_wrong_pin_for_one_account_does_not_lock_another(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    now = [1000.0]
    opener, shown = _sign_in_as(qtbot, "Max", "000000")
    gate = AdminGate(ctx, opener=opener, clock=lambda: now[0])
    for _ in range(5):
        assert not gate.ask(None, "manage people", Permission.PEOPLE)
    dialog = shown[-1]
    assert isinstance(dialog, PinDialog) and dialog.locked
    dialog.account.setText("Ada")  # another account: not locked
    assert not dialog.locked and dialog.pin.isEnabled()


def test_the_window_asks_for_the_passphrase_of_an_encrypted_library(
        ctx: AppContext, open_context: Callable[..., AppContext]) -> None:
    passphrase = "window passphrase 2026"
    encryption.enable(ctx.library, passphrase=passphrase, use_keyring=False, actor="cli")
    folder = ctx.data_dir
    ctx.close()
    reopened = open_context(folder)
    assert reopened.face_data_locked()
    answers = ["wrong one, surely", passphrase]
    messages: list[str] = []

    def ask(message: str) -> str | None:
        messages.append(message)
        return answers.pop(0)

    assert unlock_face_data(reopened, ask)
    assert not reopened.face_data_locked()
    assert messages[1].startswith("Cannot open the encrypted face data: the passphrase is wrong")
    assert not unlock_face_data(open_context(folder), lambda _message: None)  # cancelled


def test_the_admin_menu_shows_only_what_the_signed_in_role_may_do(
        qtbot, ctx: AppContext, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from faceguard.gui.main_window import MainWindow
    from faceguard.gui.tasks import ThreadRunner

    opener, _ = _sign_in_as(qtbot, "Vic", "482913")
    window = MainWindow(ctx, ThreadRunner(), source=str(tmp_path / "no-such-folder"),
                        opener=opener, ask_first_pin=False)
    qtbot.addWidget(window)

    def visible() -> set[str]:
        return {action.text() for action in window.admin_menu.actions()
                if action.isVisible() and action.text()}

    everything = visible()
    assert {"Enrol a person…", "Entry log…", "Settings…"} <= everything
    assert window.admin.ask(window, "see the entry log", Permission.LOGS)
    assert visible() == {"Entry log…", "Change my PIN…", "Sign out Vic (viewer)"}
    assert window.header.admin_button.text() == "Admin: Vic"
    window.admin.sign_out()
    assert visible() == everything and window.header.admin_button.text() == "Admin"
    window.shutdown()


def test_the_import_dialog_records_who_collected_the_consent(
        qtbot, ctx: AppContext, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from faceguard.gui.import_dialog import ImportDialog
    from faceguard.gui.tasks import ThreadRunner

    folder = tmp_path / "people"
    (folder / "Eileen Collins").mkdir(parents=True)
    shutil.copy(ASTRONAUT, folder / "Eileen Collins" / "a.png")
    dialog = ImportDialog(ctx, ThreadRunner())
    qtbot.addWidget(dialog)
    dialog.import_folder(folder)  # consent is required on this new library
    assert "requires consent" in dialog.status.text() and ctx.library.list_people() == []
    dialog.consent_by.setText("HR, signed forms 2026")
    with qtbot.waitSignal(dialog.imported, timeout=30_000):
        dialog.import_folder(folder)
    [person] = ctx.library.list_people()
    consent = get_consent(ctx.library, person.id)
    assert consent is not None and consent.given_by == "HR, signed forms 2026"


def test_the_encryption_dialog_encrypts_with_a_passphrase(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from faceguard.gui.encryption_dialog import EncryptionDialog

    keyring = pytest.importorskip("keyring")
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # a kiosk without a keyring
    try:
        person = ctx.library.add_person("Ana")
        ctx.library.add_template(person.id, np.ones(128, np.float32), "m", 0.9,
                                 b"\xff\xd8crop")
        dialog = EncryptionDialog(ctx, SyncRunner())
        qtbot.addWidget(dialog)
        assert "stored unencrypted" in dialog.state.text()
        assert "no keyring" in dialog.state.text() and not dialog.use_keyring.isEnabled()
        dialog.passphrase.setText("short")
        dialog.enable()
        assert "at least 12 characters" in dialog.status.text()
        dialog.passphrase.setText("dialog passphrase 2026")
        dialog.repeat.setText("dialog passphrase 2025")
        dialog.enable()
        assert "differ" in dialog.status.text()
        dialog.repeat.setText("dialog passphrase 2026")
        dialog.enable()
        assert dialog.result_ is not None and dialog.result_.sealed == 2
        assert dialog.state.text().startswith("Encrypted (AES-256-GCM), key protected by a "
                                              "passphrase") and dialog.enable_button.isHidden()
        assert ctx.encryption_status().state == "on"
    finally:
        keyring.set_keyring(previous)


def test_the_first_run_sets_the_first_pin_then_offers_encryption(  # type: ignore[no-untyped-def]
        qtbot, tmp_path: Path, open_context: Callable[..., AppContext]) -> None:
    from faceguard.gui.admin import SetPinDialog
    from faceguard.gui.encryption_dialog import EncryptionDialog
    from faceguard.gui.main_window import MainWindow
    from faceguard.gui.tasks import ThreadRunner

    fresh = open_context(make_data_dir(tmp_path, min_face_px=40))
    shown: list[QDialog] = []

    def opener(dialog: QDialog) -> int:
        qtbot.addWidget(dialog)
        shown.append(dialog)
        if isinstance(dialog, SetPinDialog):
            dialog.pin.setText("583020")
            dialog.repeat.setText("583020")
            dialog.submit()
        return dialog.result()

    window = MainWindow(fresh, ThreadRunner(), source=str(tmp_path / "none"), opener=opener,
                        ask_first_pin=False)
    qtbot.addWidget(window)
    window.admin_menu.first_run_pin()
    assert [type(d) for d in shown] == [SetPinDialog, EncryptionDialog]
    assert [a.name for a in fresh.list_accounts()] == ["admin"]
    window.shutdown()
