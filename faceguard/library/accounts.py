"""Admin accounts in the face library (table ``admin_accounts``, migration ``011_privacy``).

Each account has a name (unique without regard to case), a role (``administrator``,
``manager``, ``viewer``), its own salted scrypt PIN hash (:mod:`faceguard.core.pin`) and its
own lock-out (wrong tries in a row, the lock's end), so a restart lifts no lock. Every change
is one transaction with its audit entry, written under the name of the account (or ``cli``)
that made it. The last administrator cannot be removed or demoted.

The old single PIN (table ``admin``, migration 006) became the administrator account
``admin`` at migration 011; the ``admin`` row still says whether the library was ever
protected (a library that was, and has no account left, needs recovery, not a first run).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faceguard.errors import LibraryError
from faceguard.library.database import FaceLibrary, name_key, utc_now
from faceguard.library.records import normalised_label

ROLES = ("administrator", "manager", "viewer")
FIRST_ACCOUNT = "admin"
MAX_ACCOUNT_NAME = 64

_SCHEMA = (
    "CREATE TABLE admin_accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    "name_key TEXT NOT NULL UNIQUE, role TEXT NOT NULL CHECK (role IN ('administrator', "
    "'manager', 'viewer')), pin_hash TEXT NOT NULL, failures INTEGER NOT NULL DEFAULT 0 "
    "CHECK (failures >= 0), locked_until TEXT, created TEXT NOT NULL, updated TEXT NOT NULL)",
)


def install(execute: Any) -> None:
    """Migration step: the accounts table; the single PIN becomes the account ``admin``."""
    for sql in _SCHEMA:
        execute(sql)
    execute(
        "INSERT INTO admin_accounts (name, name_key, role, pin_hash, failures, locked_until, "
        "created, updated) SELECT ?, ?, 'administrator', pin_hash, failures, locked_until, "
        "updated, updated FROM admin WHERE id = 1 AND pin_hash IS NOT NULL",
        (FIRST_ACCOUNT, name_key(FIRST_ACCOUNT)))


@dataclass(frozen=True)
class Account:
    """One admin account (the hash is left out of its repr)."""

    id: int
    name: str
    role: str
    pin_hash: str = field(repr=False)
    failures: int
    locked_until: datetime | None
    created: datetime


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def clean_account_name(name: str) -> str:
    """The account name as stored (LibraryError when it is empty, too long or hidden)."""
    cleaned = normalised_label(name, "An account name", MAX_ACCOUNT_NAME)
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in cleaned):
        raise LibraryError("An account name must not contain control or invisible characters.")
    return cleaned


def check_role(role: str) -> str:
    """The role, or LibraryError naming the roles there are."""
    if role not in ROLES:
        raise LibraryError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


_COLUMNS = "id, name, role, pin_hash, failures, locked_until, created"


def _account(row: Any) -> Account:
    until = None if row[5] is None else datetime.fromisoformat(row[5])
    return Account(int(row[0]), str(row[1]), str(row[2]), str(row[3]), int(row[4]), until,
                   datetime.fromisoformat(row[6]))


def list_accounts(library: FaceLibrary) -> list[Account]:
    """Every account, by name."""
    with library.reading("reading the admin accounts") as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM admin_accounts ORDER BY name_key")
        return [_account(r) for r in rows.fetchall()]


def find_account(library: FaceLibrary, name: str) -> Account | None:
    """The account with this name (without regard to case), or None."""
    with library.reading("reading an admin account") as conn:
        row = conn.execute(f"SELECT {_COLUMNS} FROM admin_accounts WHERE name_key = ?",
                           (name_key(name),)).fetchone()
    return None if row is None else _account(row)


def _administrators(conn: Any) -> int:
    return int(conn.execute("SELECT count(*) FROM admin_accounts WHERE role = "
                            "'administrator'").fetchone()[0])


def add_account(library: FaceLibrary, name: str, role: str, pin_hash: str, *,
                actor: str) -> Account:
    """Add an account (LibraryError when the name is taken). Audited as ``account_added``."""
    clean = clean_account_name(name)
    check_role(role)
    now = _stamp(utc_now())
    with library.upkeep("adding an admin account") as conn:
        taken = conn.execute("SELECT name FROM admin_accounts WHERE name_key = ?",
                             (name_key(clean),)).fetchone()
        if taken is not None:
            raise LibraryError(f"there is already an admin account named {taken[0]!r}")
        conn.execute("INSERT INTO admin_accounts (name, name_key, role, pin_hash, created, "
                     "updated) VALUES (?, ?, ?, ?, ?, ?)",
                     (clean, name_key(clean), role, pin_hash, now, now))
        conn.execute("UPDATE admin SET protected = 1, updated = ? WHERE id = 1", (now,))
        library.audit(actor, "account_added", {"account": clean, "role": role})
    account = find_account(library, clean)
    assert account is not None
    return account


def _existing(conn: Any, name: str) -> tuple[int, str, str]:
    row = conn.execute("SELECT id, name, role FROM admin_accounts WHERE name_key = ?",
                       (name_key(name),)).fetchone()
    if row is None:
        raise LibraryError(f"there is no admin account named {name!r}")
    return int(row[0]), str(row[1]), str(row[2])


def remove_account(library: FaceLibrary, name: str, *, actor: str) -> None:
    """Delete an account; the last administrator is kept. Audited as ``account_removed``."""
    with library.upkeep("removing an admin account") as conn:
        account_id, clean, role = _existing(conn, name)
        if role == "administrator" and _administrators(conn) == 1:
            raise LibraryError(f"{clean} is the last administrator account; add another "
                               "administrator first")
        conn.execute("DELETE FROM admin_accounts WHERE id = ?", (account_id,))
        library.audit(actor, "account_removed", {"account": clean, "role": role})


def set_role(library: FaceLibrary, name: str, role: str, *, actor: str) -> None:
    """Change an account's role (the last administrator stays one). Audited."""
    check_role(role)
    with library.upkeep("changing an admin account's role") as conn:
        account_id, clean, old = _existing(conn, name)
        if old == "administrator" and role != old and _administrators(conn) == 1:
            raise LibraryError(f"{clean} is the last administrator account; add another "
                               "administrator first")
        conn.execute("UPDATE admin_accounts SET role = ?, updated = ? WHERE id = ?",
                     (role, _stamp(utc_now()), account_id))
        library.audit(actor, "account_role_changed", {"account": clean, "from": old,
                                                      "to": role})


