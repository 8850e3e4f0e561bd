"""Access rules and the door outbox in the face library (tables from migration 008).

Rows are plain tuples and dataclasses here; :func:`faceguard.core.access` builds its
:class:`~faceguard.core.access.Rules` from :func:`rule_rows`. Every change is one transaction
together with its audit entry (:meth:`FaceLibrary.upkeep` + :meth:`FaceLibrary.audit`), so a
failed change leaves neither the change nor an audit line.

The outbox (:class:`LibraryOutbox`) keeps each door message (webhook or MQTT) until its
endpoint confirms it: a row per (endpoint, event id), so the same event is never queued twice
for one endpoint and a restart, a crash or a ``kill -9`` loses none. Timestamps are UTC
ISO 8601 text, as everywhere in the library.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime

from faceguard.errors import LibraryError
from faceguard.library.database import FaceLibrary, name_key, utc_now

DAY_COUNT = 8  # 0-6 weekdays, 7 holiday


def _stamp(moment: datetime) -> str:
    if moment.utcoffset() is None:
        raise LibraryError("times stored in the library must carry a time zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class GroupRow:
    """One group with its members' names and its windows (day, start, end, door)."""

    id: int
    name: str
    members: tuple[str, ...]
    windows: tuple[tuple[int, int, int, str | None], ...]


@dataclass(frozen=True)
class RuleRows:
    """Everything the access decision needs, as stored."""

    groups: dict[str, tuple[tuple[int, int, int, str | None], ...]]
    members: dict[int, frozenset[str]]
    holidays: dict[date, str]
    validity: dict[int, tuple[datetime | None, datetime | None, bool]]


# -- reading -----------------------------------------------------------------------------------

def rule_rows(library: FaceLibrary) -> RuleRows:
    """Groups with their windows, memberships, holidays and validity, in one read."""
    with library.reading("reading the access rules") as conn:
        names = {int(r[0]): str(r[1]) for r in conn.execute(
            "SELECT id, name FROM access_groups")}
        windows: dict[str, list[tuple[int, int, int, str | None]]] = {n: [] for n in
                                                                        names.values()}
        for gid, day, start, end, door in conn.execute(
                "SELECT group_id, day, start_min, end_min, door FROM access_windows "
                "ORDER BY group_id, day, start_min, id"):
            windows[names[int(gid)]].append((int(day), int(start), int(end), door))
        members: dict[int, set[str]] = {}
        for gid, pid in conn.execute("SELECT group_id, person_id FROM access_members"):
            members.setdefault(int(pid), set()).add(names[int(gid)])
        holidays = {date.fromisoformat(r[0]): str(r[1]) for r in conn.execute(
            "SELECT day, name FROM access_holidays")}
        validity = {int(r[0]): (_time(r[1]), _time(r[2]), bool(r[3])) for r in conn.execute(
            "SELECT person_id, valid_from, valid_until, disabled FROM access_validity")}
    return RuleRows({k: tuple(v) for k, v in windows.items()},
                    {k: frozenset(v) for k, v in members.items()}, holidays, validity)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def list_groups(library: FaceLibrary) -> list[GroupRow]:
    """Every group, by name, with members (names) and windows."""
    with library.reading("listing access groups") as conn:
        groups = conn.execute("SELECT id, name FROM access_groups ORDER BY name_key").fetchall()
        result = []
        for gid, name in groups:
            members = tuple(str(r[0]) for r in conn.execute(
                "SELECT p.name FROM access_members m JOIN people p ON p.id = m.person_id "
                "WHERE m.group_id = ? ORDER BY p.name_key", (gid,)))
            windows = tuple((int(r[0]), int(r[1]), int(r[2]), r[3]) for r in conn.execute(
                "SELECT day, start_min, end_min, door FROM access_windows WHERE group_id = ? "
                "ORDER BY day, start_min, id", (gid,)))
            result.append(GroupRow(int(gid), str(name), members, windows))
    return result


