"""One sync round between a kiosk's library and the fleet server: the push is in
:mod:`faceguard.fleet.upload`, the pull in :mod:`faceguard.fleet.download`, the thread that runs
rounds in :mod:`faceguard.fleet.sync_loop`.

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

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faceguard.errors import FaceGuardError
from faceguard.fleet import local
from faceguard.fleet.config import FleetConfig, load_config, read_password
from faceguard.fleet.download import pull_changes
from faceguard.fleet.server_migrations import NOTIFY_CHANNEL, SCHEMA
from faceguard.fleet.server_schema import ServerError, check_schema, describe
from faceguard.fleet.status import SyncReport
from faceguard.fleet.upload import push_changes
from faceguard.library.database import FaceLibrary

log = logging.getLogger(__name__)
# The pool retries connections itself and logs every refusal; the sync loop reports outages
# once, in its own words.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

BATCH = 500
STATEMENT_TIMEOUT_MS = 30_000


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
                    push_changes(conn, self.library, self.config.kiosk_id, self.batch, report)
                    if download:
                        pull_changes(conn, self.library, self.config.kiosk_id, report)
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









