"""GPIO relay on a single-board computer through libgpiod's Python binding (``gpiod`` v2).

Imported only when chosen: where ``gpiod`` is missing the driver says how to get it. The line
is requested as an output, driven as described in :mod:`faceguard.core.door.base`, and
released on close (de-energised first); the kernel keeps a released line's last value, so
the driver drives it low before releasing.
"""

from __future__ import annotations

import importlib
from typing import Any

from faceguard.core.door.base import DoorError, LockType, RelayDriver


def _gpiod() -> Any:
    try:
        return importlib.import_module("gpiod")
    except ImportError:
        raise DoorError("the gpio door driver needs libgpiod's Python binding: on Raspberry "
                        "Pi OS / Debian `sudo apt install python3-libgpiod`, or `pip install "
                        "gpiod` (v2); it only works on boards with a GPIO chip "
                        "(/dev/gpiochip*)") from None


class GpioDoor(RelayDriver):
    """One GPIO line switching a relay module (high = energised)."""

    kind = "gpio"

    def __init__(self, door: str, chip: str, line: int,
                 lock_type: LockType = LockType.FAIL_SECURE, pulse_s: float = 3.0) -> None:
        super().__init__(door, lock_type, pulse_s)
        gpiod = _gpiod()
        self._line = line
        try:
            settings = gpiod.LineSettings(direction=gpiod.line.Direction.OUTPUT,
                                          output_value=gpiod.line.Value.INACTIVE)
            self._request = gpiod.request_lines(chip, consumer="faceguard-door",
                                                config={line: settings})
        except (OSError, ValueError, AttributeError) as error:
            raise DoorError(f"cannot use GPIO line {line} of {chip}: {error}") from error
        self._values = gpiod.line.Value
        self.start()

    def _set_relay(self, energised: bool) -> None:
        value = self._values.ACTIVE if energised else self._values.INACTIVE
        try:
            self._request.set_value(self._line, value)
        except OSError as error:
            raise DoorError(f"GPIO line {self._line} cannot be set: {error}") from error

    def _release(self) -> None:
        self._request.release()
