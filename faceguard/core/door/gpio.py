"""GPIO relay on a single-board computer through libgpiod's Python binding (``gpiod`` v2).

Imported only when chosen: where ``gpiod`` is missing the driver says how to get it. The line
is requested as an output, driven as described in :mod:`faceguard.core.door.base`, and
released on close (de-energised first); the kernel keeps a released line's last value, so
the driver drives it low before releasing.

Inputs (optional): ``door.gpio.contact_line`` (active = door open, e.g. a reed contact to
ground with the line's pull-up and active-low wiring set in the device tree) and
``door.gpio.exit_line`` (active = pressed), -1 for none. They are read every 50 ms by a
thread and turned into ``contact`` / ``exit_button`` notices on each change.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from faceguard.core.door.base import DoorError, LockType, RelayDriver

POLL_S = 0.05


def _gpiod() -> Any:
    try:
        return importlib.import_module("gpiod")
    except ImportError:
        raise DoorError("the gpio door driver needs libgpiod's Python binding: on Raspberry "
                        "Pi OS / Debian `sudo apt install python3-libgpiod`, or `pip install "
                        "gpiod` (v2); it only works on boards with a GPIO chip "
                        "(/dev/gpiochip*)") from None


class GpioDoor(RelayDriver):
    """One GPIO line switching a relay module (high = energised), optional input lines."""

    kind = "gpio"

    def __init__(self, door: str, chip: str, line: int,
                 lock_type: LockType = LockType.FAIL_SECURE, pulse_s: float = 3.0, *,
                 contact_line: int = -1, exit_line: int = -1) -> None:
        super().__init__(door, lock_type, pulse_s)
        gpiod = _gpiod()
        self._line = line
        self._inputs = {n: kind for n, kind in ((contact_line, "contact"),
                                                 (exit_line, "exit_button")) if n >= 0}
        if line in self._inputs:
            raise DoorError(f"GPIO line {line} cannot be the relay and an input")
        try:
            config: dict[int, Any] = {line: gpiod.LineSettings(
                direction=gpiod.line.Direction.OUTPUT, output_value=gpiod.line.Value.INACTIVE)}
            for number in self._inputs:
                config[number] = gpiod.LineSettings(direction=gpiod.line.Direction.INPUT)
            self._request = gpiod.request_lines(chip, consumer="faceguard-door", config=config)
        except (OSError, ValueError, AttributeError) as error:
            raise DoorError(f"cannot use GPIO line {line} of {chip}: {error}") from error
        self._values = gpiod.line.Value
        self._stop = threading.Event()
        self.start()
        self._thread: threading.Thread | None = None
        if self._inputs:
            self._thread = threading.Thread(target=self._poll, name="door-gpio", daemon=True)
            self._thread.start()

    def _set_relay(self, energised: bool) -> None:
        value = self._values.ACTIVE if energised else self._values.INACTIVE
        try:
            self._request.set_value(self._line, value)
        except OSError as error:
            raise DoorError(f"GPIO line {self._line} cannot be set: {error}") from error

    def _poll(self) -> None:
        """Report each input's changes (the first reading of the contact too)."""
        last: dict[int, bool] = {}
        while not self._stop.wait(POLL_S):
            for number, kind in self._inputs.items():
                try:
                    active = self._request.get_value(number) == self._values.ACTIVE
                except OSError as error:
                    self._fault(f"GPIO input {number} unreadable: {error}")
                    continue
                if last.get(number) == active:
                    continue
                first = number not in last
                last[number] = active
                if kind == "contact":
                    self._notify("contact", "open" if active else "closed")
                elif active and not first:
                    self._notify("exit_button", f"line {number}")

    def _release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        self._request.release()
