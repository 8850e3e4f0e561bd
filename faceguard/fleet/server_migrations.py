"""The fleet server's schema as numbered migrations (append only; never edit an applied one),
and the names they define: the schema, the kiosks' group role, the change channel and the
revision lock. Mostly SQL; :mod:`faceguard.fleet.server_schema` applies them.

The revision, tombstone and role design is described in :mod:`faceguard.fleet.server_schema`.
"""

from __future__ import annotations

SCHEMA = "faceguard"
KIOSK_GROUP = "faceguard_kiosk"
NOTIFY_CHANNEL = "faceguard_changes"
MIGRATION_LOCK = 7_201_300
REVISION_LOCK = 7_201_301


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
