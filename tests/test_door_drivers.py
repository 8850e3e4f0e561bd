"""Door drivers against real parts: a pseudo-terminal playing a USB relay board, a local
HTTP server checking the HMAC, and a mosquitto broker started here (killed with -9)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faceguard.core.door import DoorError, LockType, make_driver
from faceguard.core.door.serial_relay import PRESETS, SerialRelayDoor, preset_commands
from faceguard.core.door.simulated import SimulatedDoor
from faceguard.core.door.webhook import SIGNATURE_HEADER, WebhookDoor
from faceguard.library.database import FaceLibrary
from faceguard.library.rules import LibraryOutbox
from faceguard.settings import SERIAL_PRESETS, Settings


def until(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_presets_and_settings_agree() -> None:
    assert set(SERIAL_PRESETS) == {*PRESETS, "custom"}
    assert PRESETS["lcus-1"][:2] == (bytes.fromhex("A00101A2"), bytes.fromhex("A00100A1"))
    assert preset_commands("lcus-2-ch2")[0] == bytes.fromhex("A00201A3")
    with pytest.raises(DoorError, match="not a hex"):
        preset_commands("custom", "zz", "00")


@pytest.mark.parametrize("lock", list(LockType))
def test_simulated_door_pulses_and_deenergises_on_close(lock: LockType) -> None:
    door = SimulatedDoor("front", lock, pulse_s=0.1)
    assert door.energised is lock.locked_energised and door.state == "locked"
    result = door.unlock("Ana", event_id="e1")
    assert result.done and door.energised is not lock.locked_energised
    assert door.unlock("Ana", event_id="e1") is result  # the same id acts once
    assert until(lambda: door.state == "locked", 2)
    assert door.energised is lock.locked_energised
    door.close()
    assert door.energised is False  # fail-safe: unlocked now; fail-secure: locked


# -- serial: a pseudo-terminal plays the relay board ---------------------------------------------

class FakeBoard:
    """The master side of a pty, reachable through a stable symlink like /dev/serial/by-id."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.received = bytearray()
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        self.link.symlink_to(os.ttyname(self.slave))

    def unplug(self) -> None:
        self.link.unlink()
        os.close(self.master)
        os.close(self.slave)

    def read(self, want: int, timeout_s: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < want and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                self.received += os.read(self.master, 256)
        data = bytes(self.received[:want])
        del self.received[:want]
        return data


def test_serial_relay_pulses_vanishes_alarms_and_reconnects(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path / "relay")
    on, off, baud = PRESETS["lcus-1"]
    notices: list[tuple[str, str]] = []
    door = SerialRelayDoor("front", str(board.link), on, off, baud=baud,
                           lock_type=LockType.FAIL_SECURE, pulse_s=0.2,
                           backoff_s=(0.1, 0.4))
    door.subscribe(lambda n: notices.append((n.kind, n.value)))
    try:
        assert board.read(4) == off  # locked at start (fail-secure: de-energised)
        assert door.unlock("Ana", event_id="u1").done
        assert board.read(8) == on + off  # the pulse, then relocked
        assert not door.unlock("Ana", event_id="u1").message.startswith("relay")  # once
        assert board.read(4, 0.4) == b""
        board.unplug()
        assert until(lambda: ("alarm", f"relay unplugged ({board.link})") in notices)
        assert door.state == "fault"
        refused = door.unlock("Bo")
        assert not refused.done and "relay unplugged" in refused.message
        time.sleep(0.5)  # a few failed reopen tries with back-off
        board.plug()
        assert until(lambda: door.state == "locked")
        assert door.reconnects == 1
        assert board.read(4) == off  # put back in the locked position
        assert door.unlock("Bo").done and board.read(4) == on
    finally:
        door.close()
    assert board.read(8).endswith(off)  # de-energised on close
    os.close(board.master)
    os.close(board.slave)


def test_serial_fail_safe_energises_to_lock(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path / "relay")
    on, off, _ = PRESETS["lcus-2-ch2"]
    door = SerialRelayDoor("front", str(board.link), on, off, lock_type=LockType.FAIL_SAFE,
                           pulse_s=0.1)
    assert board.read(4) == on  # a maglock is powered to lock
    door.unlock("Ana")
    assert board.read(8) == off + on
    door.close()
    assert board.read(4) == off  # exit: de-energised, the maglock releases
    board.unplug()


def test_serial_missing_port_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(door_driver="serial", door_serial_port=str(tmp_path / "nothing"))
    with pytest.raises(DoorError, match="cannot open the relay board"):
        make_driver(settings)


# -- webhook: a local HTTP server that checks the signature -------------------------------------

class Endpoint:
    """127.0.0.1 HTTP server: verifies the HMAC, records bodies; can be slow or failing."""

    def __init__(self, secret: str, port: int = 0) -> None:
        self.secret = secret.encode()
        self.bodies: list[dict[str, object]] = []
        self.bad_signatures = 0
        self.delay_s = 0.0
        self.fail_next = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(outer.secret, raw, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), expected):
                    outer.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                time.sleep(outer.delay_s)
                if outer.fail_next:
                    outer.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.loads(raw)
                assert self.headers["X-FaceGuard-Event"] == body["event_id"]
                outer.bodies.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/door"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self) -> list[str]:
        return [str(b["event_id"]) for b in self.bodies]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_signs_and_delivers_the_documented_body() -> None:
    endpoint = Endpoint("s3cret")
    door = WebhookDoor("front", endpoint.url, "s3cret", timeout_s=2, pulse_s=2)
    try:
        unlock = door.unlock("Ana", event_id="e-unlock")
        assert unlock.queued
        assert door.wait("e-unlock", 5).done
        door.denied("Bo", "outside your hours", event_id="e-denied")
        door.alarm("forced open", event_id="e-alarm")
        assert until(lambda: len(endpoint.bodies) == 3)
    finally:
        door.close()
        endpoint.stop()
    first = endpoint.bodies[0]
    assert first["action"] == "unlock" and first["person"] == "Ana" and first["door"] == "front"
    assert "+" in str(first["time"]) or str(first["time"]).endswith("Z") or "-" in \
        str(first["time"])[19:]
    assert first["pulse_s"] == 2 and "expires" in first
    assert [b["action"] for b in endpoint.bodies] == ["unlock", "denied", "alarm"]
    assert endpoint.bodies[1]["reason"] == "outside your hours"
    assert endpoint.bad_signatures == 0


