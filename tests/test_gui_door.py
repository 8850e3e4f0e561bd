"""The door in the window (pytest-qt, offscreen): the rules editor, the door settings with
"Test door", the lock state and alarms in the status bar (the simulated door's contact; a
pty relay board unplugged and plugged back), and the admin's "Open the door"."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import QDialog

from faceguard.core.access import Verdict
from faceguard.core.access_admin import AccessAdmin, day_segments
from faceguard.core.context import AppContext
from faceguard.core.door.serial_relay import PRESETS
from faceguard.core.door.simulated import SimulatedDoor
from faceguard.core.pin import hash_pin
from faceguard.gui.admin import PinDialog
from faceguard.gui.door_panel import DoorSettingsDialog
from faceguard.gui.main_window import MainWindow
from faceguard.gui.rules_editor import RulesDialog
from faceguard.gui.tasks import ThreadRunner
from faceguard.settings import load_settings
from tests.conftest import make_data_dir
from tests.sync_runner import SyncRunner
from tests.test_door_drivers import FakeBoard

PIN = "258013"


@pytest.fixture()
def ctx(tmp_path: Path, open_context: Callable[..., AppContext]) -> AppContext:
    return open_context(make_data_dir(tmp_path, kiosk_name="lobby", min_face_px=40,
                                      access_timezone="Europe/Berlin"))


def actions(ctx: AppContext) -> list[str]:
    return [e.action for e in ctx.library.list_audit(newest_first=False)]


def test_day_segments_split_a_window_that_crosses_midnight() -> None:
    spans = day_segments([(6, 22 * 60, 6 * 60, None), (7, 600, 720, None),
                          (0, 0, 1440, None), (7, 1380, 60, None)])
    assert spans[6] == [(1320, 1440)] and spans[0] == [(0, 360), (0, 1440)]
    assert spans[7] == [(0, 60), (600, 720), (1380, 1440)]  # holidays stay on their row


def test_rules_editor_groups_hours_members_holidays_and_passes(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    ana = ctx.library.add_person("Ana Lima")
    bo = ctx.library.add_person("Bo Chen")
    admin = AccessAdmin(ctx, actor="admin")
    changes: list[int] = []
    admin.on_changed(lambda: changes.append(1))
    dialog = RulesDialog(admin)
    qtbot.addWidget(dialog)
    dialog.show()

    dialog.new_group.setText("  Night   shift ")
    dialog.add_group()
    assert dialog.current_group == "Night shift"
    dialog.days.setCurrentText("mon-fri")
    dialog.start.setText("22:00")
    dialog.end.setText("06:00")
    dialog.add_hours()
    assert dialog.window_list.count() == 5
    assert dialog.window_list.item(0).text() == "mon 22:00-06:00 (runs past midnight)"
    assert day_segments(dialog.grid.windows)[5] == [(0, 360)]  # Friday's night ends Saturday
    dialog.start.setText("25:00")  # bad input: one line, nothing changed
    dialog.add_hours()
    assert "between 00:00 and 24:00" in dialog.message.text()
    assert dialog.window_list.count() == 5
    dialog.window_list.setCurrentRow(4)
    dialog.remove_hours()
    assert dialog.window_list.count() == 4
    dialog.days.setCurrentText("sun")  # only at one door
    dialog.start.setText("10:00")
    dialog.end.setText("12:00")
    dialog.door.setText("back-door")
    dialog.add_hours()
    assert dialog.window_list.item(4).text() == "sun 10:00-12:00 at back-door only"
    dialog.window_list.setCurrentRow(4)
    dialog.remove_hours()
    assert dialog.window_list.count() == 4
    dialog.door.clear()

    names = [dialog.member_list.item(i).text() for i in range(dialog.member_list.count())]
    assert names == ["Ana Lima", "Bo Chen"]
    dialog.member_list.item(0).setCheckState(Qt.CheckState.Checked)
    dialog.save_members()
    assert admin.member_ids("Night shift") == {ana.id}

    dialog.tabs.setCurrentIndex(1)
    dialog.holiday_date.setDate(QDate(2026, 12, 25))
    dialog.holiday_name.setText("Christmas")
    dialog.add_holiday()
    assert dialog.holiday_list.item(0).text() == "2026-12-25  Christmas"

    dialog.tabs.setCurrentIndex(2)
    dialog.pass_table.selectRow(1)
    assert dialog.current_pass is not None and dialog.current_pass.name == "Bo Chen"
    dialog.use_from.setChecked(True)
    dialog.valid_from.setDate(QDate(2026, 3, 2))
    dialog.use_until.setChecked(True)
    dialog.valid_until.setDate(QDate(2026, 3, 6))
    dialog.save_pass()
    assert dialog.pass_table.item(1, 1).text() == "2026-03-02 to 2026-03-06"
    assert [p.label() for p in admin.passes()] == ["no limits", "2026-03-02 to 2026-03-06"]
    dialog.valid_until.setDate(QDate(2026, 3, 1))  # before the first day: refused
    dialog.save_pass()
    assert "before the first" in dialog.message.text()

    # what the editor stored decides at the door, in the kiosk's zone
    from faceguard.core.gate import Gate

    gate = Gate(ctx.library, ctx.settings, SimulatedDoor("lobby", pulse_s=0.1))
    try:
        berlin_tuesday_23h = datetime(2026, 3, 3, 22, 0, tzinfo=UTC)  # 23:00 in Berlin
        assert gate.decide(ana.id, berlin_tuesday_23h).allowed
        assert gate.decide(ana.id, berlin_tuesday_23h + timedelta(hours=9)).verdict \
            is Verdict.OUTSIDE_HOURS
        # Bo's pass: the last valid day is inclusive (until the end of 6 March, Berlin)
        assert gate.decide(bo.id, datetime(2026, 3, 6, 22, 59, tzinfo=UTC)).verdict \
            is Verdict.NO_GROUP  # valid, but in no group
        assert gate.decide(bo.id, datetime(2026, 3, 6, 23, 0, tzinfo=UTC)).verdict \
            is Verdict.EXPIRED
    finally:
        gate.close()
    audited = actions(ctx)
    for action in ("access_group_added", "access_window_added", "access_windows_removed",
                   "access_member_added", "holiday_set", "pass_changed"):
        assert action in audited, action
    assert len(changes) >= 6

    dialog.tabs.setCurrentIndex(0)
    dialog.remove_group()
    assert dialog.group_list.count() == 0 and admin.groups() == []


def test_door_settings_test_button_save_and_bad_values(
        qtbot, ctx: AppContext, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from faceguard.core.gate import Gate

    gate = Gate(ctx.library, ctx.settings)
    runner = SyncRunner()
    dialog = DoorSettingsDialog(ctx, gate, runner)
    qtbot.addWidget(dialog)
    assert dialog.sections["serial"].isHidden() and dialog.driver.currentText() == "simulated"
    dialog.pulse.setValue(0.2)
    dialog.test_door()  # through the runner, as a Task
    assert runner.started and dialog.last_test is not None and dialog.last_test.done
    assert dialog.outcome.text().startswith("Door test done: unlocked for 0.2 s")
    # a serial board that is not there: the test says so, in one line
    dialog.driver.setCurrentText("serial")
    assert not dialog.sections["serial"].isHidden()
    dialog.serial_port.setText(str(tmp_path / "no-such-port"))
    dialog.test_door()
    assert "cannot open the relay board" in dialog.outcome.text()
    dialog.save()  # refused: the driver cannot start; nothing saved, the old driver kept
    assert dialog.saved is None and load_settings(ctx.data_dir).door_driver == "simulated"
    assert gate.driver.kind == "simulated"
    dialog.serial_input_open.setText("zz")
    dialog.test_door()
    assert "hex" in dialog.outcome.text()
    # a real (pty) board: saved, audited, the gate switched to it
    board = FakeBoard(tmp_path / "relay")
    try:
        dialog.serial_input_open.setText("F1 01")
        dialog.serial_port.setText(str(board.link))
        dialog.save()
        assert dialog.saved is not None and gate.driver.kind == "serial"
        assert load_settings(ctx.data_dir).door_serial_input_open == "F1 01"
        assert board.read(4) == PRESETS["lcus-1"][1]  # locked at start
        assert "settings_changed" in actions(ctx)
    finally:
        gate.close()
        board.unplug()


def test_test_door_through_a_webhook_waits_for_the_endpoint_in_a_worker(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    from faceguard.core.gate import Gate
    from tests.test_door_drivers import Endpoint

    endpoint = Endpoint("shared")
    gate = Gate(ctx.library, ctx.settings)
    dialog = DoorSettingsDialog(ctx, gate, ThreadRunner())
    dialog.test_timeout_s = 1.5
    qtbot.addWidget(dialog)
    try:
        dialog.driver.setCurrentText("webhook")
        dialog.webhook_url.setText(endpoint.url)
        dialog.webhook_secret.setText("wrong")  # the endpoint refuses the signature
        dialog.test_door()
        assert not dialog.test_button.isEnabled()  # the window did not wait
        qtbot.waitUntil(dialog.test_button.isEnabled, timeout=20_000)
        assert "did not complete" in dialog.outcome.text()
        assert endpoint.bad_signatures >= 1 and endpoint.bodies == []
        dialog.webhook_secret.setText("shared")
        dialog.test_door()
        qtbot.waitUntil(dialog.test_button.isEnabled, timeout=20_000)
        assert dialog.outcome.text() == f"Door test done: delivered to {endpoint.url}."
        assert [b["reason"] for b in endpoint.bodies] == ["door test"]
        assert gate.driver.kind == "simulated"  # tested, not saved
    finally:
        gate.close()
        endpoint.stop()


def type_pin(qtbot, answers: list[str]):  # type: ignore[no-untyped-def]
    def opener(dialog: QDialog) -> int:
        if isinstance(dialog, PinDialog):
            qtbot.addWidget(dialog)
            dialog.pin.setText(answers.pop(0))
            dialog.submit()
            if dialog.result() != QDialog.DialogCode.Accepted:
                dialog.reject()
            return dialog.result()
        qtbot.addWidget(dialog)
        return QDialog.DialogCode.Accepted
    return opener


def test_status_bar_shows_the_lock_and_alarms_and_the_admin_opens_the_door(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow(ctx, ThreadRunner(), source="9", ask_first_pin=False,
                        opener=type_pin(qtbot, ["111111", PIN, PIN]))
    qtbot.addWidget(window)
    window.admin.store_hash(hash_pin(PIN, n=2**10))
    try:
        door = window.pipeline.gate.driver  # type: ignore[union-attr]
        assert isinstance(door, SimulatedDoor)
        label = window.status_bar.door_label
        qtbot.waitUntil(lambda: label.text() == "Door: locked", timeout=2000)
        time.sleep(1.05)  # past the relock grace
        door.set_contact(True)  # opened without an unlock (from a driver thread's view)
        qtbot.waitUntil(lambda: label.state == "alarm", timeout=2000)
        assert label.text() == "Door: ALARM - door forced open"
        assert "opened without an unlock" in label.toolTip()
        assert label.property("role") == "error"
        door.set_contact(False)
        qtbot.waitUntil(lambda: label.text() == "Door: locked (closed)", timeout=2000)
        window.admin_menu.open_door()  # wrong PIN: nothing opens
        assert "door_opened" not in actions(ctx) and door.state == "locked"
        window.admin_menu.open_door()  # right PIN: opens (in a worker), audited
        qtbot.waitUntil(lambda: door.state == "unlocked", timeout=3000)
        qtbot.waitUntil(lambda: label.text().startswith("Door: unlocked"), timeout=2000)
        qtbot.waitUntil(lambda: "door_opened" in actions(ctx), timeout=3000)
        opened = [e for e in ctx.library.list_audit() if e.action == "door_opened"]
        assert len(opened) == 1 and opened[0].actor == "admin"
        assert json.loads(opened[0].details)["done"] is True
        # the rules editor is behind the PIN too and reloads the kiosk's rules
        window.admin_menu.open_rules()
        assert "admin_unlock" in actions(ctx)
    finally:
        window.shutdown()


def test_an_unplugged_serial_relay_is_an_alarm_on_screen_until_it_is_back(  # type: ignore[no-untyped-def]
        qtbot, tmp_path: Path, open_context: Callable[..., AppContext]) -> None:
    board = FakeBoard(tmp_path / "relay")
    folder = make_data_dir(tmp_path, kiosk_name="lobby", door_driver="serial",
                           door_serial_port=str(board.link))
    context = open_context(folder)
    window = MainWindow(context, ThreadRunner(), source="9", ask_first_pin=False)
    qtbot.addWidget(window)
    try:
        label = window.status_bar.door_label
        qtbot.waitUntil(lambda: label.text() == "Door: locked", timeout=3000)
        board.unplug()
        qtbot.waitUntil(lambda: label.state == "alarm", timeout=5000)
        assert "relay unplugged" in label.text()
        board.plug()  # reopened with back-off (0.5 s doubling)
        qtbot.waitUntil(lambda: label.text() == "Door: locked", timeout=10_000)
        assert board.read(4) == PRESETS["lcus-1"][1]
        alarms = [json.loads(e.details) for e in context.library.list_audit()
                  if e.action == "door_alarm"]
        assert [a["alarm"] for a in alarms] == ["fault"]
    finally:
        window.shutdown()  # the relay is released; the context closes after the window
        board.unplug()
    assert not os.path.exists(board.link)
