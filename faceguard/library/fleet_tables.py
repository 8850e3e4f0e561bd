"""The kiosk's fleet-sync tables and triggers (schema step 012_fleet_sync).

Written as triggers so that every path that writes an event, an audit line, a person, a
template or a rule (whatever module it lives in) feeds the sync in the *same* SQLite
transaction: a crash or ``kill -9`` either keeps the event and its outbox row, or neither.

- ``fleet_outbox``: what waits for upload, oldest first; ``seq`` (AUTOINCREMENT, never
  reused) with the kiosk id is the idempotency key on the server. Events and audit lines are
  queued only once the kiosk has joined a fleet (``fleet_state.joined``); removals of people,
  templates and groups and holiday changes travel as their own rows.
- ``fleet_people`` / ``fleet_templates`` / ``fleet_groups``: the fleet-wide id (a uuid's 32 hex
  digits) of each local row, the server revision last applied, and ``dirty``, a change
  counter: the sender pushes rows with ``dirty > 0`` and clears only the count it pushed, so
  an edit made during an upload is pushed again.
- ``fleet_events``: events that came from other kiosks (origin kiosk id + its sequence), so
  each is stored once.
- ``fleet_state``: key/value (kiosk id, cursor, last sync, offline since, last error). While
  the sync engine applies the server's changes it holds the key ``applying`` inside its
  transaction, and the triggers stay quiet (a change from the server is not sent back).
"""

from __future__ import annotations

from typing import Any

QUIET = "NOT EXISTS (SELECT 1 FROM fleet_state WHERE key = 'applying')"
JOINED = "EXISTS (SELECT 1 FROM fleet_state WHERE key = 'joined')"
NEW_UID = "lower(hex(randomblob(16)))"
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

FLEET_TABLES: tuple[str, ...] = (
    "CREATE TABLE fleet_state (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE fleet_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
    "payload TEXT NOT NULL, created TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
    "last_error TEXT)",
    "CREATE TABLE fleet_people (person_id INTEGER PRIMARY KEY REFERENCES people (id) "
    "ON DELETE CASCADE, uid TEXT NOT NULL UNIQUE, revision INTEGER NOT NULL DEFAULT 0, "
    "dirty INTEGER NOT NULL DEFAULT 1)",
    "CREATE TABLE fleet_templates (template_id INTEGER PRIMARY KEY REFERENCES templates (id) "
    "ON DELETE CASCADE, uid TEXT NOT NULL UNIQUE, revision INTEGER NOT NULL DEFAULT 0, "
    "dirty INTEGER NOT NULL DEFAULT 1)",
    "CREATE TABLE fleet_groups (group_id INTEGER PRIMARY KEY REFERENCES access_groups (id) "
    "ON DELETE CASCADE, uid TEXT NOT NULL UNIQUE, revision INTEGER NOT NULL DEFAULT 0, "
    "dirty INTEGER NOT NULL DEFAULT 1)",
    "CREATE TABLE fleet_events (event_id INTEGER PRIMARY KEY REFERENCES events (id) "
    "ON DELETE CASCADE, origin TEXT NOT NULL, origin_seq INTEGER NOT NULL, "
    "UNIQUE (origin, origin_seq))",
    "CREATE INDEX fleet_people_dirty ON fleet_people (dirty) WHERE dirty > 0",
    "CREATE INDEX fleet_templates_dirty ON fleet_templates (dirty) WHERE dirty > 0",
    "CREATE INDEX fleet_groups_dirty ON fleet_groups (dirty) WHERE dirty > 0",
)

_EVENT_PAYLOAD = (
    "json_object('local_id', NEW.id, 'timestamp', NEW.timestamp, 'kiosk_name', NEW.kiosk_id, "
    "'person_uid', (SELECT uid FROM fleet_people WHERE person_id = NEW.person_id), "
    "'person_name', NEW.person_name, 'similarity', NEW.similarity, 'decision', NEW.decision, "
    "'liveness', NEW.liveness)")

