"""Access rules: who may open which door when. Pure logic, no database and no Qt.

The rules (loaded by :func:`faceguard.library.rules.load_rules`) are:

- **groups** of people (a person may be in several);
- each group's **windows**: a weekday (0 = Monday ... 6 = Sunday, or :data:`HOLIDAY`), a
  start and an end in minutes after local midnight, and optionally a door (``None``: every
  door). A window whose end is not after its start crosses midnight (22:00-06:00 runs from
  22:00 that day to 06:00 the next); 00:00-24:00 is the whole day;
- **holidays**: local dates on which a group's :data:`HOLIDAY` windows replace its windows
  for that weekday (a group without holiday windows is closed on holidays). A window belongs
  to the day it starts on, so Friday's 22:00-06:00 still runs into a Saturday holiday;
- **validity** per person: valid from (inclusive) / until (exclusive), or disabled.

Times are wall-clock times in the kiosk's time zone (a :class:`zoneinfo.ZoneInfo`): the
moment is converted to local time first, so the DST changes need no special case. On the
spring-forward day the skipped hour simply never occurs; on the fall-back day the repeated
hour is inside a window both times it occurs.

:func:`decide` gives one :class:`Decision` with a plain reason; :func:`passback` is the
optional anti-passback rule for sites with an IN and an OUT kiosk.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from faceguard.errors import FaceGuardError

HOLIDAY = 7  # the "weekday" of windows that apply on holidays
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday")
MINUTES_PER_DAY = 24 * 60


class AccessError(FaceGuardError):
    """A rule is malformed (bad time, day or zone)."""


class Verdict(enum.Enum):
    """Why a person may or may not pass; the value is the plain reason shown at the door."""

    ALLOWED = "allowed"
    NO_RULES = "no access rules set"
    DISABLED = "disabled"
    NOT_VALID_YET = "not valid yet"
    EXPIRED = "pass expired"
    NO_GROUP = "no group allows this door"
    OUTSIDE_HOURS = "outside your hours"
    PASSBACK = "already inside (anti-passback)"


@dataclass(frozen=True)
class Decision:
    """The answer at the door: ``allowed`` and the plain ``reason``."""

    verdict: Verdict
    groups: tuple[str, ...] = ()  # the groups that allowed it (allowed only)

    @property
    def allowed(self) -> bool:
        """True when the door may open."""
        return self.verdict in (Verdict.ALLOWED, Verdict.NO_RULES)

    @property
    def reason(self) -> str:
        """What the person reads ("outside your hours")."""
        return self.verdict.value


@dataclass(frozen=True)
class Window:
    """One time window of a group: ``day`` (0-6 or HOLIDAY), minutes ``start``-``end``."""

    day: int
    start: int
    end: int
    door: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.day <= HOLIDAY:
            raise AccessError(f"day must be 0 (Monday) to 6 (Sunday) or {HOLIDAY} (holiday), "
                              f"not {self.day}")
        if not 0 <= self.start < MINUTES_PER_DAY:
            raise AccessError(f"a window starts between 00:00 and 23:59 (got {self.start} min)")
        if not 0 <= self.end <= MINUTES_PER_DAY or self.end == self.start:
            raise AccessError("a window ends between 00:00 and 24:00, and not when it starts")

    @property
    def crosses_midnight(self) -> bool:
        """True when the window runs into the next day (its end is not after its start)."""
        return self.end < self.start

    def label(self) -> str:
        """``mon 22:00-06:00`` (plus ``@door`` when it is for one door)."""
        text = f"{DAY_NAMES[self.day]} {format_minutes(self.start)}-{format_minutes(self.end)}"
        return text + (f" @{self.door}" if self.door else "")


@dataclass(frozen=True)
class Validity:
    """A person's pass: valid from (inclusive), until (exclusive), or disabled."""

    valid_from: datetime | None = None
    valid_until: datetime | None = None
    disabled: bool = False

    def __post_init__(self) -> None:
        for moment in (self.valid_from, self.valid_until):
            if moment is not None and moment.utcoffset() is None:
                raise AccessError("validity times must carry a time zone")
        if (self.valid_from is not None and self.valid_until is not None
                and self.valid_until <= self.valid_from):
            raise AccessError("a pass must end after it starts")


@dataclass(frozen=True)
class Rules:
    """Everything :func:`decide` reads, as loaded from the library."""

    zone: tzinfo
    groups: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)
    members: Mapping[int, frozenset[str]] = field(default_factory=dict)  # person -> groups
    holidays: frozenset[date] = frozenset()
    validity: Mapping[int, Validity] = field(default_factory=dict)
    allow_without_rules: bool = True  # no group at all: every recognised person may pass

    @property
    def empty(self) -> bool:
        """True when no group exists (the site has not set up access rules)."""
        return not self.groups


