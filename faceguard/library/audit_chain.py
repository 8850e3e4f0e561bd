"""The tamper-evident audit trail: every audit row carries a hash over its content and the
previous row's hash, so an edited, deleted or reordered row is found by :func:`verify`.

- ``row_hash = SHA-256(JSON [prev_hash, id, timestamp, actor, action, details])`` (hex).
  The first row's ``prev_hash`` is the anchor: :data:`GENESIS` (64 zeros) until a purge
  deletes the oldest rows, then the hash of the last row deleted.
- One row, ``audit_chain`` (``id = 1``), keeps the anchor (``anchor_id``, ``anchor_hash``:
  the last purged row) and the head (``head_id``, ``head_hash``: the newest row), so that
  deleting the newest rows is found too.
- The hashes are filled in by an ``AFTER INSERT`` trigger that calls the SQL function
  ``fg_audit_hash`` (registered on every library connection by :func:`register`): whatever
  module writes an audit row, it is chained in the same transaction. A plain ``sqlite3``
  connection without the function cannot add audit rows.
- Rows are changed on purpose in two places, both inside their own transaction:
  :func:`purge_prefix` (retention: the oldest rows go, the anchor moves) and
  :func:`rechain` (erasure: a person's name is replaced by a pseudonym in old details, and
  the chain is recomputed from the first row changed; the ``erase_person`` entry says so).

A hash chain inside the file proves that nobody who did not recompute the chain changed it.
Someone who can write the file and recompute every hash can rewrite history; the head hash
printed by ``faceguard audit verify`` can be noted elsewhere and checked later with
``--expect HASH``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64
Execute = Callable[..., Any]  # ``execute`` of an sqlite3 connection or a sqlite-utils Database
HASH_FUNCTION = "fg_audit_hash"

_TRIGGER = f"""
CREATE TRIGGER audit_chain_insert AFTER INSERT ON audit
BEGIN
    UPDATE audit SET prev_hash = (SELECT head_hash FROM audit_chain WHERE id = 1),
        row_hash = {HASH_FUNCTION}((SELECT head_hash FROM audit_chain WHERE id = 1),
                                   NEW.id, NEW.timestamp, NEW.actor, NEW.action, NEW.details)
    WHERE id = NEW.id;
    UPDATE audit_chain SET head_id = NEW.id,
        head_hash = (SELECT row_hash FROM audit WHERE id = NEW.id) WHERE id = 1;
