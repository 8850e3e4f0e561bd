"""Down, server -> kiosk: everything with a revision above the kiosk's cursor (people,
templates, groups, holidays, other doors' events), read in one REPEATABLE READ snapshot and
applied in windows of revisions, each window one local transaction with the new cursor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faceguard.fleet import local
from faceguard.fleet.status import SyncReport
from faceguard.library.database import FaceLibrary

REVISION_WINDOW = 2000


PULLS = (
    ("people", "SELECT uid, name, employee_id, department, active, valid_from, valid_until, "
               "disabled, created, deleted, erased, pseudonym, revision FROM people",
     local.apply_person),
    ("access_groups", "SELECT uid, name, windows, members, deleted, revision FROM "
                      "access_groups", local.apply_group),
    ("templates", "SELECT uid, person_uid, embedding, dim, model_id, quality, crop_jpeg, "
                  "source, content_sha256, created, deleted, revision FROM templates",
     local.apply_template),
    ("holidays", "SELECT day, name, deleted, revision FROM holidays", local.apply_holiday),
    ("events", "SELECT kiosk_id, seq, timestamp, kiosk_name, person_uid, person_name, "
               "similarity, decision, liveness, details->>'access' AS access, "
               "details->>'access_reason' AS access_reason, revision FROM events",
     local.apply_event),
)
"""Each table pulled down: the query and the local function that applies a row."""


def pull_changes(conn: Any, library: FaceLibrary, kiosk_id: str, report: SyncReport) -> None:
    """Take over every change above the cursor, read in one REPEATABLE READ snapshot and
    applied in windows of revisions (each one local transaction with its new cursor)."""
    from psycopg.rows import dict_row

    cursor = int(local.get_state(library, "cursor") or 0)
    conn.commit()
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    top = int(conn.execute(
        "SELECT greatest((SELECT max(revision) FROM people), (SELECT max(revision) FROM "
        "templates), (SELECT max(revision) FROM access_groups), (SELECT max(revision) FROM "
        "holidays), (SELECT max(revision) FROM events), 0)").fetchone()[0])
    while cursor < top:
        upto = min(top, cursor + REVISION_WINDOW)
        batch: list[tuple[Callable[..., None], dict[str, Any]]] = []
        with conn.cursor(row_factory=dict_row) as cur:
            for table, select, apply in PULLS:
                mine = " AND kiosk_id <> %s" if table == "events" else ""
                params: tuple[Any, ...] = (cursor, upto)
                if mine:
                    params += (kiosk_id,)
                cur.execute(f"{select} WHERE revision > %s AND revision <= %s{mine} "
                            "ORDER BY revision", params)
                batch += [(apply, row) for row in cur.fetchall()]
        done = local.Applied(seal=getattr(library, "_seal", None))
        with local.applying(library, "taking over changes from the fleet server") \
                as lconn:
            for apply, row in batch:
                apply(lconn, row, done)
            local.set_state(lconn, "cursor", str(upto))
            if done.total():  # who changed this library: the fleet (kept here only)
                library.audit("fleet", "fleet_applied", {
                    "revisions": [cursor + 1, upto], "people": done.people,
                    "templates": done.templates, "groups": done.groups,
                    "holidays": done.holidays, "events": done.events,
                    "removed": done.removed, "conflicts": len(done.conflicts)})
        report.applied.add(done)
        cursor = upto
    conn.commit()
    report.cursor = cursor
