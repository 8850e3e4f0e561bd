"""The right of access: everything the library holds about one person, in one ZIP file.

``faceguard people export NAME --out FILE.zip`` writes (format ``faceguard-person-export``,
version 1; the same text is ``README.txt`` inside the file):

- ``manifest.json``: format, version, when and by which FaceGuard it was made, the person's
  id and name, the files with their SHA-256 and what each holds.
- ``person.json``: the person's record (name, employee id, department, active, created).
- ``consent.json``: the consent record (when, by whom, notice version, recorded by), or null.
- ``templates.json``: one entry per face template: id, model, vector size, quality, source
  file name and its SHA-256, created, and the file names of its vector and crop.
- ``templates/<id>.f32``: the template's vector (little-endian float32, L2-normalised).
- ``templates/<id>.jpg``: the aligned face crop stored with it.
- ``events.json``: every entry-log event of the person (time in UTC, kiosk, decision,
  similarity, liveness, the crop's file name when one is kept).
- ``events/<id>.jpg``: the face crop stored with an event.
- ``access.json``: the access groups the person is in and their pass (valid from/until,
  disabled), where the access rules are used.
- ``audit.json``: the admin audit entries about the person (whose details name their id,
  name or employee id).

The ZIP is written to a temporary file beside ``--out`` and renamed when complete, so an
interrupted export leaves no half file. It holds biometric data: it is created 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faceguard import __version__
from faceguard.errors import FaceGuardError, LibraryError
from faceguard.library.consent import get_consent
from faceguard.library.database import FaceLibrary, Person

FORMAT = "faceguard-person-export"
# Audit actions whose details' "id" is a person's id (elsewhere "id" names a template etc.).
_PERSON_ID_ACTIONS = frozenset({"add_person", "update_person", "remove_person"})
VERSION = 1


@dataclass(frozen=True)
class ExportSummary:
    """What went into an export."""

    path: Path
    templates: int
    events: int
    event_crops: int
    audit_entries: int
    has_consent: bool


def _readme() -> str:
    doc = __doc__ or ""
    start = doc.index("``faceguard people export")
    return ("FaceGuard: everything held about one person\n\n" + doc[start:].strip() + "\n")


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode()


def _audit_about(library: FaceLibrary, person: Person) -> list[dict[str, Any]]:
    """Audit rows whose details name the person (id as a JSON number, name or employee id as
    a JSON string)."""
    needles = [json.dumps(person.name), json.dumps(person.name, ensure_ascii=False)]
    if person.employee_id:
        needles += [json.dumps(person.employee_id),
                    json.dumps(person.employee_id, ensure_ascii=False)]
    rows: list[dict[str, Any]] = []
    with library.reading("reading the audit log") as conn:
        for row_id, stamp, actor, action, details in conn.execute(
                "SELECT id, timestamp, actor, action, details FROM audit ORDER BY id"):
            about = any(n in details for n in needles)
            if not about:
                try:
                    parsed = json.loads(details)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict):
                    about = parsed.get("person_id") == person.id or (
                        action in _PERSON_ID_ACTIONS and parsed.get("id") == person.id)
            if about:
                rows.append({"id": row_id, "timestamp": stamp, "actor": actor,
                             "action": action, "details": details})
    return rows


def _access(library: FaceLibrary, person_id: int) -> dict[str, Any]:
    with library.reading("reading the access rules") as conn:
        groups = [str(r[0]) for r in conn.execute(
            "SELECT g.name FROM access_groups g JOIN access_members m ON m.group_id = g.id "
            "WHERE m.person_id = ? ORDER BY g.name_key", (person_id,))]
        row = conn.execute("SELECT valid_from, valid_until, disabled FROM access_validity "
                           "WHERE person_id = ?", (person_id,)).fetchone()
    validity = None if row is None else {"valid_from": row[0], "valid_until": row[1],
                                         "disabled": bool(row[2])}
    return {"groups": groups, "pass": validity}


def export_person(library: FaceLibrary, person_id: int, out: str | os.PathLike[str]) -> \
        ExportSummary:
    """Write the person's export to ``out`` (atomically); LibraryError for no such person,
    FaceGuardError when the file cannot be written."""
    person = library.get_person(person_id)
    if person is None:
        raise LibraryError(f"There is no person with id {person_id}.")
    target = Path(out).expanduser()
    if not target.parent.is_dir():
        raise FaceGuardError(f"folder {target.parent} does not exist")
    files: dict[str, tuple[bytes, str]] = {}
    files["person.json"] = (_json({
        "id": person.id, "name": person.name, "employee_id": person.employee_id,
        "department": person.department, "active": person.active,
        "created": person.created.isoformat()}), "the person's record")
    consent = get_consent(library, person.id)
    files["consent.json"] = (_json(None if consent is None else consent.to_json()),
                             "the consent record (null: none recorded)")
    templates = []
    for template in library.list_templates(person.id):
        vector_name, crop_name = f"templates/{template.id}.f32", f"templates/{template.id}.jpg"
        files[vector_name] = (library.get_template_vector(template.id).astype("<f4").tobytes(),
                              f"vector of template {template.id} (float32, little-endian)")
        files[crop_name] = (library.get_template_crop(template.id),
                            f"face crop of template {template.id} (JPEG)")
        templates.append({"id": template.id, "model_id": template.model_id,
                          "dim": template.dim, "quality": template.quality,
                          "source": template.source,
                          "source_sha256": template.content_sha256,
                          "created": template.created.isoformat(),
                          "vector_file": vector_name, "crop_file": crop_name})
    files["templates.json"] = (_json(templates), "face templates (metadata)")
    events = []
    crops = 0
    for event in library.query_events(person=person.id, with_crops=True):
        event_crop: str | None = None
        if event.crop_jpeg is not None:
            event_crop = f"events/{event.id}.jpg"
            files[event_crop] = (event.crop_jpeg, f"face crop of event {event.id} (JPEG)")
            crops += 1
        events.append({"id": event.id, "timestamp": event.timestamp.isoformat(),
                       "kiosk_id": event.kiosk_id, "decision": event.decision,
                       "similarity": event.similarity, "liveness": event.liveness,
                       "crop_file": event_crop})
    files["events.json"] = (_json(events), "entry-log events (times in UTC)")
    try:
        access = _access(library, person.id)
    except LibraryError:  # a library without access-rule tables
        access = {"groups": [], "pass": None}
    files["access.json"] = (_json(access), "access groups and pass")
    audit = _audit_about(library, person)
    files["audit.json"] = (_json(audit), "admin audit entries about the person")
    files["README.txt"] = (_readme().encode(), "this format, explained")
    manifest = {
        "format": FORMAT, "version": VERSION, "faceguard": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "person": {"id": person.id, "name": person.name},
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                         "holds": holds} for name, (data, holds) in sorted(files.items())}}
    _write_zip(target, {"manifest.json": _json(manifest),
                        **{name: data for name, (data, _) in files.items()}})
    return ExportSummary(target, len(templates), len(events), crops, len(audit),
                         consent is not None)


def _write_zip(target: Path, files: dict[str, bytes]) -> None:
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for name, data in files.items():
                    archive.writestr(name, data)
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as error:
        raise FaceGuardError(f"cannot write {target}: {error.strerror or error}") from error
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
