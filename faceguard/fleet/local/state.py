"""The kiosk's sync state in its library: the join, the state keys (cursor, last sync,
outage) and the counts of what waits for upload."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

from faceguard.library.database import FaceLibrary


def fleet_uid(value: Any) -> str:
    """A fleet id in the one form kept locally: 32 lower-case hex digits."""
    return uuid.UUID(str(value)).hex


def get_state(library: FaceLibrary, key: str) -> str | None:
    with library.reading("reading the sync state") as conn:
        row = conn.execute("SELECT value FROM fleet_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def set_state(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    """Set (or with None, clear) one state key inside the caller's transaction."""
    if value is None:
        conn.execute("DELETE FROM fleet_state WHERE key = ?", (key,))
    else:
        conn.execute("INSERT INTO fleet_state (key, value) VALUES (?, ?) ON CONFLICT (key) "
                     "DO UPDATE SET value = excluded.value", (key, value))


def write_state(library: FaceLibrary, **values: str | None) -> None:
    """Set several state keys in one transaction."""
    with library.upkeep("recording the sync state") as conn:
        for key, value in values.items():
            set_state(conn, key, value)


def mark_joined(library: FaceLibrary, kiosk_id: str, kiosk_name: str) -> int:
    """Record the join; the first time (or on joining as another kiosk: another server),
    queue this door's past events and audit lines, and every person, template and group,
    and start taking the server's changes from revision 0.

    Returns how many old rows were queued."""
    with library.upkeep("joining the fleet") as conn:
        before = conn.execute("SELECT value FROM fleet_state WHERE key = 'joined'").fetchone()
        queued = 0
        if before is None or before[0] != kiosk_id:
            conn.execute("DELETE FROM fleet_outbox")  # what the old server did not take
            set_state(conn, "cursor", "0")
            for table in ("fleet_people", "fleet_templates", "fleet_groups"):
                conn.execute(f"UPDATE {table} SET dirty = dirty + 1, revision = 0")
            queued += conn.execute(
                "INSERT INTO fleet_outbox (kind, payload, created) SELECT 'event', "
                "json_object('local_id', e.id, 'timestamp', e.timestamp, 'kiosk_name', "
                "e.kiosk_id, 'person_uid', f.uid, 'person_name', e.person_name, 'similarity', "
                "e.similarity, 'decision', e.decision, 'liveness', e.liveness, 'access', "
                "e.access, 'access_reason', e.access_reason), "
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM events e LEFT JOIN fleet_people f "
                "ON f.person_id = e.person_id WHERE e.id NOT IN (SELECT event_id FROM "
                "fleet_events) ORDER BY e.id").rowcount
            queued += conn.execute(
                "INSERT INTO fleet_outbox (kind, payload, created) SELECT 'audit', json_object("
                "'local_id', id, 'timestamp', timestamp, 'actor', actor, 'action', action, "
                "'details', details), "
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM audit ORDER BY id").rowcount
        set_state(conn, "joined", kiosk_id)
        set_state(conn, "kiosk_name", kiosk_name)
    return queued


def kiosk_names(library: FaceLibrary) -> list[str]:
    """The kiosk names in this library's entry log (this door's and, in a fleet, the others')."""
    with library.reading("listing the doors in the log") as conn:
        return [str(r[0]) for r in conn.execute(
            "SELECT DISTINCT kiosk_id FROM events ORDER BY kiosk_id")]


@dataclass(frozen=True)
class Waiting:
    """What this kiosk has not yet uploaded."""

    events: int
    other: int  # audit lines, removals, holidays
    people: int
    templates: int
    groups: int

    @property
    def total(self) -> int:
        return self.events + self.other + self.people + self.templates + self.groups


def waiting(library: FaceLibrary) -> Waiting:
    """Counts of what waits for upload (cheap: indexed)."""
    with library.reading("counting what waits for upload") as conn:
        kinds = dict(conn.execute("SELECT kind = 'event', count(*) FROM fleet_outbox "
                                  "GROUP BY kind = 'event'").fetchall())
        one = lambda sql: int(conn.execute(sql).fetchone()[0])  # noqa: E731
        return Waiting(int(kinds.get(1, 0)), int(kinds.get(0, 0)),
                       one("SELECT count(*) FROM fleet_people WHERE dirty > 0"),
                       one("SELECT count(*) FROM fleet_templates WHERE dirty > 0"),
                       one("SELECT count(*) FROM fleet_groups WHERE dirty > 0"))
