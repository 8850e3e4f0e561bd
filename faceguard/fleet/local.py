"""The kiosk's side of the sync, in its SQLite library (tables of schema step 012).

Reads what waits for upload (outbox rows, people/templates/groups with a change count) and
applies the server's changes (people, templates, groups, holidays, other doors' events) in
one local transaction per batch, with the ``applying`` marker set so the triggers of
:mod:`faceguard.library.fleet_tables` do not queue them back to the server.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faceguard.library.database import FaceLibrary, name_key

# -- state -------------------------------------------------------------------------------------


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


# -- reading what goes up ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutRow:
    seq: int
    kind: str
    payload: dict[str, Any]


def outbox_batch(library: FaceLibrary, limit: int) -> list[OutRow]:
    """The oldest queued rows."""
    with library.reading("reading the sync outbox") as conn:
        rows = conn.execute("SELECT seq, kind, payload FROM fleet_outbox ORDER BY seq LIMIT ?",
                            (limit,)).fetchall()
    return [OutRow(int(r[0]), str(r[1]), json.loads(r[2])) for r in rows]


def outbox_from(library: FaceLibrary, first: int, last: int) -> list[OutRow]:
    """Queued rows with ``first <= seq <= last``."""
    with library.reading("reading the sync outbox") as conn:
        rows = conn.execute("SELECT seq, kind, payload FROM fleet_outbox WHERE seq BETWEEN ? "
                            "AND ? ORDER BY seq", (first, last)).fetchall()
    return [OutRow(int(r[0]), str(r[1]), json.loads(r[2])) for r in rows]


def first_queued(library: FaceLibrary) -> int | None:
    with library.reading("reading the sync outbox") as conn:
        row = conn.execute("SELECT min(seq) FROM fleet_outbox").fetchone()
    return None if row[0] is None else int(row[0])


def renumber(library: FaceLibrary, seqs: list[int], above: int) -> None:
    """Give these queued rows new sequence numbers above ``above`` (and above every queued
    row), in their order: their old numbers were already used on the server."""
    with library.upkeep("renumbering the sync outbox") as conn:
        top = int(conn.execute("SELECT COALESCE(max(seq), 0) FROM fleet_outbox").fetchone()[0])
        start = max(top, above)
        for offset, seq in enumerate(sorted(seqs), start=1):
            conn.execute("UPDATE fleet_outbox SET seq = ? WHERE seq = ?", (start + offset, seq))


def outbox_done(library: FaceLibrary, seqs: list[int]) -> None:
    """The server has these rows: drop them (their seq is never reused: AUTOINCREMENT)."""
    if not seqs:
        return
    with library.upkeep("clearing the sync outbox") as conn:
        conn.executemany("DELETE FROM fleet_outbox WHERE seq = ?", [(s,) for s in seqs])


def outbox_failed(library: FaceLibrary, seqs: list[int], error: str) -> None:
    with library.upkeep("recording an upload failure") as conn:
        conn.executemany("UPDATE fleet_outbox SET attempts = attempts + 1, last_error = ? "
                         "WHERE seq = ?", [(error[:300], s) for s in seqs])


def dirty_people(library: FaceLibrary, limit: int) -> list[dict[str, Any]]:
    with library.reading("reading changed people") as conn:
        rows = conn.execute(
            "SELECT f.person_id, f.uid, f.dirty, p.name, p.employee_id, p.department, p.active, "
            "p.created, v.valid_from, v.valid_until, COALESCE(v.disabled, 0) FROM fleet_people f "
            "JOIN people p ON p.id = f.person_id LEFT JOIN access_validity v ON v.person_id = "
            "p.id WHERE f.dirty > 0 ORDER BY f.person_id LIMIT ?", (limit,)).fetchall()
    return [{"local_id": r[0], "uid": r[1], "dirty": r[2], "name": r[3], "employee_id": r[4],
             "department": r[5], "active": bool(r[6]), "created": r[7], "valid_from": r[8],
             "valid_until": r[9], "disabled": bool(r[10])} for r in rows]


def dirty_templates(library: FaceLibrary, limit: int) -> list[dict[str, Any]]:
    """Changed templates with their vector and crop read through the library (so a library
    with encryption at rest hands over the opened values, never its sealed bytes)."""
    with library.reading("reading changed templates") as conn:
        rows = conn.execute(
            "SELECT f.template_id, f.uid, f.dirty, fp.uid, t.dim, t.model_id, t.quality, "
            "t.source, t.content_sha256, t.created FROM fleet_templates f JOIN templates t ON "
            "t.id = f.template_id JOIN fleet_people fp ON fp.person_id = t.person_id "
            "WHERE f.dirty > 0 ORDER BY f.template_id LIMIT ?", (limit,)).fetchall()
    result = []
    for r in rows:
        vector = library.get_template_vector(int(r[0]))
        result.append({"local_id": r[0], "uid": r[1], "dirty": r[2], "person_uid": r[3],
                       "embedding": vector.astype("<f4").tobytes(), "dim": r[4],
                       "model_id": r[5], "quality": r[6],
                       "crop_jpeg": library.get_template_crop(int(r[0])), "source": r[7],
                       "content_sha256": r[8], "created": r[9]})
    return result


def dirty_groups(library: FaceLibrary, limit: int) -> list[dict[str, Any]]:
    with library.reading("reading changed access groups") as conn:
        rows = conn.execute(
            "SELECT f.group_id, f.uid, f.dirty, g.name FROM fleet_groups f JOIN access_groups g "
            "ON g.id = f.group_id WHERE f.dirty > 0 ORDER BY f.group_id LIMIT ?",
            (limit,)).fetchall()
        result = []
        for gid, uid, dirty, name in rows:
            members = [str(r[0]) for r in conn.execute(
                "SELECT fp.uid FROM access_members m JOIN fleet_people fp ON fp.person_id = "
                "m.person_id WHERE m.group_id = ? ORDER BY fp.uid", (gid,))]
            windows = [[int(r[0]), int(r[1]), int(r[2]), r[3]] for r in conn.execute(
                "SELECT day, start_min, end_min, door FROM access_windows WHERE group_id = ? "
                "ORDER BY day, start_min, id", (gid,))]
            result.append({"local_id": gid, "uid": uid, "dirty": dirty, "name": name,
                           "members": members, "windows": windows})
    return result


_MAP_TABLE = {"person": ("fleet_people", "person_id"),
              "template": ("fleet_templates", "template_id"),
              "group": ("fleet_groups", "group_id")}


def mark_pushed(library: FaceLibrary, kind: str, done: list[tuple[int, int, int | None]]) -> None:
    """(local id, change count pushed, server revision or None) for each pushed row: the count
    comes off (an edit made meanwhile stays pending) and the revision is remembered."""
    table, column = _MAP_TABLE[kind]
    with library.upkeep("recording an upload") as conn:
        conn.executemany(
            f"UPDATE {table} SET dirty = max(dirty - ?, 0), revision = max(revision, "
            f"COALESCE(?, revision)) WHERE {column} = ?",
            [(count, revision, local_id) for local_id, count, revision in done])


@contextlib.contextmanager
def kept_change_counts(library: FaceLibrary) -> Iterator[None]:
    """Re-embedding here (templates of another kiosk's model, from their crops) is this kiosk's
    own affair: the change counts it would raise are put back, so it is not sent up (two
    kiosks on different models would otherwise overwrite each other's vectors forever)."""
    with library.reading("reading change counts") as conn:
        before = dict(conn.execute("SELECT template_id, dirty FROM fleet_templates").fetchall())
    try:
        yield
    finally:
        with library.upkeep("restoring change counts") as conn:
            conn.executemany("UPDATE fleet_templates SET dirty = ? WHERE template_id = ? AND "
                             "dirty != ?", [(d, t, d) for t, d in before.items()])


# -- applying what comes down -------------------------------------------------------------------


@contextlib.contextmanager
def applying(library: FaceLibrary, action: str) -> Iterator[sqlite3.Connection]:
    """One local transaction in which the fleet triggers stay quiet."""
    with library.upkeep(action) as conn:
        set_state(conn, "applying", "1")
        yield conn
        set_state(conn, "applying", None)


@dataclass
class Applied:
    """What one batch of server changes did here."""

    people: int = 0
    templates: int = 0
    groups: int = 0
    holidays: int = 0
    events: int = 0
    removed: int = 0
    conflicts: list[str] = field(default_factory=list)
    person_ids: set[int] = field(default_factory=set)  # local people whose matching changed
    # the library's sealing of face blobs (encryption at rest): (table, column, row id,
    # plaintext) -> (stored blob, seal); None stores them as they are
    seal: Callable[[str, str, int, bytes], tuple[Any, Any]] | None = None

    def total(self) -> int:
        return self.people + self.templates + self.groups + self.holidays + self.events + \
            self.removed

    def add(self, other: Applied) -> None:
        for name in ("people", "templates", "groups", "holidays", "events", "removed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.conflicts += other.conflicts
        self.person_ids |= other.person_ids


def _stamp(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return str(value)


def _local_id(conn: sqlite3.Connection, kind: str, uid: str) -> tuple[int, int] | None:
    table, column = _MAP_TABLE[kind]
    row = conn.execute(f"SELECT {column}, revision FROM {table} WHERE uid = ?",
                       (uid,)).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def apply_person(conn: sqlite3.Connection, row: dict[str, Any], done: Applied) -> None:
    uid, revision = fleet_uid(row["uid"]), int(row["revision"])
    known = _local_id(conn, "person", uid)
    if row["deleted"]:
        if known is not None:
            if row.get("erased") and row.get("pseudonym"):  # as the erasing kiosk did
                conn.execute("UPDATE events SET person_name = ?, person_id = NULL, crop_jpeg = "
                             "NULL WHERE person_id = ?", (row["pseudonym"], known[0]))
            conn.execute("DELETE FROM people WHERE id = ?", (known[0],))
            done.removed += 1
            done.person_ids.add(known[0])
        return
    if known is not None and known[1] >= revision:
        return  # our own push coming back, or older
    values = (row["name"], name_key(row["name"]), row["employee_id"],
              None if row["employee_id"] is None else name_key(row["employee_id"]),
              row["department"], 1 if row["active"] else 0)
    try:
        conn.execute("SAVEPOINT fleet_person")
        if known is None:
            cursor = conn.execute(
                "INSERT INTO people (name, name_key, employee_id, employee_key, department, "
                "active, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*values, _stamp(row["created"])))
            person_id = int(cursor.lastrowid or 0)
            conn.execute("INSERT INTO fleet_people (person_id, uid, revision, dirty) VALUES "
                         "(?, ?, ?, 0)", (person_id, uid, revision))
        else:
            person_id = known[0]
            conn.execute("UPDATE people SET name = ?, name_key = ?, employee_id = ?, "
                         "employee_key = ?, department = ?, active = ? WHERE id = ?",
                         (*values, person_id))
            conn.execute("UPDATE fleet_people SET revision = ? WHERE person_id = ?",
                         (revision, person_id))
        if row["valid_from"] is None and row["valid_until"] is None and not row["disabled"]:
            conn.execute("DELETE FROM access_validity WHERE person_id = ?", (person_id,))
        else:
            conn.execute(
                "INSERT INTO access_validity (person_id, valid_from, valid_until, disabled) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (person_id) DO UPDATE SET valid_from = "
                "excluded.valid_from, valid_until = excluded.valid_until, disabled = "
                "excluded.disabled", (person_id, _stamp(row["valid_from"]),
                                      _stamp(row["valid_until"]), int(bool(row["disabled"]))))
        conn.execute("RELEASE fleet_person")
    except sqlite3.IntegrityError as error:
        conn.execute("ROLLBACK TO fleet_person")
        conn.execute("RELEASE fleet_person")
        done.conflicts.append(f"person {row['name']!r} not taken over: {error}")
        return
    done.people += 1
    done.person_ids.add(person_id)


def apply_template(conn: sqlite3.Connection, row: dict[str, Any], done: Applied) -> None:
    uid, revision = fleet_uid(row["uid"]), int(row["revision"])
    known = _local_id(conn, "template", uid)
    if row["deleted"]:
        if known is not None:
            owner = conn.execute("SELECT person_id FROM templates WHERE id = ?",
                                 (known[0],)).fetchone()
            conn.execute("DELETE FROM templates WHERE id = ?", (known[0],))
            done.removed += 1
            if owner:
                done.person_ids.add(int(owner[0]))
        return
    if known is not None and known[1] >= revision:
        return
    person = _local_id(conn, "person", fleet_uid(row["person_uid"]))
    if person is None:
        done.conflicts.append(f"template {uid} skipped: its person is not here")
        return
    values = (bytes(row["embedding"]), int(row["dim"]), row["model_id"], float(row["quality"]),
              bytes(row["crop_jpeg"]), row["source"], row["content_sha256"])
    if known is None:
        cursor = conn.execute(
            "INSERT INTO templates (person_id, embedding, dim, model_id, quality, crop_jpeg, "
            "source, content_sha256, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (person[0], *values, _stamp(row["created"])))
        template_id = int(cursor.lastrowid or 0)
        conn.execute("INSERT INTO fleet_templates (template_id, uid, revision, dirty) VALUES "
                     "(?, ?, ?, 0)", (template_id, uid, revision))
    else:
        template_id = known[0]
        conn.execute("UPDATE templates SET embedding = ?, dim = ?, model_id = ?, quality = ?, "
                     "crop_jpeg = ?, source = ?, content_sha256 = ? WHERE id = ?",
                     (*values, template_id))
        conn.execute("UPDATE fleet_templates SET revision = ? WHERE template_id = ?",
                     (revision, template_id))
    if done.seal is not None:  # an encrypted library seals what it takes over, bound to its id
        vector, vector_seal = done.seal("templates", "embedding", template_id, values[0])
        crop, crop_seal = done.seal("templates", "crop_jpeg", template_id, values[4])
        if vector_seal is not None:
            conn.execute("UPDATE templates SET embedding = ?, embedding_seal = ?, crop_jpeg = ?, "
                         "crop_seal = ? WHERE id = ?",
                         (vector, vector_seal, crop, crop_seal, template_id))
    done.templates += 1
    done.person_ids.add(person[0])


def apply_group(conn: sqlite3.Connection, row: dict[str, Any], done: Applied) -> None:
    uid, revision = fleet_uid(row["uid"]), int(row["revision"])
    known = _local_id(conn, "group", uid)
    if row["deleted"]:
        if known is not None:
            conn.execute("DELETE FROM access_groups WHERE id = ?", (known[0],))
            done.removed += 1
        return
    if known is not None and known[1] >= revision:
        return
    name = " ".join(str(row["name"]).split())
    try:
        conn.execute("SAVEPOINT fleet_group")
        if known is None:
            cursor = conn.execute("INSERT INTO access_groups (name, name_key, created) VALUES "
                                  "(?, ?, ?)", (name, name_key(name),
                                                _stamp(datetime.now(UTC))))
            group_id = int(cursor.lastrowid or 0)
            conn.execute("INSERT INTO fleet_groups (group_id, uid, revision, dirty) VALUES "
                         "(?, ?, ?, 0)", (group_id, uid, revision))
        else:
            group_id = known[0]
            conn.execute("UPDATE access_groups SET name = ?, name_key = ? WHERE id = ?",
                         (name, name_key(name), group_id))
            conn.execute("UPDATE fleet_groups SET revision = ? WHERE group_id = ?",
                         (revision, group_id))
        conn.execute("DELETE FROM access_members WHERE group_id = ?", (group_id,))
        for member in row["members"] or []:
            person = _local_id(conn, "person", fleet_uid(member))
            if person is not None:
                conn.execute("INSERT OR IGNORE INTO access_members (group_id, person_id) VALUES "
                             "(?, ?)", (group_id, person[0]))
        conn.execute("DELETE FROM access_windows WHERE group_id = ?", (group_id,))
        windows = row["windows"] if isinstance(row["windows"], list) else json.loads(
            row["windows"] or "[]")
        for day, start, end, door in windows:
            conn.execute("INSERT INTO access_windows (group_id, day, start_min, end_min, door) "
                         "VALUES (?, ?, ?, ?, ?)", (group_id, day, start, end, door))
        conn.execute("RELEASE fleet_group")
    except sqlite3.IntegrityError as error:
        conn.execute("ROLLBACK TO fleet_group")
        conn.execute("RELEASE fleet_group")
        done.conflicts.append(f"access group {name!r} not taken over: {error}")
        return
    done.groups += 1


def apply_holiday(conn: sqlite3.Connection, row: dict[str, Any], done: Applied) -> None:
    day = str(row["day"])
    if row["deleted"]:
        conn.execute("DELETE FROM access_holidays WHERE day = ?", (day,))
    else:
        conn.execute("INSERT INTO access_holidays (day, name) VALUES (?, ?) ON CONFLICT (day) "
                     "DO UPDATE SET name = excluded.name", (day, row["name"] or ""))
    done.holidays += 1


def apply_event(conn: sqlite3.Connection, row: dict[str, Any], done: Applied) -> None:
    """Another door's event, stored once (keyed by its kiosk id and sequence)."""
    origin, seq = fleet_uid(row["kiosk_id"]), int(row["seq"])
    if conn.execute("SELECT 1 FROM fleet_events WHERE origin = ? AND origin_seq = ?",
                    (origin, seq)).fetchone():
        return
    person = None
    if row["person_uid"] is not None:
        found = _local_id(conn, "person", fleet_uid(row["person_uid"]))
        person = None if found is None else found[0]
    cursor = conn.execute(
        "INSERT INTO events (timestamp, kiosk_id, person_id, person_name, similarity, decision, "
        "liveness, access, access_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (_stamp(row["timestamp"]), row["kiosk_name"], person, row["person_name"],
         row["similarity"], row["decision"], row["liveness"], row.get("access"),
         row.get("access_reason")))
    conn.execute("INSERT INTO fleet_events (event_id, origin, origin_seq) VALUES (?, ?, ?)",
                 (int(cursor.lastrowid or 0), origin, seq))
    done.events += 1