def test_webhook_wrong_secret_is_refused_and_kept() -> None:
    endpoint = Endpoint("right")
    door = WebhookDoor("front", endpoint.url, "wrong", backoff_s=(0.05, 0.1))
    try:
        door.unlock("Ana", event_id="x")
        assert until(lambda: endpoint.bad_signatures >= 2)
        assert door.sender.outbox.pending_count() == 1 and endpoint.bodies == []
    finally:
        door.close()
        endpoint.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_webhook_down_then_slow_then_failing_loses_nothing_and_sends_once(
        tmp_path: Path) -> None:
    """Endpoint down (nothing listens), then up but slow past the timeout, then 503s:
    every event arrives and each id is accepted exactly once; the outbox in the
    library keeps what a restart of the kiosk must still send."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/door"
    library = FaceLibrary.open(tmp_path / "faceguard.db")
    door = WebhookDoor("front", url, "k", outbox=LibraryOutbox(library), timeout_s=0.5,
                       backoff_s=(0.05, 0.3))
    ids = [f"ev{i}" for i in range(6)]
    for event_id in ids[:3]:
        door.denied("Bo", "outside your hours", event_id=event_id)
    time.sleep(0.5)  # tries fail: connection refused
    assert door.sender.failures >= 1
    door.close()  # the kiosk stops with three messages undelivered
    assert LibraryOutbox(library).pending_count() == 3
    endpoint = Endpoint("k", port)  # the endpoint comes up where the kiosk points
    endpoint.fail_next = 2
    door = WebhookDoor("front", url, "k", outbox=LibraryOutbox(library), timeout_s=0.5,
                       backoff_s=(0.05, 0.3))
    try:
        for event_id in ids[3:]:
            door.unlock("Ana", event_id=event_id)
        door.unlock("Ana", event_id=ids[3])  # the same id again is not queued again
        assert until(lambda: len(set(endpoint.ids())) == 6, 15)
        time.sleep(0.3)
        assert sorted(endpoint.ids()) == ids  # each once (a retried one may come later)
        assert LibraryOutbox(library).pending_count() == 0
        # slow: the answer comes after the timeout; the same bytes are sent again and the
        # receiver sees the same id (it must drop the repeat: at-least-once, keyed by id)
        endpoint.delay_s = 0.8
        door.alarm("held open", event_id="slow")
        time.sleep(1.0)
        endpoint.delay_s = 0.0
        assert door.wait("slow", 10).done
        slow = [b for b in endpoint.bodies if b["event_id"] == "slow"]
        assert len(slow) >= 2 and all(b == slow[0] for b in slow)
    finally:
        door.close()
        endpoint.stop()
        library.close()


def test_webhook_settings_are_checked() -> None:
    with pytest.raises(DoorError, match=r"door\.webhook\.url"):
        make_driver(Settings(door_driver="webhook", door_webhook_url="ftp://x"))
    with pytest.raises(DoorError, match=r"door\.webhook\.secret"):
        make_driver(Settings(door_driver="webhook", door_webhook_url="https://127.0.0.1/x"))


# -- MQTT: a real mosquitto started here ------------------------------------------------------

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)),
    None)


class Broker:
    def __init__(self, folder: Path, port: int) -> None:
        self.port = port
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                               "persistence false\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0
        assert until(listening, 10), "mosquitto did not start"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does)")
    b = Broker(tmp_path, free_port())
    yield b
    if b.proc and b.proc.poll() is None:
        b.kill()


class Watcher:
    """A second MQTT client that records what the kiosk publishes."""

    def __init__(self, port: int, reconnect_s: float = 1.0) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []  # topic, payload, retained
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher")
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, bytes(m.payload), bool(m.retain)))
        self.client.on_connect = lambda c, u, f, r, p=None: c.subscribe(
            [("faceguard/#", 1), ("homeassistant/#", 1)])
        self.client.reconnect_delay_set(reconnect_s, reconnect_s)  # type: ignore[arg-type]
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def event_ids(self, topic: str) -> list[str]:
        return [json.loads(p)["event_id"] for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt_events_commands_inputs_and_discovery(broker: Broker) -> None:
    watcher = Watcher(broker.port)
    settings = Settings(kiosk_name="front", door_driver="mqtt", door_mqtt_host="127.0.0.1",
                        door_mqtt_port=broker.port, door_pulse_s=0.2)
    door = make_driver(settings)
    notices: list[tuple[str, str]] = []
    door.subscribe(lambda n: notices.append((n.kind, n.value)))
    try:
        assert until(lambda: any(t.startswith("homeassistant/lock/") for t, _, _ in
                                 watcher.messages))
        result = door.test(5)
        assert result.done, result.message
        door.denied("Bo", "pass expired", event_id="d1")
        assert until(lambda: "d1" in watcher.event_ids("faceguard/front/event"))
        assert watcher.event_ids("faceguard/front/command") == [result.event_id]
        states = [p for t, p, _ in watcher.messages if t == "faceguard/front/lock/state"]
        assert until(lambda: [p for t, p, _ in watcher.messages
                              if t == "faceguard/front/lock/state"][-1:] == [b"LOCKED"])
        assert b"UNLOCKED" in states or b"UNLOCKED" in [
            p for t, p, _ in watcher.messages if t == "faceguard/front/lock/state"]
        lock_config = json.loads(next(p for t, p, _ in watcher.messages
                                      if t == "homeassistant/lock/faceguard_front/config"))
        assert lock_config["command_topic"] == "faceguard/front/lock/set"
        assert lock_config["availability_topic"] == "faceguard/front/availability"
        assert any(t == "homeassistant/binary_sensor/faceguard_front_contact/config"
                   for t, _, _ in watcher.messages)
        watcher.client.publish("faceguard/front/contact", "open", qos=1)
        watcher.client.publish("faceguard/front/exit_button", "pressed", qos=1)
        watcher.client.publish("faceguard/front/lock/set", "UNLOCK", qos=1)
        assert until(lambda: {("contact", "open"), ("exit_button", "pressed"),
                              ("remote_unlock", "home assistant")} <= set(notices))
    finally:
        door.close()
    assert until(lambda: (("faceguard/front/availability", b"offline") in
                          [(t, p) for t, p, _ in watcher.messages]))
    watcher.close()


def test_mqtt_broker_killed_hard_loses_nothing_and_sends_each_id_once(
        broker: Broker, tmp_path: Path) -> None:
    watcher = Watcher(broker.port, reconnect_s=0.2)
    library = FaceLibrary.open(tmp_path / "faceguard.db")
    settings = Settings(kiosk_name="front", door_driver="mqtt", door_mqtt_host="127.0.0.1",
                        door_mqtt_port=broker.port, door_pulse_s=0.1)
    from faceguard.core.door.mqtt import MqttDoor

    door = MqttDoor("front", "127.0.0.1", broker.port, outbox=LibraryOutbox(library),
                    pulse_s=0.1, ack_timeout_s=1.0, backoff_s=(0.1, 1.0), discovery=False)
    try:
        assert door.wait_connected(10)
        assert until(lambda: bool(watcher.messages))
        before = [f"a{i}" for i in range(3)]
        for event_id in before:
            door.denied("Bo", "outside your hours", event_id=event_id)
        assert until(lambda: set(before) <= set(watcher.event_ids("faceguard/front/event")))
        broker.kill()  # kill -9: no goodbye, nothing persisted
        assert until(lambda: not door.connected, 10)
        during = [f"b{i}" for i in range(4)]
        for event_id in during:
            door.unlock("Ana", event_id=event_id)
        time.sleep(0.5)
        assert LibraryOutbox(library).pending_count() >= 4
        broker.start()
        assert until(lambda: door.connected, 15)
        reconnected = time.monotonic()
        assert until(lambda: set(during) <= set(watcher.event_ids("faceguard/front/event")),
                     30), watcher.event_ids("faceguard/front/event")
        # what was queued waited for the subscribers of the restarted broker (the watcher
        # reconnects within 0.2 s) before it went out
        assert time.monotonic() - reconnected >= door.settle_s - 0.1
        assert until(lambda: set(during) <= set(watcher.event_ids("faceguard/front/command")),
                     15)
        assert until(lambda: LibraryOutbox(library).pending_count() == 0, 10)
        events = watcher.event_ids("faceguard/front/event")
        assert sorted(events) == sorted(set(events)) == sorted(before + during)
        assert settings.door_driver == "mqtt"
    finally:
        door.close()
        watcher.close()
        library.close()
