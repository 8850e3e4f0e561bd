"""Time in one place: the current UTC time, the clock callable kiosk code takes, and how an
aware moment is read in local time (the system's zone unless one is given).

Everything FaceGuard stores is aware UTC; local time exists only at the edges (the screen, the
attendance day, exported files).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC (the default :data:`Clock`)."""
    return datetime.now(UTC)


def to_local(moment: datetime, tz: tzinfo | None = None) -> datetime:
    """An aware datetime in ``tz`` (the system's local zone when None)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware datetimes")
    return moment.astimezone(tz)


def local_day_start(day: date, tz: tzinfo | None = None) -> datetime:
    """The aware datetime at which a local calendar day begins (for querying a day range)."""
    if tz is None:
        return datetime.combine(day, time()).astimezone()
    return datetime.combine(day, time(), tzinfo=tz)


def local_text(moment: datetime, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An aware moment as local wall-clock text (``strftime`` format)."""
    return to_local(moment).strftime(fmt)


def local_hhmm(moment: datetime) -> str:
    """``08:59`` in local time for an aware datetime."""
    return local_text(moment, "%H:%M")


class ManualClock:
    """A clock that moves only when told (``advance``): for replaying a recording at its own
    frame times, and for tests."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move the clock on by ``seconds`` and return the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now
