"""The access-rule verbs the rules editor (and scripts) call: groups and members, weekly
hours, holidays and passes, in plain terms (days, ``HH:MM``, local dates).

``AccessAdmin(ctx, actor)`` works on the context's library and settings; every change is one
audited transaction (:mod:`faceguard.library.rules`) and then calls the
:meth:`AccessAdmin.on_changed` listeners (the kiosk's gate reads the rules again). Bad input
is an :class:`~faceguard.errors.FaceGuardError` with one plain line, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from faceguard.core.access import (
    DAY_NAMES,
    HOLIDAY,
    MINUTES_PER_DAY,
    AccessError,
    Window,
    local_zone,
    parse_window,
)
from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.library import rules as store
from faceguard.library.rules import GroupRow

DAY_CHOICES = ("mon-fri", "all", "sat-sun", *DAY_NAMES)  # what the editor offers


@dataclass(frozen=True)
class Pass:
    """A person's pass in local dates: first valid day, last valid day (inclusive)."""

    person_id: int
    name: str
    valid_from: date | None = None
    valid_until: date | None = None  # the last day on which the pass is valid
    disabled: bool = False

    def label(self) -> str:
        """``disabled``, ``2026-03-01 to 2026-03-05``, ``from 2026-03-01``, ``no limits``."""
        if self.disabled:
            return "disabled"
        if self.valid_from and self.valid_until:
            return f"{self.valid_from.isoformat()} to {self.valid_until.isoformat()}"
        if self.valid_from:
            return f"from {self.valid_from.isoformat()}"
        if self.valid_until:
            return f"until {self.valid_until.isoformat()}"
        return "no limits"


def day_segments(windows: Iterable[tuple[int, int, int, str | None]]
                 ) -> dict[int, list[tuple[int, int]]]:
    """Each day's open spans (minutes) for drawing a week: a window that crosses midnight is
    split, its second part drawn on the next day (Sunday's on Monday; holiday windows stay on
    the holiday row)."""
    spans: dict[int, list[tuple[int, int]]] = {day: [] for day in range(HOLIDAY + 1)}
    for day, start, end, _door in windows:
        if end > start:
            spans[day].append((start, end))
            continue
        spans[day].append((start, MINUTES_PER_DAY))
        if end > 0:
            spans[HOLIDAY if day == HOLIDAY else (day + 1) % 7].append((0, end))
    return {day: sorted(found) for day, found in spans.items()}


class AccessAdmin:
    """Groups, hours, holidays and passes of one context's library (see the module notes)."""

    def __init__(self, ctx: AppContext, *, actor: str) -> None:
        self.ctx = ctx
        self.actor = actor
        self._listeners: list[Callable[[], None]] = []

    @property
    def zone(self) -> tzinfo:
        """The time zone of the hours and passes (``access.timezone``)."""
        return local_zone(self.ctx.settings.access_timezone)

    def on_changed(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    # -- groups and members --------------------------------------------------------------------

    def groups(self) -> list[GroupRow]:
        """Every group with its members' names and its windows, by name."""
        return store.list_groups(self.ctx.library)

    def add_group(self, name: str) -> None:
        """A new, empty group (closed until it has hours)."""
        store.add_group(self.ctx.library, name, actor=self.actor)
        self._changed()

    def remove_group(self, name: str) -> None:
        """Delete a group with its hours and memberships."""
        store.remove_group(self.ctx.library, name, actor=self.actor)
        self._changed()

    def member_ids(self, group: str) -> set[int]:
        """The ids of a group's members."""
        rows = store.rule_rows(self.ctx.library)
        return {pid for pid, groups in rows.members.items() if group in groups}

    def set_members(self, group: str, person_ids: Iterable[int]) -> int:
        """Make exactly these people the group's members; how many memberships changed."""
        wanted, current = set(person_ids), self.member_ids(group)
        changed = 0
        for pid in sorted(wanted - current):
            changed += store.set_membership(self.ctx.library, group, pid, True,
                                            actor=self.actor)
        for pid in sorted(current - wanted):
            changed += store.set_membership(self.ctx.library, group, pid, False,
                                            actor=self.actor)
        if changed:
            self._changed()
        return changed

    # -- hours ---------------------------------------------------------------------------------

    def add_hours(self, group: str, days: str, start: str, end: str,
                  door: str | None = None) -> list[Window]:
        """Add ``start``-``end`` (``HH:MM``; an end before the start runs past midnight) on
        ``days`` (``mon``, ``mon-fri``, ``all``, ``holiday``); the windows added."""
        try:
            windows = parse_window(days, f"{start}-{end}", door or None)
        except AccessError as error:
            raise FaceGuardError(str(error)) from None
        with self.ctx.library.transaction("adding hours"):
            for w in windows:
                store.add_window(self.ctx.library, group, w.day, w.start, w.end, w.door,
                                 actor=self.actor)
        self._changed()
        return windows

    def remove_hours(self, group: str, day: int, start: int) -> int:
        """Remove the group's window(s) on ``day`` starting at minute ``start``; count."""
        count = store.remove_windows(self.ctx.library, group, day, start, actor=self.actor)
        if count:
            self._changed()
        return count

    # -- holidays --------------------------------------------------------------------------------

    def holidays(self) -> list[tuple[date, str]]:
        """Holidays by date."""
        return store.list_holidays(self.ctx.library)

    def set_holiday(self, day: date, name: str = "") -> None:
        """Mark a local date as a holiday (the groups' holiday hours apply)."""
        store.set_holiday(self.ctx.library, day, " ".join(name.split()), actor=self.actor)
        self._changed()

    def remove_holiday(self, day: date) -> bool:
        """Unmark a holiday."""
        done = store.remove_holiday(self.ctx.library, day, actor=self.actor)
        if done:
            self._changed()
        return done

    # -- passes ----------------------------------------------------------------------------------

    def passes(self) -> list[Pass]:
        """Every enrolled person's pass, by name (no limits when none is set)."""
        validity = store.rule_rows(self.ctx.library).validity
        zone = self.zone
        result = []
        for person in self.ctx.library.list_people():
            start, until, disabled = validity.get(person.id, (None, None, False))
            last = None
            if until is not None:  # stored exclusive: the last valid day is the one before
                last = (until.astimezone(zone) - timedelta(microseconds=1)).date()
            result.append(Pass(person.id, person.name,
                               start.astimezone(zone).date() if start else None, last,
                               disabled))
        return result

    def set_pass(self, person_id: int, valid_from: date | None, valid_until: date | None,
                 disabled: bool = False) -> None:
        """A person's pass from the first valid day to the last (inclusive), local dates."""
        if valid_from and valid_until and valid_until < valid_from:
            raise FaceGuardError("the last valid day is before the first")
        zone = self.zone
        start = datetime.combine(valid_from, time(), zone) if valid_from else None
        until = (datetime.combine(valid_until + timedelta(days=1), time(), zone)
                 if valid_until else None)
        store.set_validity(self.ctx.library, person_id, start, until, disabled,
                           actor=self.actor)
        self._changed()
