"""What goes up from the kiosk: the outbox (events, audit lines, removals, holidays) and the
people, templates and access groups with a change count, and recording what the server took."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from faceguard.library.database import FaceLibrary

MAP_TABLE = {"person": ("fleet_people", "person_id"),
             "template": ("fleet_templates", "template_id"),
             "group": ("fleet_groups", "group_id")}
"""The id map of each kind: its table and the local id column."""


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


def mark_pushed(library: FaceLibrary, kind: str, done: list[tuple[int, int, int | None]]) -> None:
    """(local id, change count pushed, server revision or None) for each pushed row: the count
    comes off (an edit made meanwhile stays pending) and the revision is remembered."""
    table, column = MAP_TABLE[kind]
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