def list_holidays(library: FaceLibrary) -> list[tuple[date, str]]:
    """Holidays by date."""
    with library.reading("listing holidays") as conn:
        return [(date.fromisoformat(r[0]), str(r[1])) for r in conn.execute(
            "SELECT day, name FROM access_holidays ORDER BY day")]


def _group_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM access_groups WHERE name_key = ?",
                       (name_key(name),)).fetchone()
    if row is None:
        raise LibraryError(f"there is no access group named {name!r}")
    return int(row[0])


# -- changing (each one transaction with its audit entry) ---------------------------------------

def add_group(library: FaceLibrary, name: str, *, actor: str) -> int:
    """Create a group; LibraryError when the name is empty or taken (ignoring case)."""
    clean = " ".join(name.split())
    if not clean or len(clean) > 100:
        raise LibraryError("a group name is 1 to 100 characters")
    with library.upkeep("adding an access group") as conn:
        if conn.execute("SELECT 1 FROM access_groups WHERE name_key = ?",
                        (name_key(clean),)).fetchone():
            raise LibraryError(f"the access group {clean!r} already exists")
        cursor = conn.execute("INSERT INTO access_groups (name, name_key, created) "
                              "VALUES (?, ?, ?)", (clean, name_key(clean), _stamp(utc_now())))
        library.audit(actor, "access_group_added", {"group": clean})
    assert cursor.lastrowid is not None
    return int(cursor.lastrowid)


def remove_group(library: FaceLibrary, name: str, *, actor: str) -> None:
    """Delete a group, its windows and memberships."""
    with library.upkeep("removing an access group") as conn:
        gid = _group_id(conn, name)
        conn.execute("DELETE FROM access_groups WHERE id = ?", (gid,))
        library.audit(actor, "access_group_removed", {"group": name})


def set_membership(library: FaceLibrary, group: str, person_id: int, member: bool, *,
                   actor: str) -> bool:
    """Add (``member``) or remove a person; True when something changed."""
    with library.upkeep("changing a group's members") as conn:
        gid = _group_id(conn, group)
        row = conn.execute("SELECT name FROM people WHERE id = ?", (person_id,)).fetchone()
        if row is None:
            raise LibraryError(f"there is no person with id {person_id}")
        if member:
            changed = conn.execute("INSERT OR IGNORE INTO access_members (group_id, person_id) "
                                   "VALUES (?, ?)", (gid, person_id)).rowcount
        else:
            changed = conn.execute("DELETE FROM access_members WHERE group_id = ? AND "
                                   "person_id = ?", (gid, person_id)).rowcount
        if changed:
            library.audit(actor, "access_member_added" if member else "access_member_removed",
                          {"group": group, "person": str(row[0]), "person_id": person_id})
    return bool(changed)


def add_window(library: FaceLibrary, group: str, day: int, start: int, end: int,
               door: str | None = None, *, actor: str) -> int:
    """Add one window to a group (validated by the table's checks); its id."""
    with library.upkeep("adding a time window") as conn:
        gid = _group_id(conn, group)
        try:
            cursor = conn.execute("INSERT INTO access_windows (group_id, day, start_min, "
                                  "end_min, door) VALUES (?, ?, ?, ?, ?)",
                                  (gid, day, start, end, door))
        except sqlite3.IntegrityError:
            raise LibraryError("a window needs a day 0-7 and a start and end between 00:00 "
                               "and 24:00 that differ") from None
        library.audit(actor, "access_window_added", {"group": group, "day": day,
                                                     "start": start, "end": end, "door": door})
    assert cursor.lastrowid is not None
    return int(cursor.lastrowid)


def remove_windows(library: FaceLibrary, group: str, day: int | None = None,
                   start: int | None = None, *, actor: str) -> int:
    """Remove a group's windows (all, one day's, or the one starting at ``start``); count."""
    with library.upkeep("removing time windows") as conn:
        gid = _group_id(conn, group)
        sql, params = "DELETE FROM access_windows WHERE group_id = ?", [gid]
        if day is not None:
            sql, params = sql + " AND day = ?", [*params, day]
        if start is not None:
            sql, params = sql + " AND start_min = ?", [*params, start]
        count = conn.execute(sql, params).rowcount
        if count:
            library.audit(actor, "access_windows_removed",
                          {"group": group, "day": day, "start": start, "count": count})
    return int(count)


