"""The one door-driver interface, its events, and the relay logic shared by local drivers.

**Lock types** (``door.lock_type``) and what the relay does. Local drivers (serial relay,
GPIO) switch the lock's power through the relay's normally-open contact:

- ``fail-secure`` (an electric strike or motor lock: power *unlocks*). Idle, the relay is
  de-energised and the door locked; an unlock energises it for ``door.pulse_s`` seconds.
  When FaceGuard exits the driver de-energises the relay: the door stays locked. A power cut
  leaves it locked too (people inside leave by the mechanical handle).
- ``fail-safe`` (a magnetic lock: power *locks*). FaceGuard energises the relay at start to
  lock the door; an unlock de-energises it for ``door.pulse_s`` seconds. When FaceGuard exits
  the driver de-energises the relay: **the door unlocks**, as it does on a power cut (that is
  what fire codes ask of a maglock on an escape route).

After a crash the driver cannot act: a USB relay board keeps its last state while it has
USB power (so a crash during a fail-secure pulse leaves the strike powered until the board
loses power); unplugging the board de-energises the relay as above. Remote drivers (webhook,
MQTT) only send the command: the receiver drives the lock and decides what it does when the
kiosk goes silent (the MQTT driver's last will marks it offline).

Every command and event has an ``event_id``; a driver acts on an id at most once.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from faceguard.errors import FaceGuardError

log = logging.getLogger(__name__)

ACTIONS = ("unlock", "denied", "alarm")
DRIVERS = ("simulated", "serial", "webhook", "mqtt", "gpio")
UNLOCK_VALID_S = 30.0  # an unlock command older than pulse + this must not open the door


class DoorError(FaceGuardError):
    """A door driver cannot be set up or used (named, with what to do)."""


class LockType(enum.Enum):
    """How the lock behaves without power (see the module notes)."""

    FAIL_SAFE = "fail-safe"  # unlocks without power (maglock)
    FAIL_SECURE = "fail-secure"  # stays locked without power (strike)

    @property
    def locked_energised(self) -> bool:
        """Whether the relay is energised while the door is locked."""
        return self is LockType.FAIL_SAFE


def new_event_id() -> str:
    """A fresh, unique event id (32 hex digits)."""
    return uuid.uuid4().hex


def iso(moment: datetime) -> str:
    """ISO 8601 with the UTC offset, seconds precision with milliseconds."""
    return moment.isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class DoorEvent:
    """One command or event for the door: unlock, denied or alarm."""

    action: str
    door: str
    person: str | None = None
    reason: str = ""
    time: datetime = field(default_factory=lambda: datetime.now().astimezone())
    event_id: str = field(default_factory=new_event_id)
    pulse_s: float = 0.0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise DoorError(f"a door action is one of {', '.join(ACTIONS)}, not {self.action!r}")
        if self.time.utcoffset() is None:
            raise DoorError("a door event's time must carry a time zone")

    def to_json(self, lock_type: LockType) -> dict[str, Any]:
        """The body the webhook and MQTT drivers send (``time`` ISO 8601 with offset).

        An unlock carries ``expires``: a receiver must not open the door after it (a command
        delivered late, after the endpoint was down, is a record, not an order).
        """
        body: dict[str, Any] = {"event_id": self.event_id, "action": self.action,
                                "person": self.person, "door": self.door,
                                "time": iso(self.time), "reason": self.reason or None,
                                "lock_type": lock_type.value}
        if self.action == "unlock":
            body["pulse_s"] = self.pulse_s
            body["expires"] = iso(self.time + timedelta(seconds=self.pulse_s + UNLOCK_VALID_S))
        return body


@dataclass(frozen=True)
class DoorResult:
    """What a driver did with one event."""

    event_id: str
    done: bool  # acted on (relay switched) or delivered
    queued: bool = False  # kept in the outbox for delivery
    message: str = ""


@dataclass(frozen=True)
class DoorNotice:
    """Something the door reports: ``state`` (locked/unlocked/fault), ``alarm`` (relay
    unplugged, forced open...), ``contact`` (open/closed), ``exit_button``,
    ``remote_unlock`` (an unlock asked for over MQTT; the kiosk decides), ``delivered``."""

    kind: str
    value: str = ""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))


Listener = Callable[[DoorNotice], None]


class DoorDriver:
    """The interface: :meth:`unlock`, :meth:`denied`, :meth:`alarm`, :attr:`state`,
    :meth:`subscribe` for notices, :meth:`close` (de-energises). Subclasses implement
    :meth:`_send` (and may override :meth:`close`)."""

    kind = "abstract"

    def __init__(self, door: str, lock_type: LockType = LockType.FAIL_SECURE,
                 pulse_s: float = 3.0) -> None:
        self.door = door
        self.lock_type = lock_type
        self.pulse_s = float(pulse_s)
        self._listeners: list[Listener] = []
        self._done: OrderedDict[str, DoorResult] = OrderedDict()
        self._guard = threading.RLock()
        self._state = "locked"

    # -- notices -------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` (on the driver's thread) for each notice."""
        self._listeners.append(listener)

    def _notify(self, kind: str, value: str = "") -> None:
        notice = DoorNotice(kind, value)
        if kind == "state":
            self._state = value
        for listener in list(self._listeners):
            try:
                listener(notice)
            except Exception:  # a listener must never break the driver
                log.exception("door listener failed on %s", notice)

    @property
    def state(self) -> str:
        """``locked``, ``unlocked`` or ``fault`` (as last known)."""
        return self._state

    # -- commands ------------------------------------------------------------------------------

    def unlock(self, person: str | None = None, *, reason: str = "",
               event_id: str | None = None, moment: datetime | None = None) -> DoorResult:
        """Open the door for ``pulse_s`` seconds (once per ``event_id``)."""
        return self.send(self._event("unlock", person, reason, event_id, moment))

    def denied(self, person: str | None, reason: str, *, event_id: str | None = None,
               moment: datetime | None = None) -> DoorResult:
        """Report a refused person (the door stays locked)."""
        return self.send(self._event("denied", person, reason, event_id, moment))

    def alarm(self, reason: str, *, event_id: str | None = None,
              moment: datetime | None = None) -> DoorResult:
        """Report an alarm (forced open, held open, relay unplugged...)."""
        return self.send(self._event("alarm", None, reason, event_id, moment))

    def _event(self, action: str, person: str | None, reason: str, event_id: str | None,
               moment: datetime | None) -> DoorEvent:
        return DoorEvent(action, self.door, person, reason,
                         moment or datetime.now().astimezone(), event_id or new_event_id(),
                         self.pulse_s if action == "unlock" else 0.0)

    def send(self, event: DoorEvent) -> DoorResult:
        """Act on (or queue) one event; an id seen before returns its first result."""
        with self._guard:
            earlier = self._done.get(event.event_id)
            if earlier is not None:
                return earlier
            result = self._send(event)
            self._done[event.event_id] = result
            while len(self._done) > 1000:
                self._done.popitem(last=False)
        return result

    def _send(self, event: DoorEvent) -> DoorResult:
        raise NotImplementedError

    def test(self, timeout_s: float = 10.0) -> DoorResult:
        """``faceguard door test``: one unlock pulse, waited for when the driver queues."""
        result = self.unlock(None, reason="door test")
        if result.queued:
            result = self.wait(result.event_id, timeout_s)
        elif result.done:
            time.sleep(min(self.pulse_s, timeout_s) + 0.05)  # let the pulse end (relocked)
        return result

    def wait(self, event_id: str, timeout_s: float) -> DoorResult:
        """Wait until a queued event is delivered (remote drivers); the result then."""
        return DoorResult(event_id, True)

    def close(self) -> None:
        """Stop the driver; local drivers de-energise the relay (see the module notes)."""


