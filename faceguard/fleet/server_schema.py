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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from faceguard.errors import FaceGuardError

SCHEMA = "faceguard"
KIOSK_GROUP = "faceguard_kiosk"
NOTIFY_CHANNEL = "faceguard_changes"
_MIGRATION_LOCK = 7_201_300
REVISION_LOCK = 7_201_301

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ServerError(FaceGuardError):
    """The fleet server cannot be reached, is not a FaceGuard server, or refused a change."""


# ---------------------------------------------------------------------------------------------
# Migrations (append only)
# ---------------------------------------------------------------------------------------------

_M001_CORE = f"""
CREATE SEQUENCE revision_seq;

CREATE FUNCTION take_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({REVISION_LOCK});
    NEW.revision := nextval('{SCHEMA}.revision_seq');
    RETURN NEW;
END $$;

CREATE FUNCTION notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE FUNCTION keep_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.deleted THEN
        RETURN NULL;  -- a removal is final: later edits are ignored
    END IF;
    NEW.updated := now();
    RETURN NEW;
END $$;

CREATE TABLE kiosks (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    role_name text NOT NULL UNIQUE,
    joined timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz,
    last_upload timestamptz,
    software text
);

CREATE TABLE people (
    uid uuid PRIMARY KEY,
    name text,
    employee_id text,
    department text,
    active boolean NOT NULL DEFAULT true,
    valid_from timestamptz,
    valid_until timestamptz,
    disabled boolean NOT NULL DEFAULT false,
    created timestamptz NOT NULL DEFAULT now(),
    deleted boolean NOT NULL DEFAULT false,
    erased boolean NOT NULL DEFAULT false,
    revision bigint NOT NULL,
    updated timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT current_user,
    CHECK (deleted OR name IS NOT NULL)
);
CREATE INDEX people_revision ON people (revision);

CREATE TABLE templates (
    uid uuid PRIMARY KEY,
    person_uid uuid NOT NULL REFERENCES people (uid),
    embedding bytea,
    dim integer,
    model_id text,
    quality real,
    crop_jpeg bytea,
    source text,
    content_sha256 text,
    created timestamptz NOT NULL DEFAULT now(),
    deleted boolean NOT NULL DEFAULT false,
    revision bigint NOT NULL,
    updated timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT current_user,
    CHECK (deleted OR (embedding IS NOT NULL AND dim > 0 AND length(embedding) = 4 * dim
                       AND model_id IS NOT NULL))
);
CREATE INDEX templates_revision ON templates (revision);
CREATE INDEX templates_person ON templates (person_uid);

CREATE TABLE access_groups (
    uid uuid PRIMARY KEY,
    name text,
    windows jsonb NOT NULL DEFAULT '[]',
    members uuid[] NOT NULL DEFAULT '{{}}',
    deleted boolean NOT NULL DEFAULT false,
    revision bigint NOT NULL,
    updated timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT current_user,
    CHECK (deleted OR name IS NOT NULL)
);
CREATE INDEX access_groups_revision ON access_groups (revision);

CREATE TABLE holidays (
    day date PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    deleted boolean NOT NULL DEFAULT false,
    revision bigint NOT NULL,
    updated timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT current_user
);
CREATE INDEX holidays_revision ON holidays (revision);

CREATE TABLE events (
    kiosk_id uuid NOT NULL REFERENCES kiosks (id),
    seq bigint NOT NULL CHECK (seq > 0),
    timestamp timestamptz NOT NULL,
    kiosk_name text NOT NULL,
    person_uid uuid,
    person_name text,
    similarity real,
    decision text NOT NULL,
    liveness real,
    details jsonb NOT NULL DEFAULT '{{}}',
    received timestamptz NOT NULL DEFAULT now(),
    revision bigint NOT NULL,
    PRIMARY KEY (kiosk_id, seq)
);
CREATE INDEX events_revision ON events (revision);
CREATE INDEX events_timestamp ON events (timestamp);
CREATE INDEX events_person ON events (person_uid);

CREATE TABLE audit (
    kiosk_id uuid NOT NULL REFERENCES kiosks (id),
    seq bigint NOT NULL CHECK (seq > 0),
    timestamp timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    details text NOT NULL DEFAULT '',
    received timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kiosk_id, seq)
);

CREATE TRIGGER people_revision BEFORE INSERT OR UPDATE ON people
    FOR EACH ROW EXECUTE FUNCTION take_revision();
CREATE TRIGGER templates_revision BEFORE INSERT OR UPDATE ON templates
    FOR EACH ROW EXECUTE FUNCTION take_revision();
CREATE TRIGGER access_groups_revision BEFORE INSERT OR UPDATE ON access_groups
    FOR EACH ROW EXECUTE FUNCTION take_revision();
CREATE TRIGGER holidays_revision BEFORE INSERT OR UPDATE ON holidays
    FOR EACH ROW EXECUTE FUNCTION take_revision();
CREATE TRIGGER events_revision BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION take_revision();

CREATE TRIGGER people_tombstone BEFORE UPDATE ON people
    FOR EACH ROW EXECUTE FUNCTION keep_tombstone();
CREATE TRIGGER templates_tombstone BEFORE UPDATE ON templates
    FOR EACH ROW EXECUTE FUNCTION keep_tombstone();
CREATE TRIGGER access_groups_tombstone BEFORE UPDATE ON access_groups
    FOR EACH ROW EXECUTE FUNCTION keep_tombstone();

CREATE FUNCTION refuse_orphan_template() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM {SCHEMA}.people WHERE uid = NEW.person_uid AND deleted) THEN
        RETURN NULL;  -- the person was removed meanwhile: the template is not kept
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER templates_orphan BEFORE INSERT ON templates
    FOR EACH ROW EXECUTE FUNCTION refuse_orphan_template();

CREATE TRIGGER people_notify AFTER INSERT OR UPDATE ON people
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change();
CREATE TRIGGER templates_notify AFTER INSERT OR UPDATE ON templates
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change();
CREATE TRIGGER access_groups_notify AFTER INSERT OR UPDATE ON access_groups
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change();
CREATE TRIGGER holidays_notify AFTER INSERT OR UPDATE ON holidays
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change();
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change();

-- A removal or an erasure, as one change: the person and their templates become tombstones
-- with their personal data cleared; an erasure also takes the name off the person's events.
CREATE FUNCTION remove_person(person uuid, erase boolean) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {SCHEMA}, pg_temp AS $$
DECLARE
    changed integer;
BEGIN
    INSERT INTO people (uid, name, deleted, revision) VALUES (person, NULL, true, 0)
        ON CONFLICT (uid) DO NOTHING;
    UPDATE people SET deleted = true, erased = erase, name = NULL, employee_id = NULL,
        department = NULL, updated_by = session_user
        WHERE uid = person AND NOT deleted;
    GET DIAGNOSTICS changed = ROW_COUNT;
    UPDATE templates SET deleted = true, embedding = NULL, crop_jpeg = NULL, source = NULL,
        content_sha256 = NULL, updated_by = session_user
        WHERE person_uid = person AND NOT deleted;
    IF erase THEN
        UPDATE events SET person_name = NULL, details = details - 'crop' WHERE person_uid = person;
    END IF;
    RETURN changed > 0;
END $$;

-- The kiosk id of the logged-in kiosk role (row-level security below).
CREATE FUNCTION current_kiosk() RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = {SCHEMA}, pg_temp AS $$
    SELECT id FROM kiosks WHERE role_name = session_user
$$;

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_read ON events FOR SELECT USING (true);
CREATE POLICY events_own ON events FOR INSERT WITH CHECK (kiosk_id = current_kiosk());
ALTER TABLE audit ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_own ON audit FOR INSERT WITH CHECK (kiosk_id = current_kiosk());
CREATE POLICY audit_read ON audit FOR SELECT USING (kiosk_id = current_kiosk());
ALTER TABLE kiosks ENABLE ROW LEVEL SECURITY;
CREATE POLICY kiosks_read ON kiosks FOR SELECT USING (true);
CREATE POLICY kiosks_own ON kiosks FOR UPDATE USING (role_name = session_user);
"""

