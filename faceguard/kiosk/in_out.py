"""Attendance at the kiosk: whether a known event is the person's IN or OUT of the day.

The first known event of a person's local day is IN; every later one that day is OUT (the last
of them is the day's OUT, as in :mod:`faceguard.library.attendance`). Events logged before the
kiosk started come from an :class:`EventHistory` (the library's, :class:`LibraryHistory`).
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Literal, Protocol

from faceguard.clock import local_day_start, to_local
from faceguard.library.database import FaceLibrary

Direction = Literal["IN", "OUT"]


class EventHistory(Protocol):
    """What the decider needs to know about events logged before it started."""

    def last_known(self, person_id: int, kiosk_id: str) -> datetime | None:
        """Time of the person's latest known event at this kiosk."""

    def has_known_between(self, person_id: int, start: datetime, end: datetime) -> bool:
        """Whether the person has a known event with ``start <= time < end`` (any kiosk)."""


class NoHistory:
    """An empty history (tests, or a kiosk without a library)."""

    def last_known(self, person_id: int, kiosk_id: str) -> datetime | None:
        return None

    def has_known_between(self, person_id: int, start: datetime, end: datetime) -> bool:
        return False


class LibraryHistory:
    """The decider's view of past events, read from the face library."""

    def __init__(self, library: FaceLibrary) -> None:
        self.library = library

    def last_known(self, person_id: int, kiosk_id: str) -> datetime | None:
        events = self.library.query_events(person=person_id, decision="known", limit=1,
                                           kiosk_id=kiosk_id, newest_first=True)
        return events[0].timestamp if events else None

    def has_known_between(self, person_id: int, start: datetime, end: datetime) -> bool:
        return self.library.count_events(start, end, person_id, "known") > 0


class InOut:
    """IN for a person's first known event of the local day, OUT after that."""

    def __init__(self, history: EventHistory, tz: tzinfo | None = None) -> None:
        self.history = history
        self.tz = tz
        self._days_with_in: set[tuple[int, date]] = set()

    def direction(self, person_id: int, now: datetime) -> Direction:
        """The direction of a known event of this person now (remembered: later ones OUT)."""
        day = self.day_of(now)
        key = (person_id, day)
        if key in self._days_with_in:
            return "OUT"
        self._days_with_in.add(key)
        start = local_day_start(day, self.tz)
        if self.history.has_known_between(person_id, start, now):
            return "OUT"
        return "IN"

    def day_of(self, moment: datetime) -> date:
        """The local calendar day of a moment (this kiosk's time zone)."""
        return to_local(moment, self.tz).date()

    def forget_person(self, person_id: int) -> None:
        """Drop what is remembered about a removed person."""
        self._days_with_in = {key for key in self._days_with_in if key[0] != person_id}
