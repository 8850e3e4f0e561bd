"""The door's inputs and alarms, over any driver's notices (no Qt, no database).

A :class:`DoorMonitor` listens to one :class:`~faceguard.core.door.base.DoorDriver`:

- **door contact** (``contact`` notices: the simulated door, MQTT's ``contact`` topic, a
  serial board or GPIO line with an input): the door opening while the lock is locked, and
  more than :data:`RELOCK_GRACE_S` after the last unlock ended, raises **forced open**; a
  door open longer than ``held_open_s`` raises **held open**. Both clear when it closes. A
  fail-safe lock in ``fault`` (its relay lost power: the maglock is released) is unlocked,
  so opening it then is no forced entry.
- **exit button** (``exit_button`` notices): unlocks for the pulse, with the reason
  ``exit button``, and is recorded.
- **remote unlock** (``remote_unlock`` notices: Home Assistant's lock over MQTT): opens the
  door only when the gate allows it (``door.mqtt.remote_unlock on``); recorded either way.
- **faults** the driver reports (``alarm`` notices: a relay board unplugged, a webhook or
  broker unreachable) become the ``fault`` alarm; it clears when the driver is back
  (``locked`` after ``fault``, or ``delivered``).

Every alarm raised and cleared, and every exit-button unlock, goes to ``record(action,
details)`` (the gate writes it to the audit table) and to the listeners (the window's status
bar, the headless kiosk's log). Forced and held open are also sent through the driver as an
``alarm`` door event (the webhook and MQTT receivers get them, each with its own id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faceguard.core.door.base import DoorDriver, DoorNotice, LockType

log = logging.getLogger(__name__)

RELOCK_GRACE_S = 1.0  # a door opened this soon after relocking was opened during the pulse
FORCED_OPEN, HELD_OPEN, FAULT = "forced_open", "held_open", "fault"
ALARM_TEXT = {FORCED_OPEN: "door forced open", HELD_OPEN: "door held open", FAULT: "door fault"}

Recorder = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class DoorAlarm:
    """One alarm: ``kind`` (forced_open, held_open, fault), a plain message, when raised."""

    kind: str
    message: str
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def short(self) -> str:
        """A few words for the status bar (``door forced open``, ``relay unplugged
        (/dev/ttyUSB0)``, ``door endpoint unreachable``); :attr:`message` has the rest."""
        if self.kind in (FORCED_OPEN, HELD_OPEN):
            return ALARM_TEXT[self.kind]
        return self.message.split(":", 1)[0]


@dataclass(frozen=True)
class DoorStatus:
    """What the status bar shows: the lock, the contact (None: no contact input) and the
    active alarms."""

    lock: str = "locked"  # locked, unlocked, fault
    contact: str | None = None  # open, closed, None (unknown: no input seen)
    alarms: tuple[DoorAlarm, ...] = ()

    @property
    def state(self) -> str:
        """``alarm`` while any alarm is active, else the lock state."""
        return "alarm" if self.alarms else self.lock

    def text(self) -> str:
        """``Door: locked``, ``Door: unlocked (open)``, ``Door: ALARM - door forced open``."""
        if self.alarms:
            return "Door: ALARM - " + "; ".join(a.short for a in self.alarms)
        contact = f" ({self.contact})" if self.contact else ""
        return f"Door: {self.lock}{contact}"


StatusListener = Callable[[DoorStatus], None]


class DoorMonitor:
    """Contact, exit button and faults of one driver, as alarms (see the module notes)."""

    def __init__(self, driver: DoorDriver, *, held_open_s: float = 30.0,
                 record: Recorder | None = None, remote_unlock: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.driver = driver
        self.remote_unlock_allowed = remote_unlock
        self.held_open_s = float(held_open_s)
        self._record = record or (lambda action, details: None)
        self._clock = clock
        self._lock = threading.RLock()
        self._listeners: list[StatusListener] = []
        self._alarms: dict[str, DoorAlarm] = {}
        self._lock_state = driver.state
        self._contact: str | None = None
        self._relocked_at = -1e9  # clock() when the lock last went back to locked
        self._held_timer: threading.Timer | None = None
        self._own = threading.local()  # set while this monitor sends its own alarm
        self._closed = False
        driver.subscribe(self._on_notice)

    # -- what others see -------------------------------------------------------------------------

    def subscribe(self, listener: StatusListener) -> None:
        """Call ``listener(status)`` (on the driver's thread) after every change."""
        self._listeners.append(listener)

    @property
    def status(self) -> DoorStatus:
        """The lock, the contact and the active alarms, oldest first."""
        with self._lock:
            return DoorStatus(self._lock_state, self._contact,
                              tuple(sorted(self._alarms.values(), key=lambda a: a.time)))

    def _changed(self) -> None:
        status = self.status
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:  # a listener must never break the door
                log.exception("door status listener failed")

    # -- the driver's notices --------------------------------------------------------------------

    def _on_notice(self, notice: DoorNotice) -> None:
        if self._closed:
            return
        kind, value = notice.kind, notice.value
        if kind == "state":
            self._on_state(value)
        elif kind == "alarm":
            if not getattr(self._own, "sending", False):  # not the echo of our own alarm
                self._raise(FAULT, value or ALARM_TEXT[FAULT])
        elif kind == "delivered":
            self._clear(FAULT, value)
        elif kind == "contact":
            self._on_contact(value)
        elif kind == "exit_button":
            self.exit_button(value)
        elif kind == "remote_unlock":
            self.remote_unlock(value)

    def _on_state(self, state: str) -> None:
        with self._lock:
            before, self._lock_state = self._lock_state, state
            if state == "locked" and before != "locked":
                self._relocked_at = self._clock()
        if state == "locked" and before == "fault":
            self._clear(FAULT, "the door driver is back")
        self._changed()

    def _unlocked_now(self) -> bool:
        """Whether an open door is expected: unlocked, just relocked, or a fail-safe lock
        without power."""
        if self._lock_state == "unlocked":
            return True
        if self._lock_state == "fault" and self.driver.lock_type is LockType.FAIL_SAFE:
            return True
        return self._clock() - self._relocked_at < RELOCK_GRACE_S

    def _on_contact(self, value: str) -> None:
        opened = value == "open"
        with self._lock:
            before, self._contact = self._contact, "open" if opened else "closed"
            if opened and before != "open":
                forced = not self._unlocked_now()
                self._start_held_timer()
            else:
                forced = False
                if not opened:
                    self._cancel_held_timer()
        if forced:
            self._raise(FORCED_OPEN, "door forced open (opened without an unlock)")
        if not opened and before == "open":
            self._clear(FORCED_OPEN, "door closed")
            self._clear(HELD_OPEN, "door closed")
        self._changed()

    def _start_held_timer(self) -> None:
        self._cancel_held_timer()
        timer = threading.Timer(self.held_open_s, self._held_too_long)
        timer.daemon = True
        timer.name = "door-held-open"
        self._held_timer = timer
        timer.start()

    def _cancel_held_timer(self) -> None:
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None

    def _held_too_long(self) -> None:
        with self._lock:
            if self._closed or self._contact != "open":
                return
            self._held_timer = None
        self._raise(HELD_OPEN, f"door held open (more than {self.held_open_s:g} s)")

    # -- the exit button -------------------------------------------------------------------------

    def exit_button(self, value: str = "") -> None:
        """Someone inside pressed the exit button: unlock for the pulse, and record it."""
        result = self.driver.unlock(None, reason="exit button")
        self._record("exit_button", {"door": self.driver.door, "event_id": result.event_id,
                                     "done": result.done, "queued": result.queued,
                                     "input": value or None})
        log.info("exit button at door %s: %s", self.driver.door, result.message or "unlocked")

    def remote_unlock(self, source: str) -> None:
        """An unlock asked for remotely (Home Assistant): done only where allowed."""
        if not self.remote_unlock_allowed:
            log.warning("door %s: remote unlock from %s refused (door.mqtt.remote_unlock is "
                        "off)", self.driver.door, source)
            self._record("remote_unlock_refused", {"door": self.driver.door, "by": source})
            return
        result = self.driver.unlock(None, reason=f"remote unlock ({source})")
        self._record("remote_unlock", {"door": self.driver.door, "by": source,
                                       "event_id": result.event_id, "done": result.done,
                                       "queued": result.queued})

    # -- alarms ----------------------------------------------------------------------------------

    def _raise(self, kind: str, message: str) -> None:
        with self._lock:
            if kind in self._alarms or self._closed:
                return
            alarm = self._alarms[kind] = DoorAlarm(kind, message)
        log.warning("door %s: %s", self.driver.door, message)
        self._record("door_alarm", {"door": self.driver.door, "alarm": kind,
                                    "message": message})
        if kind != FAULT:  # a fault is the driver's own report; forced/held go out as events
            self._own.sending = True
            try:
                self.driver.alarm(message, moment=alarm.time.astimezone())
            except Exception as error:  # the alarm is recorded and shown even so
                log.warning("door alarm not sent: %s", error)
            finally:
                self._own.sending = False
        self._changed()

    def _clear(self, kind: str, why: str) -> None:
        with self._lock:
            alarm = self._alarms.pop(kind, None)
        if alarm is None:
            return
        log.warning("door %s: %s cleared (%s)", self.driver.door, ALARM_TEXT[kind], why)
        self._record("door_alarm_cleared", {"door": self.driver.door, "alarm": kind,
                                            "why": why})
        self._changed()

    def close(self) -> None:
        """Stop the held-open timer and ignore further notices."""
        with self._lock:
            self._closed = True
            self._cancel_held_timer()