_GRANTS = f"""
REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC;
GRANT USAGE ON SCHEMA {SCHEMA} TO {KIOSK_GROUP};
GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {KIOSK_GROUP};
GRANT INSERT, UPDATE ON people, templates, access_groups, holidays TO {KIOSK_GROUP};
GRANT INSERT ON events, audit TO {KIOSK_GROUP};
GRANT UPDATE (last_seen, last_upload, software) ON kiosks TO {KIOSK_GROUP};
GRANT USAGE, SELECT ON SEQUENCE revision_seq TO {KIOSK_GROUP};
REVOKE ALL ON FUNCTION remove_person(uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remove_person(uuid, boolean) TO {KIOSK_GROUP};
"""

# An erasure: the tombstone carries the pseudonym the erasing kiosk chose, so every kiosk
# pseudonymises the person's past events the same way; on the server the events take the
# pseudonym and the audit lines lose the name and employee id.
_M002_ERASURE = f"""
ALTER TABLE people ADD COLUMN pseudonym text;

CREATE FUNCTION erase_person(person uuid, alias text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {SCHEMA}, pg_temp AS $$
DECLARE
    old_name text;
    old_employee text;
BEGIN
    SELECT name, employee_id INTO old_name, old_employee FROM people WHERE uid = person;
    INSERT INTO people (uid, name, deleted, erased, pseudonym, revision)
        VALUES (person, NULL, true, true, alias, 0) ON CONFLICT (uid) DO NOTHING;
    UPDATE people SET deleted = true, erased = true, pseudonym = alias, name = NULL,
        employee_id = NULL, department = NULL, updated_by = session_user
        WHERE uid = person AND NOT deleted;
    UPDATE templates SET deleted = true, embedding = NULL, crop_jpeg = NULL, source = NULL,
        content_sha256 = NULL, updated_by = session_user
        WHERE person_uid = person AND NOT deleted;
    UPDATE events SET person_name = alias, details = details - 'crop' WHERE person_uid = person;
    IF old_name IS NOT NULL THEN
        UPDATE audit SET details = replace(details, old_name, alias)
            WHERE strpos(details, old_name) > 0;
    END IF;
    IF old_employee IS NOT NULL THEN
        UPDATE audit SET details = replace(details, old_employee, alias)
            WHERE strpos(details, old_employee) > 0;
    END IF;
    RETURN old_name IS NOT NULL;
END $$;

REVOKE ALL ON FUNCTION erase_person(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION erase_person(uuid, text) TO {KIOSK_GROUP};
GRANT SELECT (pseudonym) ON people TO {KIOSK_GROUP};
"""

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "001_core", _M001_CORE + _GRANTS),
    (2, "002_erasure", _M002_ERASURE),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


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
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
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
