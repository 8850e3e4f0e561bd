"""What comes down to the kiosk: the server's people, templates, access groups, holidays and
other doors' events applied in one local transaction per batch, with the ``applying`` marker
set so the triggers of :mod:`faceguard.library.fleet_tables` do not queue them back."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faceguard.fleet.local.outgoing import MAP_TABLE
from faceguard.fleet.local.state import fleet_uid, set_state
from faceguard.library.database import FaceLibrary, name_key
from faceguard.library.rules import write_holiday, write_validity


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
    table, column = MAP_TABLE[kind]
    row = conn.execute(f"SELECT {column}, revision FROM {table} WHERE uid = ?",
                       (uid,)).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


_LOCAL_TABLE = {"person": "people", "template": "templates", "group": "access_groups"}


def _store_mapped(conn: sqlite3.Connection, kind: str, uid: str, revision: int,
                  known: tuple[int, int] | None, fields: dict[str, Any],
                  first_time: dict[str, Any]) -> int:
    """Write the local copy of a server row: a new row (``fields`` and ``first_time``) with
    its id-map entry, or ``fields`` of the row ``known`` maps it to and the new revision.
    Returns the local id."""
    table, (map_table, column) = _LOCAL_TABLE[kind], MAP_TABLE[kind]
    if known is None:
        values = {**fields, **first_time}
        cursor = conn.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES "
                              f"({', '.join('?' * len(values))})", tuple(values.values()))
        local_id = int(cursor.lastrowid or 0)
        conn.execute(f"INSERT INTO {map_table} ({column}, uid, revision, dirty) VALUES "
                     "(?, ?, ?, 0)", (local_id, uid, revision))
        return local_id
    local_id = known[0]
    conn.execute(f"UPDATE {table} SET {', '.join(f'{name} = ?' for name in fields)} "
                 "WHERE id = ?", (*fields.values(), local_id))
    conn.execute(f"UPDATE {map_table} SET revision = ? WHERE {column} = ?",
                 (revision, local_id))
    return local_id


@contextlib.contextmanager
def _savepoint(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """A step that a clash (IntegrityError) undoes alone, leaving the batch going."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except sqlite3.IntegrityError:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


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
    employee = row["employee_id"]
    fields = {"name": row["name"], "name_key": name_key(row["name"]), "employee_id": employee,
              "employee_key": None if employee is None else name_key(employee),
              "department": row["department"], "active": 1 if row["active"] else 0}
    try:
        with _savepoint(conn, "fleet_person"):
            person_id = _store_mapped(conn, "person", uid, revision, known, fields,
                                      {"created": _stamp(row["created"])})
            write_validity(conn, person_id, _stamp(row["valid_from"]),
                           _stamp(row["valid_until"]), bool(row["disabled"]))
    except sqlite3.IntegrityError as error:
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
    fields = {"embedding": bytes(row["embedding"]), "dim": int(row["dim"]),
              "model_id": row["model_id"], "quality": float(row["quality"]),
              "crop_jpeg": bytes(row["crop_jpeg"]), "source": row["source"],
              "content_sha256": row["content_sha256"]}
    template_id = _store_mapped(conn, "template", uid, revision, known, fields,
                                {"person_id": person[0], "created": _stamp(row["created"])})
    if done.seal is not None:  # an encrypted library seals what it takes over, bound to its id
        vector, vector_seal = done.seal("templates", "embedding", template_id,
                                        fields["embedding"])
        crop, crop_seal = done.seal("templates", "crop_jpeg", template_id, fields["crop_jpeg"])
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
        with _savepoint(conn, "fleet_group"):
            group_id = _store_mapped(conn, "group", uid, revision, known,
                                     {"name": name, "name_key": name_key(name)},
                                     {"created": _stamp(datetime.now(UTC))})
            conn.execute("DELETE FROM access_members WHERE group_id = ?", (group_id,))
            for member in row["members"] or []:
                person = _local_id(conn, "person", fleet_uid(member))
                if person is not None:
                    conn.execute("INSERT OR IGNORE INTO access_members (group_id, person_id) "
                                 "VALUES (?, ?)", (group_id, person[0]))
            conn.execute("DELETE FROM access_windows WHERE group_id = ?", (group_id,))
            windows = row["windows"] if isinstance(row["windows"], list) else json.loads(
                row["windows"] or "[]")
            for day, start, end, door in windows:
                conn.execute("INSERT INTO access_windows (group_id, day, start_min, end_min, "
                             "door) VALUES (?, ?, ?, ?, ?)", (group_id, day, start, end, door))
    except sqlite3.IntegrityError as error:
        done.conflicts.append(f"access group {name!r} not taken over: {error}")
        return
    done.groups += 1


def apply_holiday(conn: sqlite3.Connection, row: dict[str, Any], done: Applied) -> None:
    day = str(row["day"])
    if row["deleted"]:
        conn.execute("DELETE FROM access_holidays WHERE day = ?", (day,))
    else:
        write_holiday(conn, day, row["name"] or "")
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
