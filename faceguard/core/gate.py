"""The door verb for the kiosk: may this recognised person pass now, then open or refuse.

``Gate(library, settings, driver)``; per accepted visit ``gate.at_door(person_id, name,
moment)`` decides with the access rules (:func:`faceguard.core.access.decide`, plus
anti-passback when ``access.antipassback`` is on and a direction is given), unlocks or sends
a ``denied`` event, and returns both. Unknown faces never reach it. The rules are read from
the library once and again after :meth:`reload` (the CLI and the rules editor change them).

The gate also watches the door (:class:`~faceguard.core.door.monitor.DoorMonitor`): door
contact, exit button and driver faults become alarms, audited (actor ``door``) and passed to
:meth:`on_status` listeners (the window's status bar). :meth:`manual_open` is the admin's
"Open door"; :meth:`test` pulses it; :meth:`reconfigure` switches to new door settings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from faceguard.core.access import (
    IN,
    Decision,
    Rules,
    Validity,
    Verdict,
    Window,
    decide,
    local_zone,
    passback,
)
from faceguard.core.door import DoorDriver, DoorResult, MemoryOutbox, make_driver
from faceguard.core.door.monitor import DoorMonitor, DoorStatus
from faceguard.errors import FaceGuardError
from faceguard.library.database import FaceLibrary
from faceguard.library.rules import LibraryOutbox, last_passage, record_passage, rule_rows
from faceguard.settings import OPTIONS, Settings

log = logging.getLogger(__name__)

# the settings that make the door driver (a change needs a new driver)
DOOR_SETTINGS = ("kiosk_name", *(o.name for o in OPTIONS if o.key.startswith("door.")))


def load_rules(library: FaceLibrary, settings: Settings) -> Rules:
    """The access rules stored in the library, in the configured time zone."""
    rows = rule_rows(library)
    return Rules(
        zone=local_zone(settings.access_timezone),
        groups={name: tuple(Window(*w) for w in windows)
                for name, windows in rows.groups.items()},
        members=rows.members, holidays=frozenset(rows.holidays),
        validity={pid: Validity(*v) for pid, v in rows.validity.items()},
        allow_without_rules=settings.access_without_rules == "allow")


class Gate:
    """Access rules + door driver, as one object the kiosk calls."""

    def __init__(self, library: FaceLibrary, settings: Settings,
                 driver: DoorDriver | None = None) -> None:
        self.library, self.settings = library, settings
        self.driver = driver or make_driver(settings, LibraryOutbox(library))
        self._rules: Rules | None = None
        self._lock = threading.Lock()
        self._status_listeners: list[Callable[[DoorStatus], None]] = []
        self.monitor = self._watch(self.driver)

    # -- the door's state and alarms -----------------------------------------------------------

    def _record(self, action: str, details: dict[str, Any]) -> None:
        """Audit a door alarm or exit-button opening (actor ``door``); never fails the door."""
        try:
            self.library.audit("door", action, details)
        except (FaceGuardError, ValueError) as error:
            log.warning("door %s not audited: %s", action, error)

    def _watch(self, driver: DoorDriver) -> DoorMonitor:
        monitor = DoorMonitor(driver, held_open_s=self.settings.door_held_open_s,
                              record=self._record,
                              remote_unlock=self.settings.door_mqtt_remote_unlock == "on")
        monitor.subscribe(self._status_changed)
        return monitor

    def _status_changed(self, status: DoorStatus) -> None:
        for listener in list(self._status_listeners):
            listener(status)

    def on_status(self, listener: Callable[[DoorStatus], None]) -> None:
        """Call ``listener(status)`` (on a driver thread) when the lock, the contact or the
        alarms change."""
        self._status_listeners.append(listener)

    @property
    def status(self) -> DoorStatus:
        """The lock (locked, unlocked, fault), the contact and the active alarms."""
        return self.monitor.status

    def reconfigure(self, settings: Settings) -> None:
        """New settings: the rules are read again, and the driver is replaced when a door
        setting changed (DoorError, and the old driver kept, when the new one cannot start)."""
        changed = any(getattr(settings, n) != getattr(self.settings, n) for n in DOOR_SETTINGS)
        if changed:
            driver = make_driver(settings, LibraryOutbox(self.library))
            old_driver, old_monitor = self.driver, self.monitor
            self.settings = settings
            self.driver, self.monitor = driver, self._watch(driver)
            old_monitor.close()
            old_driver.close()
            self._status_changed(self.monitor.status)
        self.settings = settings
        self.reload()

    def test(self, settings: Settings | None = None, timeout_s: float = 10.0) -> DoorResult:
        """``Test door``: one pulse through this gate's driver, or, for other (edited, not yet
        saved) door settings, through a driver made for them and closed afterwards; its
        messages wait in memory only (a test that did not get through is not sent later)."""
        if settings is None or all(getattr(settings, n) == getattr(self.settings, n)
                                   for n in DOOR_SETTINGS):
            return self.driver.test(timeout_s)
        driver = make_driver(settings, MemoryOutbox())
        try:
            return driver.test(timeout_s)
        finally:
            driver.close()

    def rules(self) -> Rules:
        """The rules as last loaded."""
        with self._lock:
            if self._rules is None:
                self._rules = load_rules(self.library, self.settings)
            return self._rules

    def reload(self) -> None:
        """Read the rules again at the next decision."""
        with self._lock:
            self._rules = None

    def decide(self, person_id: int, moment: datetime, direction: str | None = None) -> Decision:
        """The rules' answer, then anti-passback (when on and ``direction`` is IN/OUT)."""
        decision = decide(person_id, moment, self.rules(), self.settings.kiosk_name)
        if (decision.allowed and direction and self.settings.access_antipassback == "on"):
            last = last_passage(self.library, person_id)
            check = passback(last[0] if last else None, direction)
            if not check.allowed:
                return check
        return decision

    def at_door(self, person_id: int, name: str, moment: datetime, *,
                direction: str | None = None,
                event_id: str | None = None) -> tuple[Decision, DoorResult]:
        """Decide, then unlock (allowed) or report ``denied`` with the reason."""
        decision = self.decide(person_id, moment, direction)
        return decision, self.act(decision, person_id, name, moment, direction=direction,
                                  event_id=event_id)

    def act(self, decision: Decision, person_id: int, name: str, moment: datetime, *,
            direction: str | None = None, event_id: str | None = None) -> DoorResult:
        """Carry out a decision made by :meth:`decide`: unlock (and record the passage for
        anti-passback) or send the ``denied`` event with its reason."""
        if decision.allowed:
            result = self.driver.unlock(name, reason=decision.reason, event_id=event_id,
                                        moment=moment)
            if direction and self.settings.access_antipassback == "on":
                record_passage(self.library, person_id, direction, self.settings.kiosk_name,
                               moment)
        else:
            result = self.driver.denied(name, decision.reason, event_id=event_id,
                                        moment=moment)
        return result

    def manual_open(self, actor: str, moment: datetime | None = None) -> DoorResult:
        """The admin's "open door" (behind the PIN): unlock, audited."""
        result = self.driver.unlock(None, reason=f"opened by {actor}", moment=moment)
        self.library.audit(actor, "door_opened", {"door": self.settings.kiosk_name,
                                                  "event_id": result.event_id,
                                                  "done": result.done, "queued": result.queued})
        return result

    def close(self) -> None:
        """Close the driver (de-energises a local relay)."""
        self.monitor.close()
        self.driver.close()


__all__ = ["IN", "Gate", "Verdict", "load_rules"]