def set_pin_hash(library: FaceLibrary, name: str, pin_hash: str, *, actor: str | None,
                 action: str = "account_pin_changed", details: dict[str, Any] | None = None
                 ) -> None:
    """Store a new PIN hash for an account and lift its lock-out. Audited as ``action``
    (``actor`` None: not audited, for a re-hash after a good try)."""
    with library.upkeep("storing an admin PIN") as conn:
        account_id, clean, _ = _existing(conn, name)
        conn.execute("UPDATE admin_accounts SET pin_hash = ?, failures = 0, locked_until = "
                     "NULL, updated = ? WHERE id = ?", (pin_hash, _stamp(utc_now()),
                                                        account_id))
        if actor is not None:
            library.audit(actor, action, {"account": clean, **(details or {})})


def set_lock(library: FaceLibrary, name: str, failures: int,
             locked_until: datetime | None) -> None:
    """Record an account's wrong tries in a row and the end of its lock (None: none)."""
    until = None if locked_until is None else _stamp(locked_until)
    with library.upkeep("recording an admin lock-out") as conn:
        conn.execute("UPDATE admin_accounts SET failures = ?, locked_until = ?, updated = ? "
                     "WHERE name_key = ?", (max(0, int(failures)), until, _stamp(utc_now()),
                                            name_key(name)))


def was_protected(library: FaceLibrary) -> bool:
    """Whether a PIN ever guarded this library (then a missing account needs recovery)."""
    return library.admin_state().protected
