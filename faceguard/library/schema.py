"""The face library's schema: numbered migrations, applied in order when a library opens.

sqlite-utils' ``Migrations``, recorded in its ``_sqlite_migrations`` table under the set name
``faceguard``. Append new ones at the end (and to ``MIGRATION_NAMES``); never edit or reorder
applied ones.
"""

from __future__ import annotations

import logging

from sqlite_utils import Database, Migrations

from faceguard.library.records import name_key, to_db_time, utc_now

log = logging.getLogger("faceguard.library.database")

MIGRATIONS = Migrations("faceguard")


@MIGRATIONS(name="001_people")
def _m001_people(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            name_key TEXT NOT NULL,
            employee_id TEXT,
            department TEXT,
            active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            created TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX people_active_name ON people (name_key) WHERE active = 1")
    db.execute(
        "CREATE UNIQUE INDEX people_active_employee_id ON people (employee_id) "
        "WHERE active = 1 AND employee_id IS NOT NULL"
    )


@MIGRATIONS(name="002_templates")
def _m002_templates(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE templates (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people (id) ON DELETE CASCADE,
            embedding BLOB NOT NULL,
            dim INTEGER NOT NULL CHECK (dim > 0 AND length(embedding) = 4 * dim),
            model_id TEXT NOT NULL,
            quality REAL NOT NULL,
            crop_jpeg BLOB NOT NULL,
            source TEXT,
            created TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX templates_person ON templates (person_id)")
    db.execute("CREATE INDEX templates_model ON templates (model_id)")


@MIGRATIONS(name="003_events")
def _m003_events(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            timestamp TEXT NOT NULL,
            kiosk_id TEXT NOT NULL,
            person_id INTEGER REFERENCES people (id) ON DELETE SET NULL,
            person_name TEXT,
            similarity REAL,
            decision TEXT NOT NULL,
            crop_jpeg BLOB
        )
        """
    )
    db.execute("CREATE INDEX events_timestamp ON events (timestamp)")
    db.execute("CREATE INDEX events_person ON events (person_id, timestamp)")


@MIGRATIONS(name="004_audit")
def _m004_audit(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            timestamp TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX audit_timestamp ON audit (timestamp)")


@MIGRATIONS(name="005_identity")
def _m005_identity(db: Database) -> None:
    """Employee ids unique regardless of case; the photo file's SHA-256 on each template.

    A library that already holds two active people whose ids differ only in case keeps them
    (nothing is lost); the unique index is then left out and the write path still refuses new
    clashes.
    """
    db.table("people").add_column("employee_key", str)
    rows = db.execute("SELECT id, employee_id FROM people WHERE employee_id IS NOT NULL")
    for person_id, employee_id in rows.fetchall():
        db.execute("UPDATE people SET employee_key = ? WHERE id = ?",
                   (name_key(employee_id), person_id))
    clash = db.execute(
        "SELECT employee_key FROM people WHERE active = 1 AND employee_key IS NOT NULL "
        "GROUP BY employee_key HAVING count(*) > 1"
    ).fetchone()
    if clash is None:
        db.execute(
            "CREATE UNIQUE INDEX people_active_employee_key ON people (employee_key) "
            "WHERE active = 1 AND employee_key IS NOT NULL"
        )
    else:
        log.warning("Employee id %r is used by two active people; new clashes are refused.",
                    clash[0])
    db.table("templates").add_column("content_sha256", str)
    db.table("templates").create_index(["person_id", "content_sha256"],
                                 index_name="templates_content")


@MIGRATIONS(name="006_admin")
def _m006_admin(db: Database) -> None:
    """The admin credential and lock-out, one row (the PIN used to live in settings.json).

    ``protected`` is 1 once a PIN has guarded this library. A library that already held people
    or events when this step ran counts as protected (its PIN was in settings.json), so losing
    the credential asks for recovery instead of starting afresh.
    """
    db.execute(
        """
        CREATE TABLE admin (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pin_hash TEXT,
            protected INTEGER NOT NULL DEFAULT 0 CHECK (protected IN (0, 1)),
            failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
            locked_until TEXT,
            updated TEXT NOT NULL
        )
        """
    )
    db.execute(
        "INSERT INTO admin (id, protected, updated) VALUES (1, EXISTS (SELECT 1 FROM people) "
        "OR EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM audit WHERE action = "
        "'set_pin'), ?)",
        (to_db_time(utc_now()),),
    )


@MIGRATIONS(name="007_liveness")
def _m007_liveness(db: Database) -> None:
    """Each event's passive-liveness score: the fused live probability 0..1 of the visit's
    scored frames, NULL where liveness was off or every frame was unsure (older events)."""
    db.table("events").add_column("liveness", float)


@MIGRATIONS(name="008_access_rules")
def _m008_access_rules(db: Database) -> None:
    """Access rules (groups, members, weekly and holiday windows, holidays, per-person
    validity), the anti-passback state, and the door outbox (messages to a webhook or an MQTT
    broker, kept until delivered). Read and written by :mod:`faceguard.library.rules`."""
    for sql in (
        "CREATE TABLE access_groups (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "name_key TEXT NOT NULL UNIQUE, created TEXT NOT NULL)",
        "CREATE TABLE access_members (group_id INTEGER NOT NULL REFERENCES access_groups (id) "
        "ON DELETE CASCADE, person_id INTEGER NOT NULL REFERENCES people (id) ON DELETE "
        "CASCADE, PRIMARY KEY (group_id, person_id))",
        "CREATE TABLE access_windows (id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL "
        "REFERENCES access_groups (id) ON DELETE CASCADE, day INTEGER NOT NULL CHECK (day "
        "BETWEEN 0 AND 7), start_min INTEGER NOT NULL CHECK (start_min BETWEEN 0 AND 1439), "
        "end_min INTEGER NOT NULL CHECK (end_min BETWEEN 0 AND 1440 AND end_min != start_min), "
        "door TEXT)",
        "CREATE TABLE access_holidays (day TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '')",
        "CREATE TABLE access_validity (person_id INTEGER PRIMARY KEY REFERENCES people (id) "
        "ON DELETE CASCADE, valid_from TEXT, valid_until TEXT, disabled INTEGER NOT NULL "
        "DEFAULT 0 CHECK (disabled IN (0, 1)))",
        "CREATE TABLE access_passback (person_id INTEGER PRIMARY KEY REFERENCES people (id) "
        "ON DELETE CASCADE, direction TEXT NOT NULL CHECK (direction IN ('IN', 'OUT')), "
        "door TEXT NOT NULL, timestamp TEXT NOT NULL)",
        "CREATE TABLE door_outbox (endpoint TEXT NOT NULL, event_id TEXT NOT NULL, "
        "payload TEXT NOT NULL, created TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
        "next_try TEXT NOT NULL, sent TEXT, last_error TEXT, PRIMARY KEY (endpoint, event_id))",
        "CREATE INDEX access_windows_group ON access_windows (group_id)",
        "CREATE INDEX access_members_person ON access_members (person_id)",
        "CREATE INDEX door_outbox_pending ON door_outbox (endpoint, sent, next_try)",
    ):
        db.execute(sql)


@MIGRATIONS(name="010_audit_chain")
def _m010_audit_chain(db: Database) -> None:
    """The tamper-evident audit trail: each row's hash over its content and the previous
    row's hash, the chain's anchor and head, the insert trigger that fills them in; the rows
    already there are chained in id order (:mod:`faceguard.library.audit_chain`)."""
    from faceguard.library import audit_chain

    audit_chain.install(db.execute)


@MIGRATIONS(name="011_privacy")
def _m011_privacy(db: Database) -> None:
    """Admin accounts with roles (the single PIN becomes the administrator ``admin``),
    consent records, the library's own flags (consent on by default only for a library with
    no people and no events yet), and a seal column beside each face column for encryption
    at rest (:mod:`~faceguard.library.accounts`, :mod:`~faceguard.library.consent`,
    :mod:`~faceguard.library.crypto`)."""
    from faceguard.library import accounts, consent, crypto

    accounts.install(db.execute)
    consent.install(db.execute)
    crypto.install(db.execute)


@MIGRATIONS(name="012_fleet_sync")
def _m012_fleet_sync(db: Database) -> None:
    """Fleet sync: the outbox (events and audit lines queued by triggers in their own
    transaction), the fleet id and change count of each person, template and group, other
    doors' events, the sync state (:mod:`faceguard.library.fleet_tables`)."""
    from faceguard.library import fleet_tables

    fleet_tables.create_fleet_tables(db)


@MIGRATIONS(name="013_fleet_erasure")
def _m013_fleet_erasure(db: Database) -> None:
    """Fleet sync: an erasure is queued as one (with its pseudonym), and rows still waiting
    for upload are scrubbed with the library's own (:mod:`faceguard.library.fleet_tables`)."""
    from faceguard.library import fleet_tables

    fleet_tables.create_fleet_erasure(db)



@MIGRATIONS(name="015_event_access")
def _m015_event_access(db: Database) -> None:
    """What the door's access rules decided for each event: ``access`` ('allowed' or
    'denied') and ``access_reason`` (the plain reason: "outside your hours", "pass expired");
    NULL where no rule was asked (unknown faces, suspected attacks, no door, older events).
    A fleet kiosk sends both with the event."""
    from faceguard.library import fleet_tables

    events = db.table("events")
    events.add_column("access", str)
    events.add_column("access_reason", str)
    fleet_tables.create_fleet_event_access(db)

MIGRATION_NAMES: tuple[str, ...] = ("001_people", "002_templates", "003_events", "004_audit",
                                     "005_identity", "006_admin", "007_liveness",
                                     "008_access_rules", "010_audit_chain", "011_privacy",
                                     "012_fleet_sync", "013_fleet_erasure",
                                     "015_event_access")
SCHEMA_VERSION = len(MIGRATION_NAMES)