def format_minutes(minutes: int) -> str:
    """``HH:MM`` (1440 is ``24:00``)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_minutes(text: str) -> int:
    """Minutes after midnight from ``HH:MM`` (``24:00`` allowed as an end)."""
    hours, sep, mins = text.strip().partition(":")
    if not sep or not hours.isdigit() or not mins.isdigit() or len(mins) != 2:
        raise AccessError(f"a time is HH:MM, not {text!r}")
    value = int(hours) * 60 + int(mins)
    if int(mins) >= 60 or value > MINUTES_PER_DAY:
        raise AccessError(f"a time is between 00:00 and 24:00, not {text!r}")
    return value


def parse_day(text: str) -> int:
    """Weekday number from ``mon``..``sun`` (or ``monday``...) or ``holiday``."""
    key = text.strip().lower()[:3]
    key = "holiday" if key == "hol" else key
    if key not in DAY_NAMES:
        raise AccessError(f"a day is one of {', '.join(DAY_NAMES)}, not {text!r}")
    return DAY_NAMES.index(key)


def parse_window(day: str, span: str, door: str | None = None) -> list[Window]:
    """Windows from ``mon-fri`` (or ``mon``, ``holiday``, ``all``) and ``07:00-19:00``."""
    start_text, sep, end_text = span.partition("-")
    if not sep:
        raise AccessError(f"a window is HH:MM-HH:MM, not {span!r}")
    start, end = parse_minutes(start_text), parse_minutes(end_text)
    if start == MINUTES_PER_DAY:
        raise AccessError("a window cannot start at 24:00")
    text = day.strip().lower()
    if text in ("all", "every", "daily"):
        days = list(range(7))
    elif "-" in text:
        first, last = (parse_day(part) for part in text.split("-", 1))
        if HOLIDAY in (first, last):
            raise AccessError("'holiday' is a day of its own, not part of a range")
        days = [(first + i) % 7 for i in range((last - first) % 7 + 1)]
    else:
        days = [parse_day(text)]
    return [Window(d, start, end, door or None) for d in days]


def local_zone(name: str = "") -> tzinfo:
    """The kiosk's time zone: ``name`` (an IANA name like ``Europe/Berlin``), else ``$TZ``,
    else the system's (``/etc/localtime``), else UTC. A zone with DST rules, never a fixed
    offset, so that windows keep their wall-clock meaning across DST changes."""
    candidates = [name, os.environ.get("TZ", "").lstrip(":")]
    try:
        target = Path("/etc/localtime").resolve()
        if "zoneinfo" in target.parts:
            candidates.append("/".join(target.parts[target.parts.index("zoneinfo") + 1:]))
    except OSError:
        pass
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            if candidate == name:
                raise AccessError(f"unknown time zone {name!r} (use a name such as "
                                  "Europe/Berlin)") from None
    return ZoneInfo("UTC")


def _open_at(windows: Iterable[Window], day_kind: int, previous_kind: int, minute: int,
             door: str) -> tuple[bool, bool]:
    """(any window for this door at all, one is open at ``minute`` of the local day).

    ``day_kind`` is today's weekday or HOLIDAY, ``previous_kind`` yesterday's: a window that
    crosses midnight is open early today when it started yesterday.
    """
    for_door = [w for w in windows if w.door is None or w.door == door]
    for w in for_door:
        if w.day == day_kind and w.start <= minute and (w.crosses_midnight or minute < w.end):
            return True, True
        if w.day == previous_kind and w.crosses_midnight and minute < w.end:
            return True, True
    return bool(for_door), False


def decide(person_id: int, moment: datetime, rules: Rules, door: str) -> Decision:
    """May ``person_id`` open ``door`` at ``moment`` (timezone-aware)?

    Checked in this order: disabled, not valid yet, pass expired, no group with a window for
    this door, outside the hours of every such group. With no group at all the answer is
    ``NO_RULES`` (allowed) unless ``rules.allow_without_rules`` is off (then ``NO_GROUP``).
    """
    if moment.utcoffset() is None:
        raise AccessError("the moment of an access decision must carry a time zone")
    validity = rules.validity.get(person_id, Validity())
    if validity.disabled:
        return Decision(Verdict.DISABLED)
    if validity.valid_from is not None and moment < validity.valid_from:
        return Decision(Verdict.NOT_VALID_YET)
    if validity.valid_until is not None and moment >= validity.valid_until:
        return Decision(Verdict.EXPIRED)
    if rules.empty:
        return Decision(Verdict.NO_RULES if rules.allow_without_rules else Verdict.NO_GROUP)
    local = moment.astimezone(rules.zone)
    today, yesterday = local.date(), local.date() - timedelta(days=1)
    kind = HOLIDAY if today in rules.holidays else today.weekday()
    previous = HOLIDAY if yesterday in rules.holidays else yesterday.weekday()
    minute = local.hour * 60 + local.minute
    any_door, allowing = False, []
    for group in sorted(rules.members.get(person_id, frozenset())):
        has_door, is_open = _open_at(rules.groups.get(group, ()), kind, previous, minute, door)
        any_door = any_door or has_door
        if is_open:
            allowing.append(group)
    if allowing:
        return Decision(Verdict.ALLOWED, tuple(allowing))
    return Decision(Verdict.OUTSIDE_HOURS if any_door else Verdict.NO_GROUP)


IN, OUT = "IN", "OUT"


def passback(last_direction: str | None, direction: str) -> Decision:
    """Anti-passback: after an IN the next passage must be an OUT (and the other way round).

    ``last_direction`` is the person's last recorded passage (None: none yet, or reset).
    Leaving without having come in is allowed (someone let them in); entering twice is not.
    """
    if direction not in (IN, OUT):
        raise AccessError(f"a passage is IN or OUT, not {direction!r}")
    if direction == IN and last_direction == IN:
        return Decision(Verdict.PASSBACK)
    return Decision(Verdict.ALLOWED)
