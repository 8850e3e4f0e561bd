"""Consent before enrolment, the right of access (`people export`), and a data folder private
to its user (issue 12). Enrolment uses the real detector, the tiny test embedder and the demo
photos shipped in resources/demo."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlite_utils import Database

from faceguard.cli import EXIT_ERROR, EXIT_OK
from faceguard.core.context import AppContext
from faceguard.core.notice import notice_version
from faceguard.library.consent import consent_required, get_consent
from faceguard.library.database import MIGRATION_NAMES, MIGRATIONS, FaceLibrary
from faceguard.settings import Settings, load_settings
from tests.conftest import make_data_dir, run_cli

REPO = Path(__file__).resolve().parents[1]
GRACE = REPO / "resources" / "demo" / "grace_hopper.jpg"
ASTRONAUT = REPO / "resources" / "demo" / "astronaut.png"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture()
def site(tmp_path: Path, test_embedder_env: tuple[Path, str]) -> Path:
    """A data folder with the shipped default for consent (auto: on for a new library)."""
    return make_data_dir(tmp_path, consent_required="auto")


def test_a_new_library_requires_consent_before_enrolment(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(site, "enroll", "Grace Hopper", str(GRACE)) == EXIT_ERROR
    assert "this site requires consent before enrolment" in capsys.readouterr().err
    with FaceLibrary.open(site / "faceguard.db") as library:
        assert library.list_people() == []  # refused before anything was stored
    assert run_cli(site, "enroll", "Grace Hopper", str(GRACE), "--consent-by",
                   "Grace Hopper (signed form 17)") == EXIT_OK
    with FaceLibrary.open(site / "faceguard.db") as library:
        person = library.find_person_by_name("Grace Hopper")
        assert person is not None
        consent = get_consent(library, person.id)
        assert consent is not None
        assert consent.given_by == "Grace Hopper (signed form 17)"
        assert consent.notice_version == notice_version(load_settings(site))
        assert consent.recorded_by == "cli"
        assert library.list_audit(limit=3)[1].action == "consent_recorded"
    # Adding photos to someone enrolled needs no new record; a blank name is refused.
    assert run_cli(site, "enroll", "Grace Hopper", str(GRACE), "--add") == EXIT_OK
    assert run_cli(site, "enroll", "Astronaut", str(ASTRONAUT), "--consent-by", "  ") \
        == EXIT_ERROR
    assert "consent needs the name of who gave it" in capsys.readouterr().err


def test_the_notice_version_follows_the_notice() -> None:
    base = notice_version(Settings())
    assert len(base) == 12 and base == notice_version(Settings())
    assert notice_version(Settings(retention_events_days=30)) != base
    assert notice_version(Settings(source="1")) == base  # not on the notice


def test_consent_is_off_by_default_for_a_library_that_already_held_people(
        tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / "faceguard.db")
    MIGRATIONS.apply(Database(conn), stop_before=MIGRATION_NAMES[MIGRATION_NAMES.index(
        "011_privacy")])
    conn.execute("INSERT INTO people (name, name_key, active, created) VALUES "
                 "('Ana', 'ana', 1, '2025-01-01T00:00:00.000000+00:00')")
    conn.commit()
    conn.close()
    with FaceLibrary.open(folder / "faceguard.db") as library:
        assert not consent_required(library, "auto")
        assert consent_required(library, "on")
    with FaceLibrary.open(tmp_path / "new.db") as library:
        assert consent_required(library, "auto") and not consent_required(library, "off")


def test_people_export_holds_everything_about_the_person(
        site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(site, "enroll", "Grace Hopper", "--employee-id", "E7", str(GRACE),
                   "--consent-by", "Grace Hopper") == EXIT_OK
    assert run_cli(site, "enroll", "Astronaut", str(ASTRONAUT), "--consent-by", "E. C.") \
        == EXIT_OK
    with FaceLibrary.open(site / "faceguard.db") as library:
        grace = library.find_person_by_name("Grace Hopper")
        other = library.find_person_by_name("Astronaut")
        assert grace is not None and other is not None
        library.add_event(NOW, "kiosk-1", grace.id, 0.91, "known", b"\xff\xd8grace-visit")
        library.add_event(NOW + timedelta(minutes=1), "kiosk-1", grace.id, 0.9, "known")
        library.add_event(NOW, "kiosk-1", other.id, 0.9, "known", b"\xff\xd8other-visit")
        library.update_person(grace.id, department="Navy", actor="cli")
        [template] = library.list_templates(grace.id)
        vector = library.get_template_vector(template.id)
        crop = library.get_template_crop(template.id)
    out = tmp_path / "grace.zip"
    capsys.readouterr()
    assert run_cli(site, "people", "export", "grace hopper", "--out", str(out)) == EXIT_OK
    assert capsys.readouterr().out.startswith(
        f"wrote {out}: Grace Hopper, 1 face template, 2 events (1 with a face crop), ")
    if os.name == "posix":
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["format"] == "faceguard-person-export" and manifest["version"] == 1
        for name, entry in manifest["files"].items():  # every file listed, with its hash
            assert hashlib.sha256(archive.read(name)).hexdigest() == entry["sha256"]
        assert names == set(manifest["files"]) | {"manifest.json"}
        assert "everything held about one person" in archive.read("README.txt").decode()
        person = json.loads(archive.read("person.json"))
        assert (person["name"], person["employee_id"], person["department"]) == \
            ("Grace Hopper", "E7", "Navy")
        assert json.loads(archive.read("consent.json"))["given_by"] == "Grace Hopper"
        [meta] = json.loads(archive.read("templates.json"))
        assert meta["dim"] == vector.size and meta["source"] == "grace_hopper.jpg"
        assert np.array_equal(np.frombuffer(archive.read(meta["vector_file"]), "<f4"), vector)
        assert archive.read(meta["crop_file"]) == crop
        events = json.loads(archive.read("events.json"))
        assert [e["crop_file"] is not None for e in events] == [True, False]
        assert archive.read(events[0]["crop_file"]) == b"\xff\xd8grace-visit"
        assert b"other-visit" not in b"".join(archive.read(n) for n in names)
        actions = [a["action"] for a in json.loads(archive.read("audit.json"))]
        assert {"add_person", "add_template", "consent_recorded", "update_person"} <= \
            set(actions)
        assert all('"Astronaut"' not in a["details"] for a in
                   json.loads(archive.read("audit.json")))
    with FaceLibrary.open(site / "faceguard.db") as library:
        assert library.list_audit(limit=1)[0].action == "export_person"
    assert run_cli(site, "people", "export", "Nobody", "--out", str(out)) == EXIT_ERROR
    assert run_cli(site, "people", "export", "Grace Hopper", "--out",
                   str(tmp_path / "no" / "x.zip")) == EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_data_folder_is_private_to_its_user(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "new" / "data"
    ctx = AppContext(folder)
    ctx.library.add_person("Ana", actor="cli")  # creates the folder, the file and its -wal
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("faceguard.db", "faceguard.db-wal", "faceguard.db-shm"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    ctx.apply_settings(Settings(kiosk_name="Front"), actor="cli")
    assert stat.S_IMODE((folder / "settings.json").stat().st_mode) == 0o600
    ctx.close()
    assert run_cli(folder, "backup") == EXIT_OK
    backups = folder / "backups"
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in backups.iterdir())
    # Settings saved before any library also make the folder private.
    other = tmp_path / "other"
    assert run_cli(other, "config", "set", "kiosk.name", "Back") == EXIT_OK
    assert stat.S_IMODE(other.stat().st_mode) == 0o700
