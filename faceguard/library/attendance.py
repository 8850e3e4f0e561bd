"""Attendance from recognition events: per person and local day, first in, last out, hours.

Pure functions. Days are calendar days in the given time zone (the system's local zone when
``tz`` is None), so an event at 03:30 UTC counts for the previous evening in New York. The first
event of a person's local day is their IN, the last is their OUT; hours are the real elapsed time
between them (correct across DST changes). A shift that crosses midnight is split at midnight
into two days, by this rule.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol

from faceguard.clock import local_day_start, to_local


class EventLike(Protocol):
    """What attendance needs from an event (``database.Event`` fits)."""

    @property
    def timestamp(self) -> datetime: ...

    @property
    def person_id(self) -> int | None: ...

    @property
    def person_name(self) -> str | None: ...

    @property
    def decision(self) -> str: ...


@dataclass(frozen=True)
class AttendanceDay:
    """One person's attendance on one local day. ``last_out`` is None with a single event."""

    person_id: int | None
    person_name: str
    day: date
    first_in: datetime
    last_out: datetime | None
    hours: float
    events: int


def local_day_range(first: date, last: date, tz: tzinfo | None = None) -> tuple[datetime, datetime]:
    """``(start, end)`` covering local days ``first`` to ``last`` inclusive; end is exclusive."""
    return local_day_start(first, tz), local_day_start(last + timedelta(days=1), tz)


def attendance(
    events: Iterable[EventLike],
    tz: tzinfo | None = None,
    *,
    decisions: Collection[str] | None = None,
) -> list[AttendanceDay]:
    """Attendance days from events, sorted by day then person name.

    Only events that name a person count (removed people are grouped by their stored name);
    ``decisions`` restricts which decision values count (all, when None).
    """
    groups: dict[tuple[object, date], list[datetime]] = {}
    names: dict[tuple[object, date], tuple[int | None, str]] = {}
    for event in events:
        if event.person_id is None and not event.person_name:
            continue
        if decisions is not None and event.decision not in decisions:
            continue
        local = to_local(event.timestamp, tz)
        who: object = (
            event.person_id if event.person_id is not None else ("name", event.person_name)
        )
        key = (who, local.date())
        # Order and subtract in UTC: aware datetimes sharing one tzinfo compare and subtract
        # as wall-clock times in Python, which is wrong across a DST change.
        groups.setdefault(key, []).append(local.astimezone(UTC))
        name = event.person_name or f"#{event.person_id}"
        names[key] = (event.person_id, name)
    days: list[AttendanceDay] = []
    for key, stamps in groups.items():
        first_utc, last_utc = min(stamps), max(stamps)
        first, last = to_local(first_utc, tz), to_local(last_utc, tz)
        person_id, name = names[key]
        single = len(stamps) == 1
        days.append(
            AttendanceDay(
                person_id=person_id,
                person_name=name,
                day=key[1],
                first_in=first,
                last_out=None if single else last,
                hours=0.0 if single else (last_utc - first_utc).total_seconds() / 3600.0,
                events=len(stamps),
            )
        )
    days.sort(key=lambda d: (d.day, d.person_name.casefold(), d.person_id or 0))
    return days
