"""Up, kiosk -> server: people, templates and access groups with a change count are upserted
by their fleet id, then the outbox (events and audit lines with the idempotency key (kiosk id,
local sequence), removals, holidays). Rows leave the library's queue only after the server
committed them (see :mod:`faceguard.fleet.engine`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from faceguard.fleet import local
from faceguard.fleet.status import SyncReport
from faceguard.library.database import FaceLibrary

log = logging.getLogger("faceguard.fleet.engine")


def push_changes(conn: Any, library: FaceLibrary, kiosk_id: str, batch: int,
                 report: SyncReport) -> None:
    """Push what this kiosk changed, then its outbox; each batch is committed on the server
    before it leaves the library."""
    report.pushed_people += _push_changed(conn, library, "person", local.dirty_people,
                                          push_people, batch)
    report.pushed_templates += _push_changed(conn, library, "template",
                                             local.dirty_templates, push_templates,
                                             max(1, batch // 5))
    groups = local.dirty_groups(library, batch)
    if groups:
        done = [(g["local_id"], g["dirty"], push_group(conn, g)) for g in groups]
        conn.commit()
        local.mark_pushed(library, "group", done)
        report.pushed_groups += len(done)
    reconcile(conn, library, kiosk_id)
    while True:
        rows = local.outbox_batch(library, batch)
        if not rows:
            break
        push_outbox(conn, kiosk_id, rows, report)
        conn.commit()  # only now is the batch the server's
        local.outbox_done(library, [r.seq for r in rows])
    conn.execute("UPDATE kiosks SET last_upload = now() WHERE id = %s", (kiosk_id,))



def _push_changed(conn: Any, library: FaceLibrary, kind: str,
                  changed: Callable[[FaceLibrary, int], list[dict[str, Any]]],
                  push: Callable[[Any, list[dict[str, Any]]], list[int | None]],
                  limit: int) -> int:
    """Push the changed rows of one kind, ``limit`` at a time, each batch committed on the
    server before its change counts come off here. Returns how many were pushed."""
    pushed = 0
    while True:
        rows = changed(library, limit)
        if not rows:
            return pushed
        done = list(zip([r["local_id"] for r in rows], [r["dirty"] for r in rows],
                        push(conn, rows), strict=True))
        conn.commit()
        local.mark_pushed(library, kind, done)
        pushed += len(done)


def reconcile(conn: Any, library: FaceLibrary, kiosk_id: str) -> int:
    """Queued rows whose sequence number the server already holds for another entry get
    new numbers (a backup restored here rewinds the outbox's counter; without this the
    server would drop the new entries as repeats). A row the server holds as it is (a
    lost reply) keeps its number and is dropped there as the repeat it is. Costs one
    indexed query per round when nothing was rewound."""
    first = local.first_queued(library)
    if first is None:
        return 0
    top = conn.execute("SELECT greatest((SELECT max(seq) FROM events WHERE kiosk_id = %s), "
                       "(SELECT max(seq) FROM audit WHERE kiosk_id = %s))",
                       (kiosk_id, kiosk_id)).fetchone()[0]
    if top is None or int(top) < first:
        return 0
    rows = [r for r in local.outbox_from(library, first, int(top))
            if r.kind in ("event", "audit")]
    seqs = [r.seq for r in rows]
    held = {("event", int(r[0])): (str(r[1]), r[2]) for r in conn.execute(
        "SELECT seq, details->>'local_id', timestamp FROM events WHERE kiosk_id = %s AND "
        "seq = ANY(%s)", (kiosk_id, seqs))}
    held.update({("audit", int(r[0])): (str(r[1]), r[2]) for r in conn.execute(
        "SELECT seq, action, timestamp FROM audit WHERE kiosk_id = %s AND seq = ANY(%s)",
        (kiosk_id, seqs))})
    clash = []
    for r in rows:
        there = held.get((r.kind, r.seq))
        if there is None:
            continue
        key = str(r.payload.get("local_id") if r.kind == "event" else r.payload["action"])
        if there != (key, datetime.fromisoformat(r.payload["timestamp"])):
            clash.append(r.seq)
    conn.commit()
    if clash:
        log.warning("%d queued entries had sequence numbers the server already holds (a "
                    "restored backup?); they are renumbered", len(clash))
        local.renumber(library, clash, int(top))
    return len(clash)


def _many(conn: Any, sql: str, params: list[tuple[Any, ...]]) -> list[int | None]:
    """One statement per row in a single round trip (pipeline); each row's RETURNING
    revision, or None where the server kept a tombstone instead."""
    revisions: list[int | None] = []
    with conn.cursor() as cur:
        cur.executemany(sql, params, returning=True)
        while True:
            row = cur.fetchone()
            revisions.append(None if row is None else int(row[0]))
            if not cur.nextset():
                break
    return revisions


def push_people(conn: Any, people: list[dict[str, Any]]) -> list[int | None]:
    return _many(
        conn,
        "INSERT INTO people AS p (uid, name, employee_id, department, active, valid_from, "
        "valid_until, disabled, created, revision) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, 0) ON CONFLICT (uid) DO UPDATE SET name = excluded.name, employee_id = "
        "excluded.employee_id, department = excluded.department, active = excluded.active, "
        "valid_from = excluded.valid_from, valid_until = excluded.valid_until, disabled = "
        "excluded.disabled, updated_by = current_user RETURNING p.revision",
        [(p["uid"], p["name"], p["employee_id"], p["department"], p["active"],
          p["valid_from"], p["valid_until"], p["disabled"], p["created"]) for p in people])


def push_templates(conn: Any, templates: list[dict[str, Any]]) -> list[int | None]:
    return _many(
        conn,
        "INSERT INTO templates AS t (uid, person_uid, embedding, dim, model_id, quality, "
        "crop_jpeg, source, content_sha256, created, revision) SELECT %s, %s, %s, %s, %s, "
        "%s, %s, %s, %s, %s, 0 WHERE EXISTS (SELECT 1 FROM people WHERE uid = %s) "
        "ON CONFLICT (uid) DO UPDATE SET embedding = excluded.embedding, dim = excluded.dim, "
        "model_id = excluded.model_id, quality = excluded.quality, crop_jpeg = "
        "excluded.crop_jpeg, updated_by = current_user RETURNING t.revision",
        [(t["uid"], t["person_uid"], t["embedding"], t["dim"], t["model_id"], t["quality"],
          t["crop_jpeg"], t["source"], t["content_sha256"], t["created"], t["person_uid"])
         for t in templates])


def push_group(conn: Any, g: dict[str, Any]) -> int | None:
    row = conn.execute(
        "INSERT INTO access_groups AS g (uid, name, windows, members, revision) VALUES "
        "(%s, %s, %s::jsonb, %s::uuid[], 0) ON CONFLICT (uid) DO UPDATE SET name = "
        "excluded.name, windows = excluded.windows, members = excluded.members, "
        "updated_by = current_user RETURNING g.revision",
        (g["uid"], g["name"], json.dumps(g["windows"]), g["members"])).fetchone()
    return None if row is None else int(row[0])


def push_outbox(conn: Any, kiosk_id: str, rows: list[local.OutRow], report: SyncReport
                ) -> None:
    """Events and audit lines (kept once per kiosk id and sequence), removals and holidays."""
    events = [r for r in rows if r.kind == "event"]
    audit = [r for r in rows if r.kind == "audit"]
    if events:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO events (kiosk_id, seq, timestamp, kiosk_name, person_uid, "
                "person_name, similarity, decision, liveness, details, revision) VALUES (%s, "
                "%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, 0) ON CONFLICT (kiosk_id, seq) "
                "DO NOTHING",
                [(kiosk_id, r.seq, r.payload["timestamp"], r.payload["kiosk_name"],
                  r.payload.get("person_uid"), r.payload.get("person_name"),
                  r.payload.get("similarity"), r.payload["decision"],
                  r.payload.get("liveness"),
                  json.dumps({"local_id": r.payload.get("local_id"),
                              "access": r.payload.get("access"),
                              "access_reason": r.payload.get("access_reason")}))
                 for r in events])
    if audit:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO audit (kiosk_id, seq, timestamp, actor, action, details) VALUES "
                "(%s, %s, %s, %s, %s, %s) ON CONFLICT (kiosk_id, seq) DO NOTHING",
                [(kiosk_id, r.seq, r.payload["timestamp"], r.payload["actor"],
                  r.payload["action"], r.payload.get("details") or "") for r in audit])
    for r in rows:
        if r.kind == "erase_person":
            conn.execute("SELECT erase_person(%s, %s)",
                         (r.payload["uid"], r.payload["pseudonym"]))
        elif r.kind == "remove_person":
            conn.execute("SELECT remove_person(%s, %s)",
                         (r.payload["uid"], bool(r.payload.get("erase"))))
        elif r.kind == "remove_template":
            conn.execute("UPDATE templates SET deleted = true, embedding = NULL, crop_jpeg "
                         "= NULL, source = NULL, content_sha256 = NULL WHERE uid = %s",
                         (r.payload["uid"],))
        elif r.kind == "remove_group":
            conn.execute("UPDATE access_groups SET deleted = true, name = NULL, members = "
                         "'{}', windows = '[]' WHERE uid = %s", (r.payload["uid"],))
        elif r.kind == "holiday":
            conn.execute("INSERT INTO holidays (day, name, deleted, revision) VALUES (%s, "
                         "%s, %s, 0) ON CONFLICT (day) DO UPDATE SET name = excluded.name, "
                         "deleted = excluded.deleted, updated_by = current_user",
                         (r.payload["day"], r.payload.get("name") or "",
                          bool(r.payload.get("deleted"))))
    report.uploaded_events += len(events)
    report.uploaded_other += len(rows) - len(events)