FLEET_TRIGGERS: tuple[str, ...] = (
    # up: events and audit lines, in the writer's transaction
    f"CREATE TRIGGER fleet_event_out AFTER INSERT ON events WHEN {QUIET} AND {JOINED} "
    f"BEGIN INSERT INTO fleet_outbox (kind, payload, created) VALUES ('event', "
    f"{_EVENT_PAYLOAD}, {NOW}); END",
    f"CREATE TRIGGER fleet_audit_out AFTER INSERT ON audit WHEN {QUIET} AND {JOINED} "
    "BEGIN INSERT INTO fleet_outbox (kind, payload, created) VALUES ('audit', json_object("
    "'timestamp', NEW.timestamp, 'actor', NEW.actor, 'action', NEW.action, 'details', "
    f"NEW.details), {NOW}); END",
    # people: a fleet id at birth, a change count on every edit, a tombstone on removal
    f"CREATE TRIGGER fleet_person_new AFTER INSERT ON people WHEN {QUIET} BEGIN "
    f"INSERT INTO fleet_people (person_id, uid) VALUES (NEW.id, {NEW_UID}); END",
    f"CREATE TRIGGER fleet_person_edit AFTER UPDATE ON people WHEN {QUIET} BEGIN "
    "UPDATE fleet_people SET dirty = dirty + 1 WHERE person_id = NEW.id; END",
    f"CREATE TRIGGER fleet_person_gone BEFORE DELETE ON people WHEN {QUIET} BEGIN "
    "INSERT INTO fleet_outbox (kind, payload, created) SELECT 'remove_person', "
    f"json_object('uid', uid), {NOW} FROM fleet_people WHERE person_id = OLD.id; END",
    f"CREATE TRIGGER fleet_pass_new AFTER INSERT ON access_validity WHEN {QUIET} BEGIN "
    "UPDATE fleet_people SET dirty = dirty + 1 WHERE person_id = NEW.person_id; END",
    f"CREATE TRIGGER fleet_pass_edit AFTER UPDATE ON access_validity WHEN {QUIET} BEGIN "
    "UPDATE fleet_people SET dirty = dirty + 1 WHERE person_id = NEW.person_id; END",
    f"CREATE TRIGGER fleet_pass_gone AFTER DELETE ON access_validity WHEN {QUIET} BEGIN "
    "UPDATE fleet_people SET dirty = dirty + 1 WHERE person_id = OLD.person_id; END",
    # templates
    f"CREATE TRIGGER fleet_template_new AFTER INSERT ON templates WHEN {QUIET} BEGIN "
    f"INSERT INTO fleet_templates (template_id, uid) VALUES (NEW.id, {NEW_UID}); END",
    f"CREATE TRIGGER fleet_template_edit AFTER UPDATE ON templates WHEN {QUIET} BEGIN "
    "UPDATE fleet_templates SET dirty = dirty + 1 WHERE template_id = NEW.id; END",
    f"CREATE TRIGGER fleet_template_gone BEFORE DELETE ON templates WHEN {QUIET} BEGIN "
    "INSERT INTO fleet_outbox (kind, payload, created) SELECT 'remove_template', "
    f"json_object('uid', uid), {NOW} FROM fleet_templates WHERE template_id = OLD.id; END",
    # access groups: the group with its members and windows travels as one document
    f"CREATE TRIGGER fleet_group_new AFTER INSERT ON access_groups WHEN {QUIET} BEGIN "
    f"INSERT INTO fleet_groups (group_id, uid) VALUES (NEW.id, {NEW_UID}); END",
    f"CREATE TRIGGER fleet_group_edit AFTER UPDATE ON access_groups WHEN {QUIET} BEGIN "
    "UPDATE fleet_groups SET dirty = dirty + 1 WHERE group_id = NEW.id; END",
    f"CREATE TRIGGER fleet_group_gone BEFORE DELETE ON access_groups WHEN {QUIET} BEGIN "
    "INSERT INTO fleet_outbox (kind, payload, created) SELECT 'remove_group', "
    f"json_object('uid', uid), {NOW} FROM fleet_groups WHERE group_id = OLD.id; END",
    f"CREATE TRIGGER fleet_member_new AFTER INSERT ON access_members WHEN {QUIET} BEGIN "
    "UPDATE fleet_groups SET dirty = dirty + 1 WHERE group_id = NEW.group_id; END",
    f"CREATE TRIGGER fleet_member_gone AFTER DELETE ON access_members WHEN {QUIET} BEGIN "
    "UPDATE fleet_groups SET dirty = dirty + 1 WHERE group_id = OLD.group_id; END",
    f"CREATE TRIGGER fleet_window_new AFTER INSERT ON access_windows WHEN {QUIET} BEGIN "
    "UPDATE fleet_groups SET dirty = dirty + 1 WHERE group_id = NEW.group_id; END",
    f"CREATE TRIGGER fleet_window_edit AFTER UPDATE ON access_windows WHEN {QUIET} BEGIN "
    "UPDATE fleet_groups SET dirty = dirty + 1 WHERE group_id = NEW.group_id; END",
    f"CREATE TRIGGER fleet_window_gone AFTER DELETE ON access_windows WHEN {QUIET} BEGIN "
    "UPDATE fleet_groups SET dirty = dirty + 1 WHERE group_id = OLD.group_id; END",
    # holidays have a natural key (the date): each change is queued as it is
    f"CREATE TRIGGER fleet_holiday_new AFTER INSERT ON access_holidays WHEN {QUIET} BEGIN "
    "INSERT INTO fleet_outbox (kind, payload, created) VALUES ('holiday', json_object('day', "
    f"NEW.day, 'name', NEW.name, 'deleted', 0), {NOW}); END",
    f"CREATE TRIGGER fleet_holiday_edit AFTER UPDATE ON access_holidays WHEN {QUIET} BEGIN "
    "INSERT INTO fleet_outbox (kind, payload, created) VALUES ('holiday', json_object('day', "
    f"NEW.day, 'name', NEW.name, 'deleted', 0), {NOW}); END",
    f"CREATE TRIGGER fleet_holiday_gone AFTER DELETE ON access_holidays WHEN {QUIET} BEGIN "
    "INSERT INTO fleet_outbox (kind, payload, created) VALUES ('holiday', json_object('day', "
    f"OLD.day, 'name', '', 'deleted', 1), {NOW}); END",
)

