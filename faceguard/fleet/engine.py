"""One sync round between a kiosk's library and the fleet server, and the loop that runs them.

**Up** (kiosk -> server), in this order, each batch one server transaction:
1. people, templates and access groups whose local change count is above zero: upserted by
   their fleet id; the count pushed is cleared afterwards (an edit made meanwhile stays);
2. the outbox, oldest first: events and audit lines with the idempotency key (kiosk id, local
   sequence) and ``ON CONFLICT DO NOTHING``, removals (:func:`remove_person`, template and
   group tombstones) and holidays. Rows leave the outbox only after the server committed them:
   a crash, a ``kill -9`` or a lost reply sends a batch again and the server keeps one copy.

**Down** (server -> kiosk): everything with a revision above the kiosk's cursor (people,
templates, groups, holidays, other doors' events), read in one REPEATABLE READ snapshot and
applied here in windows of revisions, each window one local transaction together with the new
cursor. Revisions are handed out in commit order (see :mod:`faceguard.fleet.server_schema`),
so the cursor never passes a change still in flight.

**The same person edited at two places.** Person fields: the last write to reach the server
wins (the higher server revision); a kiosk that was offline pushes its edit when it comes back
and so wins over an earlier online edit. Templates are never merged or overwritten: each
enrolment adds its own, so photos enrolled at two doors are both kept. A removal or erasure is
final: the server ignores later edits of a tombstone and refuses templates for it, and every
kiosk deletes the person when the tombstone arrives. A person whose name clashes locally with
a different active person is not taken over; the round reports the conflict.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faceguard.errors import FaceGuardError
from faceguard.fleet import local
from faceguard.fleet.config import FleetConfig, load_config, read_password
from faceguard.fleet.server_schema import (
    NOTIFY_CHANNEL,
    SCHEMA,
    ServerError,
    check_schema,
    describe,
)
from faceguard.library.database import FaceLibrary

log = logging.getLogger(__name__)
# The pool retries connections itself and logs every refusal; the sync loop reports outages
# once, in its own words.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

BATCH = 500
REVISION_WINDOW = 2000
STATEMENT_TIMEOUT_MS = 30_000


@dataclass
class SyncReport:
    """What one round did."""

    uploaded_events: int = 0
    uploaded_other: int = 0
    pushed_people: int = 0
    pushed_templates: int = 0
    pushed_groups: int = 0
    applied: local.Applied = field(default_factory=local.Applied)
    cursor: int = 0
    waiting: int = 0  # still waiting for upload after the round

    @property
    def up_to_date(self) -> bool:
        return self.waiting == 0

    def to_json(self) -> dict[str, Any]:
        a = self.applied
        return {"uploaded_events": self.uploaded_events, "uploaded_other": self.uploaded_other,
                "pushed_people": self.pushed_people, "pushed_templates": self.pushed_templates,
                "pushed_groups": self.pushed_groups, "pulled": {
                    "people": a.people, "templates": a.templates, "groups": a.groups,
                    "holidays": a.holidays, "events": a.events, "removed": a.removed},
                "conflicts": a.conflicts, "cursor": self.cursor, "waiting": self.waiting,
                "up_to_date": self.up_to_date}


@dataclass(frozen=True)
class FleetStatus:
    """The kiosk's sync state, from the library alone (no network)."""

    joined: bool
    kiosk_name: str | None = None
    server: str | None = None
    waiting: int = 0
    last_sync: datetime | None = None
    offline_since: datetime | None = None
    last_error: str | None = None

    @property
    def state(self) -> str:
        if not self.joined:
            return "standalone"
        if self.offline_since is not None:
            return "offline"
        return "synced" if self.waiting == 0 and self.last_sync else "syncing"

    def text(self) -> str:
        """One line for the status bar: "synced, last sync 10:42", "offline since 10:42, 37
        entries waiting"."""
        if not self.joined:
            return "not in a fleet"
        entries = f"{self.waiting} {'entry' if self.waiting == 1 else 'entries'} waiting"
        if self.offline_since is not None:
            return f"offline since {_clock(self.offline_since)}, {entries}"
        last = f"last sync {_clock(self.last_sync)}" if self.last_sync else "not synced yet"
        if self.waiting:
            return f"syncing, {entries}, {last}"
        return f"synced, {last}"

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "text": self.text(), "kiosk": self.kiosk_name,
                "server": self.server, "waiting": self.waiting,
                "last_sync": self.last_sync and self.last_sync.isoformat(),
                "offline_since": self.offline_since and self.offline_since.isoformat(),
                "last_error": self.last_error}


