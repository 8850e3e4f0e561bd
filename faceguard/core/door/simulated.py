"""The simulated door (the default): remembers the relay, for the demo, the GUI and tests."""

from __future__ import annotations

from datetime import UTC, datetime

from faceguard.core.door.base import LockType, RelayDriver


class SimulatedDoor(RelayDriver):
    """A relay in memory: :attr:`energised`, and :attr:`history` of (time, energised)."""

    kind = "simulated"

    def __init__(self, door: str, lock_type: LockType = LockType.FAIL_SECURE,
                 pulse_s: float = 3.0) -> None:
        super().__init__(door, lock_type, pulse_s)
        self.energised = False
        self.history: list[tuple[datetime, bool]] = []
        self.start()

    def _set_relay(self, energised: bool) -> None:
        self.energised = energised
        self.history.append((datetime.now(UTC), energised))
