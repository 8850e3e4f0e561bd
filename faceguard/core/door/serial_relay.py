"""USB/serial relay boards through pyserial: configurable on/off byte commands with presets.

The common CH340 boards ("LCUS-1", "LCUS-2", and the many sold under other names) take
4-byte commands ``A0 <channel> <0|1> <checksum>`` at 9600 baud; KMTronic's take
``FF <channel> <0|1>``. Other boards: preset ``custom`` with ``door.serial.on`` /
``door.serial.off`` as hex.

A board that vanishes (unplugged, USB reset) is noticed by the reader thread (a failed read
or write), reported as a ``fault`` state and an ``relay unplugged`` alarm, and reopened with
back-off (0.5 s doubling to 30 s); once back it is put in the locked position again.

**Inputs.** Boards with inputs (a door contact, an exit button) report them as bytes on the
same port; ``door.serial.input_open`` / ``input_closed`` / ``input_exit`` (hex, empty: no
such input) are the byte strings the board sends when the door opens, closes and the exit
button is pressed. The reader turns them into ``contact`` and ``exit_button`` notices
(:mod:`faceguard.core.door.monitor` raises the alarms); other bytes are ignored.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

from faceguard.core.door.base import DoorError, LockType, RelayDriver

log = logging.getLogger(__name__)


def _a0(channel: int, on: bool) -> bytes:
    body = bytes((0xA0, channel, int(on)))
    return body + bytes((sum(body) & 0xFF,))


# preset -> (on bytes, off bytes, baud)
PRESETS: dict[str, tuple[bytes, bytes, int]] = {
    "lcus-1": (_a0(1, True), _a0(1, False), 9600),
    "lcus-2-ch1": (_a0(1, True), _a0(1, False), 9600),
    "lcus-2-ch2": (_a0(2, True), _a0(2, False), 9600),
    "kmtronic-1": (bytes.fromhex("FF0101"), bytes.fromhex("FF0100"), 9600),
}
PRESET_NAMES = (*PRESETS, "custom")


def parse_hex(text: str) -> bytes:
    """``A0 01 01 A2`` (spaces optional) as bytes; DoorError when it is not hex."""
    try:
        value = bytes.fromhex(text.replace(" ", "").replace(":", ""))
    except ValueError:
        raise DoorError(f"not a hex byte string: {text!r} (e.g. 'A0 01 01 A2')") from None
    if not value:
        raise DoorError("a relay command needs at least one byte")
    return value


def input_patterns(open_hex: str = "", closed_hex: str = "",
                   exit_hex: str = "") -> dict[bytes, tuple[str, str]]:
    """The board's input messages (bytes -> notice kind and value); empty ones are left out."""
    patterns: dict[bytes, tuple[str, str]] = {}
    for text, notice in ((open_hex, ("contact", "open")), (closed_hex, ("contact", "closed")),
                         (exit_hex, ("exit_button", "pressed"))):
        if text.strip():
            pattern = parse_hex(text)
            if pattern in patterns:
                raise DoorError(f"two serial inputs send the same bytes ({text})")
            patterns[pattern] = notice
    return patterns


def preset_commands(preset: str, on_hex: str = "", off_hex: str = "") -> tuple[bytes, bytes,
                                                                                 int]:
    """(on, off, baud) for a preset, or the custom hex commands."""
    if preset == "custom":
        return parse_hex(on_hex), parse_hex(off_hex), 9600
    try:
        return PRESETS[preset]
    except KeyError:
        raise DoorError(f"unknown relay preset {preset!r}; one of "
                        f"{', '.join(PRESET_NAMES)}") from None


class SerialRelayDoor(RelayDriver):
    """A relay board on a serial port (``/dev/ttyUSB0``, ``COM3``)."""

    kind = "serial"

    def __init__(self, door: str, port: str, on: bytes, off: bytes, *, baud: int = 9600,
                 lock_type: LockType = LockType.FAIL_SECURE, pulse_s: float = 3.0,
                 backoff_s: tuple[float, float] = (0.5, 30.0),
                 inputs: Mapping[bytes, tuple[str, str]] | None = None) -> None:
        super().__init__(door, lock_type, pulse_s)
        self.inputs = dict(inputs or {})
        self._received = b""
        try:
            import serial
        except ImportError:
            raise DoorError("the serial door driver needs pyserial (pip install "
                            "pyserial)") from None
        self._serial_mod = serial
        self.port, self.on, self.off, self.baud = port, on, off, baud
        self._backoff = backoff_s
        self._port: Any = None
        self._io = threading.Lock()
        self._stop = threading.Event()
        self._energised = False
        self.reconnects = 0
        self._open()  # DoorError when the board is not there at start
        self.start()
        self._thread = threading.Thread(target=self._watch, name="door-serial", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        try:
            handle = self._serial_mod.Serial(self.port, self.baud, timeout=0.2,
                                             write_timeout=1.0)
        except (self._serial_mod.SerialException, OSError, ValueError) as error:
            raise DoorError(f"cannot open the relay board on {self.port}: {error}") from error
        with self._io:
            self._port = handle

    def _drop(self) -> None:
        with self._io:
            handle, self._port = self._port, None
        if handle is not None:
            with contextlib.suppress(self._serial_mod.SerialException, OSError):
                handle.close()

    def _set_relay(self, energised: bool) -> None:
        with self._io:
            handle = self._port
            if handle is None:
                raise DoorError(f"relay unplugged ({self.port})")
            try:
                handle.write(self.on if energised else self.off)
                handle.flush()
            except (self._serial_mod.SerialException, OSError) as error:
                raise DoorError(f"relay unplugged ({self.port}: {error})") from error
        self._energised = energised

    def _watch(self) -> None:
        """Notice a vanished board (reads fail) and reopen it with back-off."""
        delay = self._backoff[0]
        while not self._stop.is_set():
            with self._io:
                handle = self._port
            if handle is not None:
                try:
                    data = handle.read(64)  # a vanished board raises
                    if data and self.inputs:
                        self._feed(bytes(data))
                    continue
                except (self._serial_mod.SerialException, OSError, TypeError) as error:
                    if self._stop.is_set():
                        return
                    log.warning("relay board on %s vanished: %s", self.port, error)
                    self._drop()
                    self._fault(f"relay unplugged ({self.port})")
                    delay = self._backoff[0]
            if self._stop.wait(delay):
                return
            try:
                self._open()
            except DoorError:
                delay = min(delay * 2, self._backoff[1])
                continue
            self.reconnects += 1
            log.warning("relay board on %s is back", self.port)
            self._lock_now()

    def _feed(self, data: bytes) -> None:
        """Find the input messages in what the board sent (in order; the rest is dropped)."""
        buffer = self._received + data
        longest = max(len(p) for p in self.inputs)
        while buffer:
            found = [(buffer.find(p), p) for p in self.inputs if p in buffer]
            if not found:
                break
            where, pattern = min(found, key=lambda item: (item[0], -len(item[1])))
            kind, value = self.inputs[pattern]
            self._notify(kind, value)
            buffer = buffer[where + len(pattern):]
        self._received = buffer[-(longest - 1):] if longest > 1 else b""

    def close(self) -> None:
        """De-energise the relay (see :mod:`faceguard.core.door.base`) and close the port."""
        self._stop.set()
        super().close()

    def _release(self) -> None:
        self._drop()
        self._thread.join(timeout=2)