def write_holiday(conn: sqlite3.Connection, day: str, name: str) -> None:
    """Add or rename the holiday on ``day`` (ISO date) inside the caller's transaction."""
    conn.execute("INSERT INTO access_holidays (day, name) VALUES (?, ?) ON CONFLICT (day) "
                 "DO UPDATE SET name = excluded.name", (day, name))


def set_holiday(library: FaceLibrary, day: date, name: str = "", *, actor: str) -> None:
    """Mark a local date as a holiday (its groups' holiday windows apply)."""
    with library.upkeep("adding a holiday") as conn:
        write_holiday(conn, day.isoformat(), name)
        library.audit(actor, "holiday_set", {"date": day.isoformat(), "name": name})


def remove_holiday(library: FaceLibrary, day: date, *, actor: str) -> bool:
    """Unmark a holiday; True when it was one."""
    with library.upkeep("removing a holiday") as conn:
        changed = conn.execute("DELETE FROM access_holidays WHERE day = ?",
                               (day.isoformat(),)).rowcount
        if changed:
            library.audit(actor, "holiday_removed", {"date": day.isoformat()})
    return bool(changed)


def write_validity(conn: sqlite3.Connection, person_id: int, valid_from: str | None,
                   valid_until: str | None, disabled: bool) -> None:
    """Store a person's pass (UTC ISO 8601 bounds) inside the caller's transaction; no bounds
    and not disabled removes it."""
    if valid_from is None and valid_until is None and not disabled:
        conn.execute("DELETE FROM access_validity WHERE person_id = ?", (person_id,))
        return
    conn.execute(
        "INSERT INTO access_validity (person_id, valid_from, valid_until, disabled) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (person_id) DO UPDATE SET valid_from = "
        "excluded.valid_from, valid_until = excluded.valid_until, disabled = "
        "excluded.disabled", (person_id, valid_from, valid_until, int(disabled)))


def set_validity(library: FaceLibrary, person_id: int, valid_from: datetime | None,
                 valid_until: datetime | None, disabled: bool = False, *, actor: str) -> None:
    """A person's pass: from (inclusive), until (exclusive), disabled. All None/False clears."""
    if valid_from and valid_until and valid_until <= valid_from:
        raise LibraryError("a pass must end after it starts")
    with library.upkeep("changing a pass") as conn:
        row = conn.execute("SELECT name FROM people WHERE id = ?", (person_id,)).fetchone()
        if row is None:
            raise LibraryError(f"there is no person with id {person_id}")
        write_validity(conn, person_id, None if valid_from is None else _stamp(valid_from),
                       None if valid_until is None else _stamp(valid_until), disabled)
        library.audit(actor, "pass_changed", {
            "person": str(row[0]), "person_id": person_id,
            "valid_from": valid_from and valid_from.isoformat(),
            "valid_until": valid_until and valid_until.isoformat(), "disabled": disabled})


# -- anti-passback -------------------------------------------------------------------------------

def last_passage(library: FaceLibrary, person_id: int) -> tuple[str, str, datetime] | None:
    """(direction, door, time) of the person's last recorded passage, or None."""
    with library.reading("reading the anti-passback state") as conn:
        row = conn.execute("SELECT direction, door, timestamp FROM access_passback "
                           "WHERE person_id = ?", (person_id,)).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), datetime.fromisoformat(row[2]))


def record_passage(library: FaceLibrary, person_id: int, direction: str, door: str,
                   moment: datetime) -> None:
    """Remember the person's passage (IN or OUT) for anti-passback."""
    with library.upkeep("recording a passage") as conn:
        conn.execute("INSERT INTO access_passback (person_id, direction, door, timestamp) "
                     "VALUES (?, ?, ?, ?) ON CONFLICT (person_id) DO UPDATE SET direction = "
                     "excluded.direction, door = excluded.door, timestamp = excluded.timestamp",
                     (person_id, direction, door, _stamp(moment)))


