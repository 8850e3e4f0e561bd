"""The admin audit trail and the admin credential (PIN hash, lock-out)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from faceguard.library.records import AdminState, AuditEntry, from_db_time, to_db_time, utc_now
from faceguard.library.store import LibraryStore


class AuditStore(LibraryStore):
    """The admin audit trail and the admin credential (PIN hash, lock-out)."""

    def _audit_in_tx(self, actor: str | None, action: str, details: Any) -> None:
        if actor is None:
            return
        text = details if isinstance(details, str) else json.dumps(details, sort_keys=True)
        self._db.execute(
            "INSERT INTO audit (timestamp, actor, action, details) VALUES (?, ?, ?, ?)",
            (to_db_time(utc_now()), actor, action, text),
        )


    # -- audit ---------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, details: str | dict[str, Any] = "") -> AuditEntry:
        """Record an admin action (details as text or a JSON-serialisable dict)."""
        if not actor or not action:
            raise ValueError("actor and action must be non-empty")
        text = details if isinstance(details, str) else json.dumps(details, sort_keys=True)
        stamp = to_db_time(utc_now())
        with self._write("writing the audit log"):
            entry_id = self._insert(
                "INSERT INTO audit (timestamp, actor, action, details) VALUES (?, ?, ?, ?)",
                (stamp, actor, action, text),
            )
        return AuditEntry(entry_id, from_db_time(stamp), actor, action, text)

    def list_audit(
        self, limit: int | None = None, offset: int = 0, *, newest_first: bool = True
    ) -> list[AuditEntry]:
        """Audit entries, newest first by default."""
        direction = "DESC" if newest_first else "ASC"
        with self._read("reading the audit log"):
            rows = self._conn.execute(
                "SELECT id, timestamp, actor, action, details FROM audit "
                f"ORDER BY timestamp {direction}, id {direction} LIMIT ? OFFSET ?",
                (-1 if limit is None else int(limit), int(offset)),
            ).fetchall()
        return [AuditEntry(r[0], from_db_time(r[1]), r[2], r[3], r[4]) for r in rows]

    # -- admin credential ----------------------------------------------------------------------

    def admin_state(self) -> AdminState:
        """The admin PIN hash and lock-out state stored in the library."""
        with self._read("reading the admin state"):
            row = self._conn.execute(
                "SELECT pin_hash, protected, failures, locked_until FROM admin WHERE id = 1"
            ).fetchone()
        if row is None:  # the row was deleted by hand: the library was protected
            return AdminState(protected=True)
        until = None if row[3] is None else from_db_time(row[3])
        return AdminState(row[0], bool(row[1]), int(row[2]), until)

    def set_admin_lock(self, failures: int, locked_until: datetime | None) -> None:
        """Record wrong PIN tries in a row and the end of a lock (None: not locked)."""
        until = None if locked_until is None else to_db_time(locked_until)
        with self._write("recording the admin lock-out"):
            self._db.execute(
                "UPDATE admin SET failures = ?, locked_until = ?, updated = ? WHERE id = 1",
                (max(0, int(failures)), until, to_db_time(utc_now())),
            )

    def set_admin_pin(
        self, pin_hash: str, *, actor: str | None, action: str = "set_pin", details: Any = ""
    ) -> None:
        """Store the admin PIN hash (clearing any lock-out), audited as ``action``."""
        if not isinstance(pin_hash, str) or not pin_hash:
            raise ValueError("pin_hash must be a non-empty string")
        now = to_db_time(utc_now())
        with self._write("storing the admin PIN"):
            self._db.execute(
                "INSERT INTO admin (id, pin_hash, protected, failures, locked_until, updated) "
                "VALUES (1, ?, 1, 0, NULL, ?) ON CONFLICT (id) DO UPDATE SET "
                "pin_hash = excluded.pin_hash, protected = 1, failures = 0, "
                "locked_until = NULL, updated = excluded.updated",
                (pin_hash, now),
            )
            self._audit_in_tx(actor, action, details)

