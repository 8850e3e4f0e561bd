"""Door inputs and alarms against real parts: the door contact (forced open, held open), the
exit button and driver faults, on the simulated door, a pseudo-terminal playing a relay board
with inputs (unplugged and plugged back), mosquitto (contact and exit-button topics) and a
local HTTP endpoint that is down, then up."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from faceguard.core.door import DoorError, LockType, make_driver
from faceguard.core.door.monitor import FAULT, FORCED_OPEN, HELD_OPEN, DoorMonitor
from faceguard.core.door.serial_relay import PRESETS, SerialRelayDoor, input_patterns
from faceguard.core.door.simulated import SimulatedDoor
from faceguard.core.door.webhook import WebhookDoor
from faceguard.core.gate import Gate
from faceguard.library.database import FaceLibrary
from faceguard.settings import Settings, SettingsError
from tests.test_door_drivers import Endpoint, FakeBoard, Watcher, free_port, until
from tests.test_door_drivers import broker as broker  # the mosquitto fixture


@pytest.fixture()
def library() -> Iterator[FaceLibrary]:
    lib = FaceLibrary.in_memory()
    yield lib
    lib.close()


def audited(library: FaceLibrary, action: str) -> list[dict[str, object]]:
    return [json.loads(e.details) for e in library.list_audit(newest_first=False)
            if e.action == action and e.actor == "door"]


def alarms(gate: Gate) -> set[str]:
    return {a.kind for a in gate.status.alarms}


def test_simulated_contact_forced_and_held_open_exit_button_and_fault(
        library: FaceLibrary) -> None:
    door = SimulatedDoor("front", LockType.FAIL_SECURE, pulse_s=0.3)
    gate = Gate(library, Settings(kiosk_name="front", door_held_open_s=1.0), door)
    seen: list[str] = []
    gate.on_status(lambda status: seen.append(status.state))
    try:
        # opened during an unlock, closed in time: no alarm
        assert gate.at_door(1, "Ana", datetime.now(UTC))[1].done  # no rules: allowed
        door.set_contact(True)
        door.set_contact(False)
        assert gate.status.alarms == () and gate.status.contact == "closed"
        assert until(lambda: gate.status.lock == "locked", 2)
        time.sleep(1.1)  # past the relock grace
        # opened while locked: forced open, sent through the driver as an alarm too
        door.set_contact(True)
        assert alarms(gate) == {FORCED_OPEN} and gate.status.state == "alarm"
        assert "forced open" in gate.status.text()
        # still open after door.held_open_s: held open as well
        assert until(lambda: HELD_OPEN in alarms(gate), 3)
        door.set_contact(False)
        assert alarms(gate) == set() and gate.status.state == "locked"
        assert [d["alarm"] for d in audited(library, "door_alarm")] == [FORCED_OPEN, HELD_OPEN]
        assert sorted(d["alarm"] for d in audited(library, "door_alarm_cleared")) == \
            [FORCED_OPEN, HELD_OPEN]
        # the exit button unlocks (and is audited); opening then is no forced entry
        door.press_exit_button()
        assert gate.status.lock == "unlocked" and door.energised is True
        door.set_contact(True)
        door.set_contact(False)
        assert alarms(gate) == set()
        assert len(audited(library, "exit_button")) == 1
        # the relay vanishes: a fault alarm; back: cleared and locked
        door.unplug()
        assert alarms(gate) == {FAULT} and gate.status.lock == "fault"
        assert "relay unplugged" in gate.status.text()
        refused = gate.driver.unlock("Bo")
        assert not refused.done
        door.plug()
        assert until(lambda: gate.status.state == "locked", 2)
        assert "alarm" in seen and seen[-1] == "locked"
    finally:
        gate.close()


def test_a_fail_safe_lock_without_power_is_open_so_opening_it_is_not_forced() -> None:
    door = SimulatedDoor("front", LockType.FAIL_SAFE, pulse_s=0.2)
    monitor = DoorMonitor(door, held_open_s=30)
    monitor._relocked_at = -1e9  # long after any unlock
    door.unplug()  # a maglock without power is released
    door.set_contact(True)
    assert {a.kind for a in monitor.status.alarms} == {FAULT}
    monitor.close()
    door.close()


# -- serial: a pty plays a relay board that has a door contact and an exit button -------------

OPEN, CLOSED, EXIT = "F1 01", "F1 00", "F2 01"


def test_serial_board_inputs_alarms_unplug_and_reconnect(tmp_path: Path,
                                                         library: FaceLibrary) -> None:
    board = FakeBoard(tmp_path / "relay")
    on, off, baud = PRESETS["lcus-1"]
    driver = SerialRelayDoor("front", str(board.link), on, off, baud=baud, pulse_s=0.2,
                             backoff_s=(0.1, 0.4), inputs=input_patterns(OPEN, CLOSED, EXIT))
    gate = Gate(library, Settings(kiosk_name="front", door_held_open_s=5.0), driver)
    try:
        assert board.read(4) == off
        time.sleep(1.1)  # past the relock grace of the start
        # the board reports the contact opening, split across two writes, with noise around
        os.write(board.master, b"\x00\xf1")
        time.sleep(0.05)
        os.write(board.master, b"\x01\x7f")
        assert until(lambda: FORCED_OPEN in alarms(gate), 3), gate.status
        os.write(board.master, bytes.fromhex(CLOSED))
        assert until(lambda: gate.status.contact == "closed" and not alarms(gate), 3)
        # exit button: the relay pulses (on, then off after the pulse)
        os.write(board.master, bytes.fromhex(EXIT))
        assert board.read(8, 3) == on + off
        assert len(audited(library, "exit_button")) == 1
        # unplugged: a fault alarm on the status, audited; plugged back: cleared, relocked
        board.unplug()
        assert until(lambda: FAULT in alarms(gate), 5)
        assert "relay unplugged" in gate.status.text()
        time.sleep(0.4)  # failed reopen tries with back-off
        board.plug()
        assert until(lambda: gate.status.state == "locked", 5), gate.status
        assert driver.reconnects == 1 and board.read(4) == off
        faults = [d for d in audited(library, "door_alarm") if d["alarm"] == FAULT]
        assert len(faults) == 1 and "relay unplugged" in str(faults[0]["message"])
        assert [d["alarm"] for d in audited(library, "door_alarm_cleared")][-1] == FAULT
        # the inputs still work on the new connection
        os.write(board.master, bytes.fromhex(EXIT))
        assert board.read(8, 3) == on + off
    finally:
        gate.close()
    os.close(board.master)
    os.close(board.slave)


def test_serial_input_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="hex"):
        Settings(door_serial_input_open="nope")
    with pytest.raises(DoorError, match="same bytes"):
        input_patterns("F1", "F1", "")
    assert input_patterns("", "", "") == {}


# -- MQTT: contact and exit-button topics on a real mosquitto --------------------------------


def test_mqtt_contact_and_exit_button_topics(broker, library: FaceLibrary) -> None:  # type: ignore[no-untyped-def]
    watcher = Watcher(broker.port)
    settings = Settings(kiosk_name="front", door_driver="mqtt", door_mqtt_host="127.0.0.1",
                        door_mqtt_port=broker.port, door_pulse_s=0.2, door_held_open_s=1.0)
    gate = Gate(library, settings)
    try:
        assert gate.driver.wait_connected(10)  # type: ignore[attr-defined]
        assert until(lambda: any(t == "faceguard/front/availability" for t, _, _ in
                                 watcher.messages))
        time.sleep(1.1)
        watcher.client.publish("faceguard/front/contact", "open", qos=1)
        assert until(lambda: FORCED_OPEN in alarms(gate), 5)
        assert until(lambda: HELD_OPEN in alarms(gate), 5)

        def published(action: str) -> list[dict[str, object]]:
            return [json.loads(p) for t, p, _ in watcher.messages
                    if t == "faceguard/front/event" and json.loads(p)["action"] == action]

        assert until(lambda: len(published("alarm")) == 2, 10)
        assert [b["reason"] for b in published("alarm")] == [
            "door forced open (opened without an unlock)", "door held open (more than 1 s)"]
        watcher.client.publish("faceguard/front/contact", "closed", qos=1)
        assert until(lambda: not alarms(gate), 5)
        watcher.client.publish("faceguard/front/exit_button", "pressed", qos=1)
        assert until(lambda: any(t == "faceguard/front/command" for t, _, _ in
                                 watcher.messages), 10)
        command = json.loads(next(p for t, p, _ in watcher.messages
                                  if t == "faceguard/front/command"))
        assert command["command"] == "unlock"
        assert len(audited(library, "exit_button")) == 1
        # Home Assistant's Unlock button: refused while door.mqtt.remote_unlock is off
        watcher.client.publish("faceguard/front/lock/set", "UNLOCK", qos=1)
        assert until(lambda: len(audited(library, "remote_unlock_refused")) == 1, 5)
        time.sleep(0.3)
        assert len([t for t, _, _ in watcher.messages if t == "faceguard/front/command"]) == 1
    finally:
        gate.close()
        watcher.close()


def test_mqtt_remote_unlock_opens_only_when_allowed(broker, library: FaceLibrary) -> None:  # type: ignore[no-untyped-def]
    watcher = Watcher(broker.port)
    settings = Settings(kiosk_name="front", door_driver="mqtt", door_mqtt_host="127.0.0.1",
                        door_mqtt_port=broker.port, door_pulse_s=0.2,
                        door_mqtt_remote_unlock="on")
    gate = Gate(library, settings)
    try:
        assert gate.driver.wait_connected(10)  # type: ignore[attr-defined]
        assert until(lambda: any(t == "faceguard/front/availability" for t, _, _ in
                                 watcher.messages))
        watcher.client.publish("faceguard/front/lock/set", "UNLOCK", qos=1)
        assert until(lambda: any(t == "faceguard/front/command" for t, _, _ in
                                 watcher.messages), 10)
        entry = audited(library, "remote_unlock")
        assert len(entry) == 1 and entry[0]["by"] == "home assistant"
        event = next(json.loads(p) for t, p, _ in watcher.messages
                     if t == "faceguard/front/event")
        assert event["action"] == "unlock" and event["reason"] == "remote unlock (home assistant)"
    finally:
        gate.close()
        watcher.close()


# -- webhook: the endpoint down is a fault alarm that clears when it answers again -----------

def test_webhook_endpoint_down_is_an_alarm_until_it_answers(library: FaceLibrary) -> None:
    port = free_port()
    driver = WebhookDoor("front", f"http://127.0.0.1:{port}/door", "k", timeout_s=0.5,
                         backoff_s=(0.05, 0.2))
    gate = Gate(library, Settings(kiosk_name="front"), driver)
    endpoint: Endpoint | None = None
    try:
        gate.driver.denied("Bo", "outside your hours", event_id="w1")
        assert until(lambda: FAULT in alarms(gate), 5)
        assert "unreachable" in gate.status.text()
        endpoint = Endpoint("k", port)
        assert until(lambda: not alarms(gate), 10)
        assert endpoint.ids() == ["w1"]
        assert [d["alarm"] for d in audited(library, "door_alarm_cleared")] == [FAULT]
    finally:
        gate.close()
        if endpoint is not None:
            endpoint.stop()


def test_make_driver_passes_the_input_settings(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path / "relay")
    settings = Settings(door_driver="serial", door_serial_port=str(board.link),
                        door_serial_input_exit="F2 01")
    driver = make_driver(settings)
    try:
        assert driver.inputs == {b"\xf2\x01": ("exit_button", "pressed")}  # type: ignore[attr-defined]
    finally:
        driver.close()
        board.unplug()


def test_the_headless_kiosk_says_when_a_door_alarm_is_raised_and_cleared(
        library: FaceLibrary, capsys: pytest.CaptureFixture[str]) -> None:
    from faceguard.kiosk.cli import DoorAlarmPrinter

    door = SimulatedDoor("front", pulse_s=0.1)
    gate = Gate(library, Settings(kiosk_name="front"), door)
    gate.on_status(DoorAlarmPrinter())
    try:
        door.unplug()
        door.unlock("Ana")  # refused while unplugged: no second line for the same alarm
        door.plug()
    finally:
        gate.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if "door alarm" in line]
    assert lines == ["faceguard: door alarm: relay unplugged (simulated)",
                     "faceguard: door alarm cleared: relay unplugged (simulated)"], lines