def reset_passback(library: FaceLibrary, person_id: int | None = None, *, actor: str) -> int:
    """Forget the passage state of one person (or everyone); audited; rows cleared."""
    with library.upkeep("resetting anti-passback") as conn:
        if person_id is None:
            count = conn.execute("DELETE FROM access_passback").rowcount
        else:
            count = conn.execute("DELETE FROM access_passback WHERE person_id = ?",
                                 (person_id,)).rowcount
        library.audit(actor, "passback_reset", {"person_id": person_id, "count": count})
    return int(count)


# -- the door outbox -----------------------------------------------------------------------------

@dataclass(frozen=True)
class OutboxItem:
    """One queued message: its endpoint, event id, the exact payload and tries so far."""

    endpoint: str
    event_id: str
    payload: str
    attempts: int


class LibraryOutbox:
    """The door outbox in the library: survives restarts; one row per (endpoint, event id).

    Satisfies :class:`faceguard.core.door.outbox.Outbox`.
    """

    def __init__(self, library: FaceLibrary) -> None:
        self.library = library

    def add(self, endpoint: str, event_id: str, payload: str) -> bool:
        """Queue a message; False (and nothing changes) when this id is already queued."""
        now = _stamp(utc_now())
        with self.library.upkeep("queueing a door message") as conn:
            return bool(conn.execute(
                "INSERT OR IGNORE INTO door_outbox (endpoint, event_id, payload, created, "
                "next_try) VALUES (?, ?, ?, ?, ?)", (endpoint, event_id, payload, now, now)
            ).rowcount)

    def due(self, endpoint: str, now: datetime, limit: int = 20) -> list[OutboxItem]:
        """Unsent messages whose next try is due, oldest first."""
        with self.library.reading("reading the door outbox") as conn:
            rows = conn.execute(
                "SELECT event_id, payload, attempts FROM door_outbox WHERE endpoint = ? AND "
                "sent IS NULL AND next_try <= ? ORDER BY created, rowid LIMIT ?",
                (endpoint, _stamp(now), limit)).fetchall()
        return [OutboxItem(endpoint, str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def next_due(self, endpoint: str) -> datetime | None:
        """When the earliest unsent message is due (None: nothing pending)."""
        with self.library.reading("reading the door outbox") as conn:
            row = conn.execute("SELECT min(next_try) FROM door_outbox WHERE endpoint = ? AND "
                               "sent IS NULL", (endpoint,)).fetchone()
        return None if row[0] is None else datetime.fromisoformat(row[0])

    def mark_sent(self, endpoint: str, event_id: str) -> None:
        """The endpoint confirmed it: never sent again."""
        with self.library.upkeep("updating the door outbox") as conn:
            conn.execute("UPDATE door_outbox SET sent = ?, attempts = attempts + 1, "
                         "last_error = NULL WHERE endpoint = ? AND event_id = ?",
                         (_stamp(utc_now()), endpoint, event_id))

    def mark_failed(self, endpoint: str, event_id: str, error: str,
                    next_try: datetime) -> None:
        """A try failed; try again at ``next_try``."""
        with self.library.upkeep("updating the door outbox") as conn:
            conn.execute("UPDATE door_outbox SET attempts = attempts + 1, last_error = ?, "
                         "next_try = ? WHERE endpoint = ? AND event_id = ?",
                         (error[:500], _stamp(next_try), endpoint, event_id))

    def pending_count(self, endpoint: str | None = None) -> int:
        """How many messages still wait for delivery."""
        sql, params = "SELECT count(*) FROM door_outbox WHERE sent IS NULL", []
        if endpoint is not None:
            sql, params = sql + " AND endpoint = ?", [endpoint]
        with self.library.reading("reading the door outbox") as conn:
            return int(conn.execute(sql, params).fetchone()[0])
