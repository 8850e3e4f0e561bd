"""The central PostgreSQL database: tables, migrations and the kiosks' least-privilege role.

Everything lives in the schema ``faceguard``. ``schema_migrations`` records each numbered step
(append only; never edit an applied one); :func:`init_server` applies the pending ones in one
transaction under an advisory lock, so two admins running ``server init`` at once cannot
interleave, and a failure changes nothing.

**Revisions.** Every change to people, templates, access groups, holidays and events takes the
next number of one sequence, ``revision_seq``, in a ``BEFORE`` trigger that first takes a
transaction-level advisory lock. Writers therefore get their revisions in commit order: once a
kiosk has seen revision r, every change numbered below r is committed and visible, so "give
me everything above my cursor" never skips a change that was still in flight. Each changing
statement also sends ``NOTIFY faceguard_changes`` (delivered at commit), which kiosks listen
for.

**Tombstones.** Nothing a kiosk must forget is deleted: a removed person (or template, group,
holiday) keeps its row with ``deleted = true``, its personal data cleared and a new revision,
so the removal reaches every kiosk as a change. A tombstone is final: updates to it are
ignored (a late edit from an offline kiosk does not bring the person back) and templates for
a removed person are refused.

**Roles.** ``faceguard_kiosk`` (NOLOGIN) holds what a kiosk may do: read people, templates,
rules and events; add and edit people, templates and rules; add (never change) events and
audit rows, only under its own kiosk id (row-level security); mark a person removed or erased
through :func:`remove_person` (SECURITY DEFINER), nothing else. No DDL, no DELETE, no
superuser. Each kiosk logs in as its own role, a member of it, created at join.

The SQL of each step is in :mod:`faceguard.fleet.server_migrations`; this module connects,
applies and checks them, and reports the server's state.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from faceguard.errors import FaceGuardError
from faceguard.fleet.server_migrations import (
    KIOSK_GROUP,
    MIGRATION_LOCK,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
)

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ServerError(FaceGuardError):
    """The fleet server cannot be reached, is not a FaceGuard server, or refused a change."""


# ---------------------------------------------------------------------------------------------
# Connecting and initialising
# ---------------------------------------------------------------------------------------------


def connect(conninfo: str, *, autocommit: bool = False, connect_timeout: float = 5.0,
            **kwargs: Any) -> Any:
    """A psycopg connection with the ``faceguard`` schema first on the search path.

    ServerError (one line, no password) when the server cannot be reached or refuses us."""
    import psycopg

    try:
        conn = psycopg.connect(conninfo, autocommit=autocommit,
                               connect_timeout=max(1, round(connect_timeout)),
                               options=f"-c search_path={SCHEMA},public", **kwargs)
    except psycopg.Error as error:
        raise ServerError(f"cannot connect to the fleet server: {describe(error)}") from error
    return conn


def describe(error: BaseException) -> str:
    """One line for a database error, without the connection string (no secret leaks)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return re.sub(r"password=\S+|://[^@\s]*@", "***", text)[:300]


def _kiosk_group_sql() -> str:
    return (f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
            f"'{KIOSK_GROUP}') THEN CREATE ROLE {KIOSK_GROUP} NOLOGIN NOSUPERUSER "
            "NOCREATEDB NOCREATEROLE NOINHERIT; END IF; END $$")


def applied_versions(conn: Any) -> list[int]:
    """Versions recorded in ``schema_migrations`` (empty for a server not yet initialised)."""
    row = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.schema_migrations",)).fetchone()
    if row is None or row[0] is None:
        return []
    return [int(r[0]) for r in conn.execute(
        f"SELECT version FROM {SCHEMA}.schema_migrations ORDER BY version")]


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_server` did."""

    applied: tuple[str, ...]
    version: int
    warnings: tuple[str, ...] = ()


def init_server(conninfo: str) -> InitResult:
    """Create or upgrade the FaceGuard schema (needs a role that may create schemas and roles).

    ServerError when the database was written by a newer FaceGuard or the role lacks rights.
    """
    import psycopg

    with connect(conninfo) as conn:
        try:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            done = applied_versions(conn)
            unknown = sorted(set(done) - {v for v, _, _ in MIGRATIONS})
            if unknown:
                raise ServerError(f"the fleet server's schema was written by a newer FaceGuard "
                                  f"(steps {unknown}); please update FaceGuard")
            conn.execute(_kiosk_group_sql())
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations (version "
                         "integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT "
                         "NULL DEFAULT now())")
            conn.execute(f"SET LOCAL search_path = {SCHEMA}, public")
            names = []
            for version, name, sql in MIGRATIONS:
                if version in done:
                    continue
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (version, name))
                names.append(name)
            database = conn.execute("SELECT current_database()").fetchone()[0]
            conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {KIOSK_GROUP}')
            warnings = []
            if conn.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')",
                            (KIOSK_GROUP,)).fetchone()[0]:  # PostgreSQL 14 and older
                warnings.append("kiosks may create tables in the schema public (every role "
                                "may, on this server); run `REVOKE CREATE ON SCHEMA public "
                                "FROM PUBLIC` if nothing else needs that")
            conn.commit()
        except psycopg.Error as error:
            conn.rollback()
            raise ServerError(f"cannot set up the fleet server: {describe(error)}") from error
    return InitResult(tuple(names), SCHEMA_VERSION, tuple(warnings))


def check_schema(conn: Any) -> None:
    """ServerError unless the server holds exactly the schema this FaceGuard knows."""
    done = applied_versions(conn)
    if not done:
        raise ServerError("the database is not a FaceGuard fleet server yet; run "
                          "`faceguard server init --dsn DSN` with an admin role")
    if max(done) > SCHEMA_VERSION:
        raise ServerError(f"the fleet server's schema (version {max(done)}) is newer than "
                          "this FaceGuard's; please update FaceGuard")
    if max(done) < SCHEMA_VERSION:
        raise ServerError(f"the fleet server's schema is at version {max(done)}, this "
                          f"FaceGuard needs {SCHEMA_VERSION}: run `faceguard server init`")


def server_status(conn: Any) -> dict[str, Any]:
    """Schema version, revision, counts and each kiosk's last contact (for ``server status``)."""
    check_schema(conn)
    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    kiosks: Sequence[Any] = conn.execute(
        "SELECT k.name, k.last_seen, k.last_upload, (SELECT count(*) FROM events e WHERE "
        "e.kiosk_id = k.id) FROM kiosks k ORDER BY k.name").fetchall()
    return {
        "schema_version": max(applied_versions(conn)),
        "revision": int(one("SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                                "FROM revision_seq")),
        "people": int(one("SELECT count(*) FROM people WHERE NOT deleted")),
        "templates": int(one("SELECT count(*) FROM templates WHERE NOT deleted")),
        "tombstones": int(one("SELECT count(*) FROM people WHERE deleted")),
        "events": int(one("SELECT count(*) FROM events")),
        "kiosks": [{"name": k[0], "last_seen": k[1] and k[1].isoformat(),
                    "last_upload": k[2] and k[2].isoformat(), "events": int(k[3])}
                   for k in kiosks],
    }


def role_name_for(kiosk_id: str) -> str:
    """The login role of a kiosk: ``faceguard_k_`` and its id's hex digits."""
    name = "faceguard_k_" + kiosk_id.replace("-", "")[:24]
    assert _ROLE_NAME.match(name)
    return name
