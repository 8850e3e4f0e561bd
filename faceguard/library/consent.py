"""Consent records (table ``consent``, migration ``011_privacy``) and the library's own flags
(table ``library_meta``).

One consent record per person: when it was given, by whom (the name typed by the admin who
collected it, e.g. the person themselves or their signed form's witness), which version of the
retention notice it was given for, and the admin account that recorded it. It goes with the
person (``ON DELETE CASCADE``): an erasure erases it too.

Whether consent is required before enrolment is the setting ``consent.required``: ``on``,
``off``, or ``auto`` (the default), which follows the library: on for a library created with
this version, off for one that already held people or events when it was upgraded (its
people were enrolled without a record; a site turns it on once it has collected them).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faceguard.errors import LibraryError
from faceguard.library.database import FaceLibrary, utc_now

MAX_WHO = 200
CONSENT_DEFAULT_KEY = "consent.required_default"

_SCHEMA = (
    "CREATE TABLE consent (person_id INTEGER PRIMARY KEY REFERENCES people (id) ON DELETE "
    "CASCADE, given TEXT NOT NULL, given_by TEXT NOT NULL, notice_version TEXT NOT NULL, "
    "recorded_by TEXT NOT NULL)",
    "CREATE TABLE library_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def install(execute: Any) -> None:
    """Migration step: consent and library_meta; consent on by default only for a library
    that holds no people and no events yet."""
    for sql in _SCHEMA:
        execute(sql)
    execute("INSERT INTO library_meta (key, value) SELECT ?, CASE WHEN EXISTS (SELECT 1 FROM "
            "people) OR EXISTS (SELECT 1 FROM events) THEN 'off' ELSE 'on' END",
            (CONSENT_DEFAULT_KEY,))


@dataclass(frozen=True)
class Consent:
    """A person's consent record."""

    person_id: int
    given: datetime
    given_by: str
    notice_version: str
    recorded_by: str

    def to_json(self) -> dict[str, Any]:
        """The record as JSON values (time in UTC ISO 8601)."""
        return {"person_id": self.person_id, "given": self.given.isoformat(),
                "given_by": self.given_by, "notice_version": self.notice_version,
                "recorded_by": self.recorded_by}


def clean_who(who: str | None) -> str:
    """Who gave the consent, as stored (LibraryError when missing or not plain text)."""
    cleaned = unicodedata.normalize("NFC", " ".join((who or "").split()))
    if not cleaned:
        raise LibraryError("consent needs the name of who gave it")
    if len(cleaned) > MAX_WHO:
        raise LibraryError(f"the name of who gave consent must be at most {MAX_WHO} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in cleaned):
        raise LibraryError("the name of who gave consent must not contain control or "
                           "invisible characters")
    return cleaned


def meta(library: FaceLibrary, key: str) -> str | None:
    """A value of the library's own flags (None when unset)."""
    with library.reading("reading the library's flags") as conn:
        row = conn.execute("SELECT value FROM library_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def consent_required(library: FaceLibrary, setting: str) -> bool:
    """Whether enrolment needs a consent record: ``on``/``off``, or ``auto`` (the
    library's default, set when it was created or upgraded)."""
    if setting in ("on", "off"):
        return setting == "on"
    return meta(library, CONSENT_DEFAULT_KEY) == "on"


def record_consent(library: FaceLibrary, person_id: int, given_by: str, notice_version: str,
                   *, actor: str, given: datetime | None = None) -> Consent:
    """Store (or replace) a person's consent record with its audit entry, in one transaction
    (or inside the caller's, e.g. the enrolment's)."""
    who = clean_who(given_by)
    moment = (given or utc_now()).astimezone(UTC)
    stamp = moment.isoformat(timespec="microseconds")
    with library.upkeep("recording consent") as conn:
        if conn.execute("SELECT 1 FROM people WHERE id = ?", (person_id,)).fetchone() is None:
            raise LibraryError(f"There is no person with id {person_id}.")
        conn.execute("INSERT INTO consent (person_id, given, given_by, notice_version, "
                     "recorded_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT (person_id) DO UPDATE "
                     "SET given = excluded.given, given_by = excluded.given_by, notice_version "
                     "= excluded.notice_version, recorded_by = excluded.recorded_by",
                     (person_id, stamp, who, notice_version, actor))
        library.audit(actor, "consent_recorded", {"person_id": person_id,
                                                  "notice_version": notice_version})
    return Consent(person_id, moment, who, notice_version, actor)


def get_consent(library: FaceLibrary, person_id: int) -> Consent | None:
    """A person's consent record, or None."""
    with library.reading("reading a consent record") as conn:
        row = conn.execute("SELECT person_id, given, given_by, notice_version, recorded_by "
                           "FROM consent WHERE person_id = ?", (person_id,)).fetchone()
    if row is None:
        return None
    return Consent(int(row[0]), datetime.fromisoformat(row[1]), str(row[2]), str(row[3]),
                   str(row[4]))