def _clock(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%H:%M")


def _parse(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def fleet_status(library: FaceLibrary, data_dir: Path) -> FleetStatus:
    """The status line's facts: joined?, entries waiting, last sync, offline since."""
    config = load_config(data_dir)
    if config is None:
        return FleetStatus(joined=False)
    waiting = local.waiting(library).total
    return FleetStatus(True, config.kiosk_name, config.where(), waiting,
                       _parse(local.get_state(library, "last_sync")),
                       _parse(local.get_state(library, "offline_since")),
                       local.get_state(library, "last_error"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class SyncEngine:
    """Sync rounds for one kiosk (its library, its join); connections from a small pool."""

    def __init__(self, library: FaceLibrary, config: FleetConfig, password: str, *,
                 connect_timeout_s: float = 5.0, batch: int = BATCH,
                 software: str = "") -> None:
        self.library, self.config = library, config
        self.batch = batch
        self.connect_timeout_s = connect_timeout_s
        self.software = software
        self._conninfo = config.conninfo(password)
        self._pool: Any = None
        self._schema_checked = False
        self._lock = threading.Lock()  # one round at a time
        self.on_changed: Callable[[set[int]], None] | None = None  # local people whose
        # templates or names changed (the matcher reloads)
        local.mark_joined(library, config.kiosk_id, config.kiosk_name)

    @classmethod
    def for_data_dir(cls, library: FaceLibrary, data_dir: Path, **kwargs: Any) -> SyncEngine:
        """The engine of a joined data folder; ServerError when it has not joined."""
        config = load_config(data_dir)
        if config is None:
            raise ServerError(f"this kiosk has not joined a fleet (no {data_dir / 'fleet.json'}); "
                              "run `faceguard kiosk join --dsn DSN --name NAME`")
        return cls(library, config, read_password(data_dir), **kwargs)

    # -- connections ---------------------------------------------------------------------------

    def _connection(self) -> Any:
        from psycopg_pool import ConnectionPool

        if self._pool is None:
            options = f"-c search_path={SCHEMA},public -c statement_timeout={STATEMENT_TIMEOUT_MS}"
            self._pool = ConnectionPool(
                self._conninfo, min_size=0, max_size=2, open=True,
                timeout=self.connect_timeout_s, reconnect_timeout=self.connect_timeout_s,
                check=ConnectionPool.check_connection, name=f"fleet {self.config.kiosk_name}",
                kwargs={"connect_timeout": max(1, round(self.connect_timeout_s)),
                        "options": options})
        return self._pool.connection()

    def listen_connection(self) -> Any:
        """A separate autocommit connection listening on the change channel."""
        import psycopg

        try:
            conn = psycopg.connect(self._conninfo, autocommit=True,
                                   connect_timeout=max(1, round(self.connect_timeout_s)))
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except psycopg.Error as error:
            raise ServerError(f"cannot listen to the fleet server: {describe(error)}") from None
        return conn

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # -- one round -----------------------------------------------------------------------------

    def sync_once(self, *, download: bool = True) -> SyncReport:
        """Upload what waits, then (unless ``download`` is False: a round for a local entry)
        take over the server's changes. ServerError when the server cannot be reached or
        refuses (what was not confirmed stays queued); the library's status records the
        outage either way."""
        import psycopg
        from psycopg_pool import PoolTimeout

        with self._lock:
            report = SyncReport()
            try:
                with self._connection() as conn:
                    if not self._schema_checked:  # an older or newer server: say so first
                        check_schema(conn)
                        conn.commit()
                        self._schema_checked = True
                    self._upload(conn, report)
                    if download:
                        self._download(conn, report)
                    else:
                        report.cursor = int(local.get_state(self.library, "cursor") or 0)
                    conn.execute("UPDATE kiosks SET last_seen = now(), software = %s WHERE id = "
                                 "%s", (self.software or None, self.config.kiosk_id))
                    conn.commit()
            except ServerError as error:
                self._offline(str(error))
                raise
            except (psycopg.Error, PoolTimeout) as error:
                reason = self._why_not() if isinstance(error, PoolTimeout) else describe(error)
                self._offline(reason)
                raise ServerError(f"sync failed: {reason}") from None
            report.waiting = local.waiting(self.library).total
            local.write_state(self.library, last_sync=_now(), offline_since=None,
                              last_error=None, cursor=str(report.cursor))
            if report.applied.person_ids and self.on_changed is not None:
                self.on_changed(set(report.applied.person_ids))
            for conflict in report.applied.conflicts:
                log.warning("fleet sync: %s", conflict)
            return report

    def _why_not(self) -> str:
        """Why the pool got no connection, in the server's or the TLS layer's words (one
        direct try; the pool keeps its own retries to itself)."""
        import psycopg

        try:
            psycopg.connect(self._conninfo,
                            connect_timeout=max(1, round(self.connect_timeout_s))).close()
        except psycopg.Error as error:
            return describe(error)
        return f"the fleet server {self.config.where()} does not answer in time"

    def _offline(self, reason: str) -> None:
        since = local.get_state(self.library, "offline_since")
        if since is None:
            log.warning("fleet server unreachable (%s); entries wait in the outbox", reason)
        try:
            local.write_state(self.library, offline_since=since or _now(), last_error=reason)
        except FaceGuardError as error:
            log.warning("sync state not recorded: %s", error)

    def _upload(self, conn: Any, report: SyncReport) -> None:
        while True:
            people = local.dirty_people(self.library, self.batch)
            if not people:
                break
            done = list(zip([p["local_id"] for p in people], [p["dirty"] for p in people],
                            self._push_people(conn, people), strict=True))
            conn.commit()
            local.mark_pushed(self.library, "person", done)
            report.pushed_people += len(done)
        while True:
            templates = local.dirty_templates(self.library, max(1, self.batch // 5))
            if not templates:
                break
            done = list(zip([t["local_id"] for t in templates], [t["dirty"] for t in templates],
                            self._push_templates(conn, templates), strict=True))
            conn.commit()
            local.mark_pushed(self.library, "template", done)
            report.pushed_templates += len(done)
        groups = local.dirty_groups(self.library, self.batch)
        if groups:
            done = [(g["local_id"], g["dirty"], self._push_group(conn, g)) for g in groups]
            conn.commit()
            local.mark_pushed(self.library, "group", done)
            report.pushed_groups += len(done)
        self._reconcile(conn)
        while True:
            rows = local.outbox_batch(self.library, self.batch)
            if not rows:
                break
            self._push_outbox(conn, rows, report)
            conn.commit()  # only now is the batch the server's
            local.outbox_done(self.library, [r.seq for r in rows])
        conn.execute("UPDATE kiosks SET last_upload = now() WHERE id = %s",
                     (self.config.kiosk_id,))

    def _reconcile(self, conn: Any) -> int:
        """Queued rows whose sequence number the server already holds for another entry get
        new numbers (a backup restored here rewinds the outbox's counter; without this the
        server would drop the new entries as repeats). A row the server holds as it is (a
        lost reply) keeps its number and is dropped there as the repeat it is. Costs one
        indexed query per round when nothing was rewound."""
        first = local.first_queued(self.library)
        if first is None:
            return 0
        kiosk = self.config.kiosk_id
        top = conn.execute("SELECT greatest((SELECT max(seq) FROM events WHERE kiosk_id = %s), "
                           "(SELECT max(seq) FROM audit WHERE kiosk_id = %s))",
                           (kiosk, kiosk)).fetchone()[0]
        if top is None or int(top) < first:
            return 0
        rows = [r for r in local.outbox_from(self.library, first, int(top))
                if r.kind in ("event", "audit")]
        seqs = [r.seq for r in rows]
        held = {("event", int(r[0])): (str(r[1]), r[2]) for r in conn.execute(
            "SELECT seq, details->>'local_id', timestamp FROM events WHERE kiosk_id = %s AND "
            "seq = ANY(%s)", (kiosk, seqs))}
        held.update({("audit", int(r[0])): (str(r[1]), r[2]) for r in conn.execute(
            "SELECT seq, action, timestamp FROM audit WHERE kiosk_id = %s AND seq = ANY(%s)",
            (kiosk, seqs))})
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
            local.renumber(self.library, clash, int(top))
        return len(clash)

    @staticmethod
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

    def _push_people(self, conn: Any, people: list[dict[str, Any]]) -> list[int | None]:
        return self._many(
            conn,
            "INSERT INTO people AS p (uid, name, employee_id, department, active, valid_from, "
            "valid_until, disabled, created, revision) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, 0) ON CONFLICT (uid) DO UPDATE SET name = excluded.name, employee_id = "
            "excluded.employee_id, department = excluded.department, active = excluded.active, "
            "valid_from = excluded.valid_from, valid_until = excluded.valid_until, disabled = "
            "excluded.disabled, updated_by = current_user RETURNING p.revision",
            [(p["uid"], p["name"], p["employee_id"], p["department"], p["active"],
              p["valid_from"], p["valid_until"], p["disabled"], p["created"]) for p in people])

    def _push_templates(self, conn: Any, templates: list[dict[str, Any]]) -> list[int | None]:
        return self._many(
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

    def _push_group(self, conn: Any, g: dict[str, Any]) -> int | None:
        row = conn.execute(
            "INSERT INTO access_groups AS g (uid, name, windows, members, revision) VALUES "
            "(%s, %s, %s::jsonb, %s::uuid[], 0) ON CONFLICT (uid) DO UPDATE SET name = "
            "excluded.name, windows = excluded.windows, members = excluded.members, "
            "updated_by = current_user RETURNING g.revision",
            (g["uid"], g["name"], json.dumps(g["windows"]), g["members"])).fetchone()
        return None if row is None else int(row[0])

    def _push_outbox(self, conn: Any, rows: list[local.OutRow], report: SyncReport) -> None:
        kiosk = self.config.kiosk_id
        events = [r for r in rows if r.kind == "event"]
        audit = [r for r in rows if r.kind == "audit"]
        if events:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO events (kiosk_id, seq, timestamp, kiosk_name, person_uid, "
                    "person_name, similarity, decision, liveness, details, revision) VALUES (%s, "
                    "%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, 0) ON CONFLICT (kiosk_id, seq) "
                    "DO NOTHING",
                    [(kiosk, r.seq, r.payload["timestamp"], r.payload["kiosk_name"],
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
                    [(kiosk, r.seq, r.payload["timestamp"], r.payload["actor"],
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

    _PULLS = (
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

    def _download(self, conn: Any, report: SyncReport) -> None:
        from psycopg.rows import dict_row

        cursor = int(local.get_state(self.library, "cursor") or 0)
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
                for table, select, apply in self._PULLS:
                    mine = " AND kiosk_id <> %s" if table == "events" else ""
                    params: tuple[Any, ...] = (cursor, upto)
                    if mine:
                        params += (self.config.kiosk_id,)
                    cur.execute(f"{select} WHERE revision > %s AND revision <= %s{mine} "
                                "ORDER BY revision", params)
                    batch += [(apply, row) for row in cur.fetchall()]
            done = local.Applied(seal=getattr(self.library, "_seal", None))
            with local.applying(self.library, "taking over changes from the fleet server") \
                    as lconn:
                for apply, row in batch:
                    apply(lconn, row, done)
                local.set_state(lconn, "cursor", str(upto))
                if done.total():  # who changed this library: the fleet (kept here only)
                    self.library.audit("fleet", "fleet_applied", {
                        "revisions": [cursor + 1, upto], "people": done.people,
                        "templates": done.templates, "groups": done.groups,
                        "holidays": done.holidays, "events": done.events,
                        "removed": done.removed, "conflicts": len(done.conflicts)})
            report.applied.add(done)
            cursor = upto
        conn.commit()
        report.cursor = cursor


class SyncLoop:
    """A background thread running sync rounds: an upload within ``poll_s`` of a local change
    (at once after :meth:`wake`), a download at once when the server notifies a change of
    people, templates or rules, and a full round every ``interval_s`` (which also brings
    the other doors' entries). After a failure the next try waits
    ``backoff_s[0]`` doubling up to ``backoff_s[1]``, unless the listener reconnects (the server
    is back). It never blocks the caller (the GUI thread); ``on_status`` gets a
    :class:`FleetStatus` after every round and whenever the count of waiting entries changes."""

    def __init__(self, engine: SyncEngine, data_dir: Path, *, interval_s: float = 30.0,
                 poll_s: float = 1.0, backoff_s: tuple[float, float] = (1.0, 60.0),
                 on_status: Callable[[FleetStatus], None] | None = None) -> None:
        self.engine, self.data_dir = engine, data_dir
        self.interval_s, self.poll_s, self.backoff_s = interval_s, poll_s, backoff_s
        self.on_status = on_status
        self.failures = 0
        self.rounds = 0
        self._wake = threading.Event()
        self._server_back = threading.Event()
        self._changed = threading.Event()  # the server notified a change of people or rules
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-sync", daemon=True)
        self._listener = threading.Thread(target=self._listen, name="fleet-listen",
                                          daemon=True)

    def start(self) -> SyncLoop:
        self._thread.start()
        self._listener.start()
        return self

    def wake(self) -> None:
        """Sync soon (a local change or a server notification)."""
        self._wake.set()

    def delay(self) -> float:
        """Seconds to wait after the current run of failures."""
        return min(self.backoff_s[0] * 2 ** max(self.failures - 1, 0), self.backoff_s[1])

    def _run(self) -> None:
        next_full = 0.0  # monotonic time of the next round that also downloads
        retry_at = 0.0  # after a failure: the end of the back-off
        shown: int | None = None  # the waiting count last reported
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                pending = local.waiting(self.engine.library).total
            except FaceGuardError:
                pending = 0
            full = now >= next_full or self._changed.is_set()
            if self.failures:  # back-off: only the time, or the server seen back, ends it
                due, full = now >= retry_at or self._server_back.is_set(), True
            else:
                due = full or self._wake.is_set() or pending > 0
            if due:
                self._wake.clear()
                self._server_back.clear()
                if full:
                    self._changed.clear()
                try:
                    self.engine.sync_once(download=full)
                    self.failures = 0
                    if full:
                        next_full = time.monotonic() + self.interval_s
                except FaceGuardError as error:
                    self.failures += 1
                    retry_at = time.monotonic() + self.delay()
                    log.debug("sync round failed (%d in a row): %s", self.failures, error)
                except Exception:  # a bug must not kill the loop silently
                    self.failures += 1
                    retry_at = time.monotonic() + self.delay()
                    log.exception("sync round failed")
                self.rounds += 1
                shown = self._report()
            elif pending != shown:  # entries logged meanwhile: the count on screen follows
                shown = self._report()
            self._wake.wait(self.poll_s)

    def _report(self) -> int | None:
        if self.on_status is None:
            return None
        try:
            status = fleet_status(self.engine.library, self.data_dir)
        except FaceGuardError as error:
            log.debug("status not read: %s", error)
            return None
        self.on_status(status)
        return status.waiting

    def _listen(self) -> None:
        """Hold a LISTEN connection; each notification wakes the sync thread."""
        failures = 0
        while not self._stop.is_set():
            try:
                conn = self.engine.listen_connection()
            except ServerError:
                failures += 1
                self._stop.wait(min(self.backoff_s[0] * 2 ** (failures - 1), self.backoff_s[1]))
                continue
            failures = 0
            self._server_back.set()  # reconnected: sync now, whatever the back-off
            self._changed.set()  # and take what was missed
            self.wake()
            try:
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=1.0):
                        # other doors' entries come with the next full round; people,
                        # templates and rules at once
                        if note.payload != "events":
                            self._changed.set()
                            self.wake()
            except Exception as error:  # the server went away: reconnect with back-off
                log.debug("fleet listener lost: %s", error)
            finally:
                try:
                    conn.close()
                except Exception:
                    log.debug("listener close failed", exc_info=True)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        self._listener.join(timeout_s)
        self.engine.close()