END
"""


def row_hash(prev_hash: str | None, row_id: int, timestamp: str, actor: str, action: str,
             details: str) -> str:
    """The hash of one audit row chained to the previous one (hex SHA-256)."""
    payload = json.dumps([prev_hash or GENESIS, int(row_id), timestamp, actor, action,
                          details], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def register(conn: sqlite3.Connection) -> None:
    """Make ``fg_audit_hash`` available on a connection (the insert trigger calls it)."""
    conn.create_function(HASH_FUNCTION, 6, row_hash, deterministic=True)


def install(execute: Execute) -> None:
    """Migration step: hash columns, the chain row, the trigger; chain the existing rows.

    ``execute`` is ``execute`` of an sqlite3 connection or a sqlite-utils Database, on which
    ``fg_audit_hash`` is registered.
    """
    execute("ALTER TABLE audit ADD COLUMN prev_hash TEXT")
    execute("ALTER TABLE audit ADD COLUMN row_hash TEXT")
    execute("CREATE TABLE audit_chain (id INTEGER PRIMARY KEY CHECK (id = 1), anchor_id INTEGER "
            "NOT NULL DEFAULT 0, anchor_hash TEXT NOT NULL, head_id INTEGER NOT NULL DEFAULT 0, "
            "head_hash TEXT NOT NULL)")
    execute("INSERT INTO audit_chain (id, anchor_hash, head_hash) VALUES (1, ?, ?)",
            (GENESIS, GENESIS))
    _chain_from(execute, 0, GENESIS)
    execute(_TRIGGER)


def _chain_from(run: Execute, after_id: int, prev: str) -> int:
    """Recompute the hashes of every row with id > ``after_id`` and move the head there;
    returns the rows rehashed."""
    rows = run(
        "SELECT id, timestamp, actor, action, details FROM audit WHERE id > ? ORDER BY id",
        (after_id,)).fetchall()
    head_id, head = after_id, prev
    for row_id, stamp, actor, action, details in rows:
        digest = row_hash(head, row_id, stamp, actor, action, details)
        run("UPDATE audit SET prev_hash = ?, row_hash = ? WHERE id = ?", (head, digest, row_id))
        head_id, head = int(row_id), digest
    if rows:
        run("UPDATE audit_chain SET head_id = ?, head_hash = ? WHERE id = 1", (head_id, head))
    return len(rows)


def rechain(conn: sqlite3.Connection, from_id: int) -> int:
    """Recompute the chain from row ``from_id`` on (inside the caller's transaction), after
    rows were changed on purpose (erasure). Returns the rows rehashed."""
    before = conn.execute("SELECT row_hash FROM audit WHERE id < ? ORDER BY id DESC LIMIT 1",
                          (from_id,)).fetchone()
    if before is None:
        anchor = conn.execute("SELECT anchor_hash FROM audit_chain WHERE id = 1").fetchone()
        prev = anchor[0] if anchor else GENESIS
        start = conn.execute("SELECT anchor_id FROM audit_chain WHERE id = 1").fetchone()
        after = int(start[0]) if start else 0
    else:
        prev = str(before[0])
        after = int(conn.execute("SELECT max(id) FROM audit WHERE id < ?",
                                 (from_id,)).fetchone()[0])
    return _chain_from(conn.execute, after, prev)


def purge_prefix(conn: sqlite3.Connection, cutoff: str) -> int:
    """Delete the oldest audit rows, those before the first row at or after ``cutoff`` (so
    that what remains is an unbroken chain), and anchor the chain at the last one deleted.
    Inside the caller's transaction; returns the rows deleted."""
    first_kept = conn.execute("SELECT min(id) FROM audit WHERE NOT timestamp < ?",
                              (cutoff,)).fetchone()[0]
    if first_kept is None:  # every row is older than the cutoff
        last = conn.execute("SELECT id, row_hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    else:
        last = conn.execute("SELECT id, row_hash FROM audit WHERE id < ? ORDER BY id DESC "
                            "LIMIT 1", (first_kept,)).fetchone()
    if last is None:
        return 0
    last_id, last_hash = int(last[0]), str(last[1])
    deleted = conn.execute("DELETE FROM audit WHERE id <= ?", (last_id,)).rowcount
    conn.execute("UPDATE audit_chain SET anchor_id = ?, anchor_hash = ? WHERE id = 1",
                 (last_id, last_hash))
    return int(deleted)


def count_purgeable(conn: sqlite3.Connection, cutoff: str) -> int:
    """How many rows :func:`purge_prefix` would delete."""
    first_kept = conn.execute("SELECT min(id) FROM audit WHERE NOT timestamp < ?",
                              (cutoff,)).fetchone()[0]
    if first_kept is None:
        return int(conn.execute("SELECT count(*) FROM audit").fetchone()[0])
    return int(conn.execute("SELECT count(*) FROM audit WHERE id < ?",
                            (first_kept,)).fetchone()[0])


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify` found: ``problems`` is empty when the chain is whole."""

    rows: int
    head_hash: str
    anchor_id: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row was edited, deleted, inserted or moved."""
        return not self.problems


def verify(conn: sqlite3.Connection, *, expect_head: str | None = None,
           max_problems: int = 20) -> ChainReport:
    """Walk the chain from the anchor to the head and name every break.

    An edited row no longer matches its own hash; a deleted, inserted or moved row breaks
    the link to the row before; deleted newest rows leave the head pointing past the end.
    ``expect_head`` (a head hash noted earlier) also finds a chain recomputed since then
    that no longer contains that head.
    """
    chain = conn.execute("SELECT anchor_id, anchor_hash, head_id, head_hash FROM audit_chain "
                         "WHERE id = 1").fetchone()
    problems: list[str] = []
    if chain is None:
        return ChainReport(0, GENESIS, 0, ["the audit chain record (audit_chain) is missing"])
    anchor_id, anchor_hash, head_id, head_hash = int(chain[0]), str(chain[1]), int(chain[2]), \
        str(chain[3])
    prev, prev_id = anchor_hash, anchor_id
    seen: set[str] = set()
    count = 0
    for row_id, stamp, actor, action, details, stored_prev, stored_hash in conn.execute(
            "SELECT id, timestamp, actor, action, details, prev_hash, row_hash FROM audit "
            "ORDER BY id"):
        count += 1
        if row_id <= anchor_id:
            problems.append(f"audit row {row_id} is older than the last purge (row "
                            f"{anchor_id}): it was added afterwards")
        elif stored_prev != prev:
            what = "the first row after the last purge" if prev_id == anchor_id else \
                f"row {prev_id}"
            problems.append(f"audit row {row_id} does not follow {what}: a row between them was "
                            "deleted, inserted or moved")
        if stored_hash != row_hash(stored_prev, row_id, stamp, actor, action, details):
            problems.append(f"audit row {row_id} ({action} by {actor}) was edited or moved: "
                            "its content does not match its hash")
        seen.add(str(stored_hash))
        prev, prev_id = str(stored_hash), int(row_id)
        if len(problems) >= max_problems:
            break
    else:
        if prev_id != head_id or prev != head_hash:
            if head_id > prev_id:
                problems.append(f"the newest audit rows are missing (the chain ends at row "
                                f"{prev_id}, its head is row {head_id})")
            else:
                problems.append(f"the audit chain's head (row {head_id}) does not match its "
                                f"last row ({prev_id})")
    if expect_head is not None and expect_head != prev and expect_head not in seen \
            and expect_head != anchor_hash:
        problems.append("the head hash noted earlier is not in the chain: the audit log was "
                        "rewritten since then")
    return ChainReport(count, prev, anchor_id, problems)
