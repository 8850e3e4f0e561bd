"""Delivery through an outbox: each message is kept until its endpoint confirms it.

Why the library's ``door_outbox`` table (:class:`faceguard.library.rules.LibraryOutbox`)
and not a file: it is written with SQLite's transactions, so a ``kill -9`` or a power cut
loses no queued message and leaves no half-written one; the primary key (endpoint, event id)
makes queueing the same event twice for one endpoint impossible; and it sits beside the
events it belongs to (a later change can queue the door message in the event's own
transaction, and backups carry it). :class:`MemoryOutbox` is the same in memory, for tests
and for ``door test`` without a library.

Delivery is at-least-once with the event id as the key: a message is sent again only while
its endpoint has not confirmed it (a 2xx answer; an MQTT PUBACK). When a confirmation is lost
(an endpoint that answers after the timeout, a broker killed after it forwarded the
message) the receiver sees the same id again, byte for byte, and must drop it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from faceguard.core.door.base import DoorResult

log = logging.getLogger(__name__)


class Item(Protocol):
    """One queued message (the library's ``OutboxItem`` or :class:`QueuedItem`)."""

    @property
    def endpoint(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def payload(self) -> str: ...
    @property
    def attempts(self) -> int: ...


@dataclass(frozen=True)
class QueuedItem:
    """One queued message in memory."""

    endpoint: str
    event_id: str
    payload: str
    attempts: int


@dataclass
class _Row:
    payload: str
    attempts: int
    next_try: datetime
    sent: datetime | None = None


class Outbox(Protocol):
    """Where messages wait for delivery (see the module notes)."""

    def add(self, endpoint: str, event_id: str, payload: str) -> bool: ...
    def due(self, endpoint: str, now: datetime, limit: int = 20) -> Sequence[Item]: ...
    def next_due(self, endpoint: str) -> datetime | None: ...
    def mark_sent(self, endpoint: str, event_id: str) -> None: ...
    def mark_failed(self, endpoint: str, event_id: str, error: str,
                    next_try: datetime) -> None: ...
    def pending_count(self, endpoint: str | None = None) -> int: ...


class MemoryOutbox:
    """An outbox in memory (lost with the process)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], _Row] = {}
        self._lock = threading.Lock()

    def add(self, endpoint: str, event_id: str, payload: str) -> bool:
        """Queue; False when this id is already queued for this endpoint."""
        with self._lock:
            if (endpoint, event_id) in self._rows:
                return False
            self._rows[(endpoint, event_id)] = _Row(payload, 0, datetime.now(UTC))
            return True

    def due(self, endpoint: str, now: datetime, limit: int = 20) -> list[QueuedItem]:
        """Unsent messages due by ``now``, oldest first."""
        with self._lock:
            return [QueuedItem(endpoint, key[1], row.payload, row.attempts)
                    for key, row in self._rows.items()
                    if key[0] == endpoint and row.sent is None and row.next_try <= now][:limit]

    def next_due(self, endpoint: str) -> datetime | None:
        """When the earliest unsent message is due."""
        with self._lock:
            times = [row.next_try for key, row in self._rows.items()
                     if key[0] == endpoint and row.sent is None]
        return min(times) if times else None

    def mark_sent(self, endpoint: str, event_id: str) -> None:
        """Confirmed: never sent again."""
        with self._lock:
            row = self._rows[(endpoint, event_id)]
            row.attempts, row.sent = row.attempts + 1, datetime.now(UTC)

    def mark_failed(self, endpoint: str, event_id: str, error: str,
                    next_try: datetime) -> None:
        """A try failed; again at ``next_try``."""
        with self._lock:
            row = self._rows[(endpoint, event_id)]
            row.attempts, row.next_try = row.attempts + 1, next_try

    def pending_count(self, endpoint: str | None = None) -> int:
        """Messages not yet confirmed."""
        with self._lock:
            return sum(1 for key, row in self._rows.items()
                       if row.sent is None and endpoint in (None, key[0]))


class DeliveryError(Exception):
    """One try failed (the endpoint is down, slow or refused it); tried again later."""


class Sender:
    """A thread that delivers one endpoint's queued messages, oldest first, with back-off.

    ``deliver(item)`` returns when the endpoint confirmed the message and raises
    DeliveryError otherwise. After a failure the endpoint is left alone for a back-off
    (``backoff_s[0]`` doubling up to ``backoff_s[1]``); a new message wakes the thread.
    """

    def __init__(self, outbox: Outbox, endpoint: str, deliver: Callable[[Item], None], *,
                 backoff_s: tuple[float, float] = (0.5, 60.0),
                 on_change: Callable[[str, str], None] | None = None) -> None:
        self.outbox, self.endpoint, self._deliver = outbox, endpoint, deliver
        self._backoff = backoff_s
        self._on_change = on_change
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sent = threading.Condition()
        self._sent_ids: set[str] = set()
        self.failures = 0  # consecutive
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name=f"door-send {endpoint}",
                                        daemon=True)
        self._thread.start()

    def queue(self, event_id: str, payload: str) -> bool:
        """Queue one message (False when already queued) and wake the thread."""
        added = self.outbox.add(self.endpoint, event_id, payload)
        self._wake.set()
        return added

    def wait(self, event_id: str, timeout_s: float) -> bool:
        """Wait until this process delivered ``event_id``; False on timeout."""
        with self._sent:
            return self._sent.wait_for(lambda: event_id in self._sent_ids, timeout_s)

    def outcome(self, event_id: str, timeout_s: float, *, done: str, pending: str) -> DoorResult:
        """Wait for one message and answer as the door: ``done`` once it went out, else
        ``pending`` with the last error (the message stays in the outbox)."""
        if self.wait(event_id, timeout_s):
            return DoorResult(event_id, True, message=done)
        return DoorResult(event_id, False, queued=True, message=(
            f"{pending} ({self.last_error or 'waiting'}); kept in the outbox"))

    def _delay(self) -> float:
        return min(self._backoff[0] * 2 ** max(self.failures - 1, 0), self._backoff[1])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait_s = self._pass()
            if wait_s is None:
                nxt = self.outbox.next_due(self.endpoint)
                wait_s = 60.0 if nxt is None else max(
                    (nxt - datetime.now(UTC)).total_seconds(), 0.01)
            self._wake.wait(min(wait_s, 60.0))

    def _pass(self) -> float | None:
        """Deliver what is due; the back-off to wait after a failure, else None."""
        try:
            items = self.outbox.due(self.endpoint, datetime.now(UTC))
        except Exception as error:  # the library is busy or damaged: try again soon
            log.warning("door outbox unreadable: %s", error)
            return self._backoff[1] / 4
        for item in items:
            if self._stop.is_set():
                return None
            try:
                self._deliver(item)
            except DeliveryError as error:
                self.failures += 1
                self.last_error = str(error)
                delay = self._delay()
                log.warning("door message %s to %s not delivered (try %d, again in %.1f s): "
                            "%s", item.event_id, self.endpoint, item.attempts + 1, delay, error)
                self.outbox.mark_failed(self.endpoint, item.event_id, str(error),
                                        datetime.now(UTC) + timedelta(seconds=delay))
                if self.failures == 1 and self._on_change:
                    self._on_change("alarm", f"door endpoint unreachable: {error}")
                return delay
            self.outbox.mark_sent(self.endpoint, item.event_id)
            if self.failures and self._on_change:
                self._on_change("delivered", "door endpoint reachable again")
            self.failures = 0
            with self._sent:
                self._sent_ids.add(item.event_id)
                self._sent.notify_all()
        return None

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread (what is queued stays in the outbox for the next start)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