class RelayDriver(DoorDriver):
    """A driver that switches one relay: pulses, relocking, de-energising on close."""

    def __init__(self, door: str, lock_type: LockType = LockType.FAIL_SECURE,
                 pulse_s: float = 3.0) -> None:
        super().__init__(door, lock_type, pulse_s)
        self._relock: threading.Timer | None = None
        self._closed = False

    def _set_relay(self, energised: bool) -> None:
        """Switch the relay; raise DoorError when the hardware is not there."""
        raise NotImplementedError

    def _lock_now(self) -> None:
        with self._guard:
            self._relock = None
            if self._closed:
                return
            try:
                self._set_relay(self.lock_type.locked_energised)
            except DoorError as error:
                self._fault(str(error))
                return
            self._notify("state", "locked")

    def _fault(self, why: str) -> None:
        if self._state != "fault":
            self._notify("state", "fault")
            self._notify("alarm", why)

    def start(self) -> None:
        """Put the relay in its locked position (fail-safe: energised)."""
        self._lock_now()

    def _send(self, event: DoorEvent) -> DoorResult:
        if event.action != "unlock":
            self._notify("alarm" if event.action == "alarm" else "denied",
                         event.reason or event.person or "")
            return DoorResult(event.event_id, True, message=f"{event.action} shown locally")
        if self._closed:
            return DoorResult(event.event_id, False, message="the door driver is closed")
        try:
            self._set_relay(not self.lock_type.locked_energised)
        except DoorError as error:
            self._fault(str(error))
            return DoorResult(event.event_id, False, message=str(error))
        if self._relock is not None:
            self._relock.cancel()
        self._relock = threading.Timer(self.pulse_s, self._lock_now)
        self._relock.daemon = True
        self._relock.start()
        self._notify("state", "unlocked")
        return DoorResult(event.event_id, True,
                          message=f"unlocked for {self.pulse_s:g} s ({self.lock_type.value})")

    def close(self) -> None:
        """Cancel a pulse and de-energise the relay (fail-secure: locked; fail-safe:
        unlocked, as on a power cut)."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            if self._relock is not None:
                self._relock.cancel()
            try:
                self._set_relay(False)
            except DoorError as error:
                log.warning("could not de-energise the door relay: %s", error)
            self._release()

    def _release(self) -> None:
        """Free the hardware (port, lines)."""
