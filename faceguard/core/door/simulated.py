"""The simulated door (the default): remembers the relay, for the demo, the GUI and tests.

Its inputs are methods: :meth:`SimulatedDoor.set_contact` (the door contact),
:meth:`SimulatedDoor.press_exit_button`, and :meth:`SimulatedDoor.unplug` /
:meth:`SimulatedDoor.plug` (the relay vanishes and comes back, like an unplugged board).
"""

from __future__ import annotations

from datetime import UTC, datetime

from faceguard.core.door.base import DoorError, LockType, RelayDriver


class SimulatedDoor(RelayDriver):
    """A relay in memory: :attr:`energised`, and :attr:`history` of (time, energised)."""

    kind = "simulated"

    def __init__(self, door: str, lock_type: LockType = LockType.FAIL_SECURE,
                 pulse_s: float = 3.0) -> None:
        super().__init__(door, lock_type, pulse_s)
        self.energised = False
        self.plugged = True
        self.history: list[tuple[datetime, bool]] = []
        self.start()

    def _set_relay(self, energised: bool) -> None:
        if not self.plugged:
            raise DoorError("relay unplugged (simulated)")
        self.energised = energised
        self.history.append((datetime.now(UTC), energised))

    # -- the inputs --------------------------------------------------------------------------

    def set_contact(self, is_open: bool) -> None:
        """The door contact reports the door open or closed."""
        self._notify("contact", "open" if is_open else "closed")

    def press_exit_button(self) -> None:
        """Someone inside presses the exit button."""
        self._notify("exit_button", "pressed")

    def unplug(self) -> None:
        """The relay vanishes: a fault and an alarm, as with a serial board."""
        with self._guard:
            self.plugged = False
            self.energised = False
            self._fault("relay unplugged (simulated)")

    def plug(self) -> None:
        """The relay is back: put in the locked position again."""
        with self._guard:
            self.plugged = True
        self._lock_now()