_BACKFILL: tuple[str, ...] = (
    f"INSERT INTO fleet_people (person_id, uid) SELECT id, {NEW_UID} FROM people",
    f"INSERT INTO fleet_templates (template_id, uid) SELECT id, {NEW_UID} FROM templates",
    f"INSERT INTO fleet_groups (group_id, uid) SELECT id, {NEW_UID} FROM access_groups",
)


_AUDIT_PAYLOAD = ("json_object('local_id', NEW.id, 'timestamp', NEW.timestamp, 'actor', NEW.actor, "
                  "'action', NEW.action, 'details', NEW.details)")

# Schema step 013: an erasure travels as one (the server pseudonymises the person's events and
# audit lines everywhere), and what still waits for upload is scrubbed with the library's own
# rows (an erased name never leaves the kiosk from the outbox).
FLEET_ERASURE: tuple[str, ...] = (
    "DROP TRIGGER fleet_audit_out",
    f"CREATE TRIGGER fleet_audit_out AFTER INSERT ON audit WHEN {QUIET} AND {JOINED} "
    f"BEGIN INSERT INTO fleet_outbox (kind, payload, created) VALUES ('audit', "
    f"{_AUDIT_PAYLOAD}, {NOW}); END",
    f"CREATE TRIGGER fleet_audit_scrubbed AFTER UPDATE OF details ON audit WHEN {QUIET} BEGIN "
    "UPDATE fleet_outbox SET payload = json_set(payload, '$.details', NEW.details) WHERE kind "
    "= 'audit' AND json_extract(payload, '$.local_id') = NEW.id; END",
    f"CREATE TRIGGER fleet_event_erased AFTER UPDATE OF person_name ON events WHEN {QUIET} "
    "AND OLD.person_id IS NOT NULL AND NEW.person_id IS NULL AND NEW.person_name LIKE "
    "'erased-%' BEGIN "
    "INSERT INTO fleet_outbox (kind, payload, created) SELECT 'erase_person', json_object("
    f"'uid', f.uid, 'pseudonym', NEW.person_name), {NOW} FROM fleet_people f WHERE "
    "f.person_id = OLD.person_id AND NOT EXISTS (SELECT 1 FROM fleet_outbox o WHERE o.kind = "
    "'erase_person' AND json_extract(o.payload, '$.uid') = f.uid); "
    "UPDATE fleet_outbox SET payload = json_set(payload, '$.person_name', NEW.person_name) "
    "WHERE kind = 'event' AND json_extract(payload, '$.local_id') = NEW.id; END",
)


_EVENT_ACCESS_PAYLOAD = (
    "json_object('local_id', NEW.id, 'timestamp', NEW.timestamp, 'kiosk_name', NEW.kiosk_id, "
    "'person_uid', (SELECT uid FROM fleet_people WHERE person_id = NEW.person_id), "
    "'person_name', NEW.person_name, 'similarity', NEW.similarity, 'decision', NEW.decision, "
    "'liveness', NEW.liveness, 'access', NEW.access, 'access_reason', NEW.access_reason)")

# Schema step 015: an event's access decision ("allowed" / "denied" and why) travels with it.
FLEET_EVENT_ACCESS: tuple[str, ...] = (
    "DROP TRIGGER fleet_event_out",
    f"CREATE TRIGGER fleet_event_out AFTER INSERT ON events WHEN {QUIET} AND {JOINED} "
    f"BEGIN INSERT INTO fleet_outbox (kind, payload, created) VALUES ('event', "
    f"{_EVENT_ACCESS_PAYLOAD}, {NOW}); END",
)


def create_fleet_event_access(db: Any) -> None:
    """Schema step 015 (see :data:`FLEET_EVENT_ACCESS`)."""
    for statement in FLEET_EVENT_ACCESS:
        db.execute(statement)


def create_fleet_erasure(db: Any) -> None:
    """Schema step 013 (see :data:`FLEET_ERASURE`)."""
    for statement in FLEET_ERASURE:
        db.execute(statement)


def create_fleet_tables(db: Any) -> None:
    """Schema step 012: the tables, the triggers, and a fleet id for every existing person,
    template and group (``db`` is the sqlite-utils Database or an sqlite3 connection)."""
    for statement in (*FLEET_TABLES, *FLEET_TRIGGERS, *_BACKFILL):
        db.execute(statement)
