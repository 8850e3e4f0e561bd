"""Retention and erasure (issue 12): purge on schedule, erasure that leaves no bytes behind,
the printable retention notice.

The erasure tests enrol with the real detector, the tiny test embedder and the demo photos in
resources/demo, then search the database file and its -wal for the raw bytes."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from faceguard.cli import EXIT_ERROR, EXIT_OK, main
from faceguard.library.backup import DailyMaintenance, KioskLock
from faceguard.library.database import FaceLibrary
from faceguard.library.retention import Retention, checkpoint, erase_person, purge
from faceguard.settings import Settings, load_settings, save_settings
from faceguard.vision.image_io import load_image
from tests.conftest import make_data_dir

REPO = Path(__file__).resolve().parents[1]
GRACE = REPO / "resources" / "demo" / "grace_hopper.jpg"
ASTRONAUT = REPO / "resources" / "demo" / "astronaut.png"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
JPEG = b"\xff\xd8" + bytes(1500)


def _age_audit(path: Path, moment: datetime) -> None:
    """Backdate every audit entry (they are written with the real time)."""
    conn = sqlite3.connect(path)
    conn.execute("UPDATE audit SET timestamp = ?", (moment.isoformat(timespec="microseconds"),))
    conn.commit()
    conn.close()


def _fill(path: Path) -> int:
    """One person; events 100 days, 30 days and 2 hours old (known and unknown, with crops)."""
    with FaceLibrary.open(path) as library:
        ada = library.add_person("Ada", actor="test").id
        for age in (timedelta(days=100), timedelta(days=30), timedelta(hours=2)):
            library.add_event(NOW - age, "kiosk-1", ada, 0.9, "known", JPEG)
            library.add_event(NOW - age, "kiosk-1", None, 0.3, "unknown", JPEG)
        return ada


def test_purge_deletes_old_events_crops_and_audit_in_one_audited_step(tmp_path: Path) -> None:
    path = tmp_path / "faceguard.db"
    _fill(path)
    _age_audit(path, NOW - timedelta(days=800))
    with FaceLibrary.open(path) as library:
        planned = purge(library, Retention(90, 24, 730), now=NOW, dry_run=True)
        assert (planned.events, planned.unknown_crops, planned.audit) == (2, 1, 1)
        assert library.count_events() == 6  # a dry run changes nothing
        done = purge(library, Retention(90, 24, 730), actor="cli", now=NOW)
        assert (done.events, done.unknown_crops, done.audit, done.dry_run) == (2, 1, 1, False)
        events = library.query_events()
        assert len(events) == 4
        crops = {(e.decision, e.timestamp): e.has_crop for e in events}
        assert crops[("unknown", NOW - timedelta(days=30))] is False  # older than 24 h
        assert crops[("unknown", NOW - timedelta(hours=2))] is True
        assert crops[("known", NOW - timedelta(days=30))] is True  # known crops stay
        [entry] = library.list_audit()  # the old entry went, the purge's own is there
        assert entry.action == "purge" and entry.actor == "cli"
        assert json.loads(entry.details)["events"] == 2
        # 0 keeps forever.
        again = purge(library, Retention(0, 0, 0), now=NOW + timedelta(days=10_000))
        assert again.total == 0 and library.count_events() == 4


def test_purge_and_config_from_the_command_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    now = datetime.now(UTC)
    with FaceLibrary.open(data / "faceguard.db") as library:
        library.add_event(now - timedelta(days=40), "kiosk-1", None, 0.2, "unknown", JPEG)
        library.add_event(now - timedelta(days=1), "kiosk-1", None, 0.2, "unknown", JPEG)
    assert main(["--data-dir", str(data), "purge", "--dry-run"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("would delete 0 events older than 90 days, "
                                              "2 unknown-face crops older than 24 hours")
    assert main(["--data-dir", str(data), "config", "set", "retention.events_days", "30"]) \
        == EXIT_OK
    assert load_settings(data).retention_events_days == 30
    assert main(["--data-dir", str(data), "config", "set", "retention.events_days", "-1"]) \
        == EXIT_ERROR
    assert "must be in [0, 36500]" in capsys.readouterr().err
    assert main(["--data-dir", str(data), "purge"]) == EXIT_OK
    assert "deleted 1 event older than 30 days, 1 unknown-face crop" in capsys.readouterr().out
    with FaceLibrary.open(data / "faceguard.db") as library:
        assert library.count_events() == 1
        assert [a.action for a in library.list_audit()][:2] == ["purge", "settings_changed"]
    assert main(["--data-dir", str(data), "purge", "--compact"]) == EXIT_OK
    assert "\nrewrote " in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path / "missing"), "purge"]) == EXIT_ERROR
    assert not (tmp_path / "missing").exists()


def test_the_daily_maintenance_purges_with_the_folder_settings(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    save_settings(Settings(retention_events_days=10), data)
    _fill(data / "faceguard.db")
    with FaceLibrary.open(data / "faceguard.db") as library:
        daily = DailyMaintenance(library, keep=1, clock=NOW.timestamp)
        assert daily() is not None  # the backup is made after the purge
        assert library.count_events() == 2
        assert library.list_audit()[0].action == "purge"


# -- erasure --------------------------------------------------------------------------------

@pytest.fixture()
def stock_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every library connection starts with ``secure_delete`` off, as in SQLite's own builds
    (python.org, Windows, macOS). Debian's libsqlite3 turns it on at compile time, which
    would hide what the erasure must do itself."""
    setup = FaceLibrary._setup

    def stock(self: FaceLibrary, conn: sqlite3.Connection) -> Any:
        db = setup(self, conn)
        conn.execute("PRAGMA secure_delete = OFF")
        return db

    monkeypatch.setattr(FaceLibrary, "_setup", stock)


@pytest.fixture()
def enrolled(tmp_path: Path, test_embedder_env: tuple[Path, str], stock_sqlite: None) -> Path:
    """A data folder with Grace Hopper (two photos) and the astronaut enrolled."""
    data = make_data_dir(tmp_path)
    image = load_image(GRACE)
    moved = cv2.warpAffine(image, np.float32([[0.95, 0, 10], [0, 0.95, 8]]),
                           (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT)
    second = tmp_path / "grace2.png"
    cv2.imwrite(str(second), cv2.cvtColor(moved, cv2.COLOR_RGB2BGR))
    base = ["--data-dir", str(data), "--min-face", "40"]
    assert main([*base, "enroll", "Grace Hopper", "--employee-id", "E7", str(GRACE),
                 str(second)]) == EXIT_OK
    assert main([*base, "enroll", "Astronaut", str(ASTRONAUT)]) == EXIT_OK
    return data


def _secrets_of(library: FaceLibrary, name: str) -> list[bytes]:
    """Raw bytes that must disappear: each template's float32 vector and JPEG crop, and the
    JPEG crop of each of the person's events (several slices of each, so a partial overwrite
    is caught too)."""
    person = library.find_person_by_name(name)
    assert person is not None
    blobs: list[bytes] = []
    for template in library.list_templates(person.id):
        blobs.append(library.get_template_vector(template.id).astype(np.float32).tobytes())
        blobs.append(library.get_template_crop(template.id))
    for event in library.query_events(person=person.id):
        crop = library.get_event_crop(event.id)
        assert crop is not None
        blobs.append(crop)
    slices = []
    for blob in blobs:
        # A JPEG's headers (quantisation and Huffman tables) are the same in every crop of
        # this quality, the astronaut's too: only its scan data is this person's.
        start = blob.find(b"\xff\xda") + 16 if blob.startswith(b"\xff\xd8") else 0
        slices += [blob[i:i + 48] for i in range(start, max(len(blob) - 48, start + 1), 384)]
    return slices


def _log_visits(data: Path) -> list[bytes]:
    """Three visits of Grace with distinct crops and one of the astronaut; Grace's secrets."""
    rng = np.random.default_rng(5)
    with FaceLibrary.open(data / "faceguard.db") as library:
        grace = library.find_person_by_name("Grace Hopper")
        other = library.find_person_by_name("Astronaut")
        assert grace is not None and other is not None
        for minutes in range(3):
            noise = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            ok, jpeg = cv2.imencode(".jpg", noise)
            assert ok
            library.add_event(NOW + timedelta(minutes=minutes), "kiosk-1", grace.id, 0.91,
                              "known", jpeg.tobytes())
        library.add_event(NOW, "kiosk-1", other.id, 0.9, "known", JPEG)
        return _secrets_of(library, "Grace Hopper")


def _found(data: Path, slices: list[bytes]) -> int:
    """How many of the slices occur in the database file or its -wal."""
    content = b""
    for suffix in ("", "-wal"):
        file = data / f"faceguard.db{suffix}"
        if file.exists():
            content += file.read_bytes()
    return sum(piece in content for piece in slices)


def test_erasure_leaves_no_template_or_crop_bytes_in_the_file_or_its_wal(
        enrolled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slices = _log_visits(enrolled)
    assert _found(enrolled, slices) == len(slices)  # the search does find them before
    capsys.readouterr()
    assert main(["--data-dir", str(enrolled), "people", "erase", "grace hopper"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("erased Grace Hopper: 2 face templates, 3 event crops deleted; "
                          "3 events now logged as erased-")
    assert _found(enrolled, slices) == 0
    assert b"Grace Hopper" not in (enrolled / "faceguard.db").read_bytes()
    assert b"E7" not in (enrolled / "faceguard.db").read_bytes()
    with FaceLibrary.open(enrolled / "faceguard.db") as library:
        assert library.integrity_check() == []
        assert library.find_person_by_name("Grace Hopper", include_inactive=True) is None
        events = library.query_events()
        pseudonyms = {e.person_name for e in events if e.person_name != "Astronaut"}
        assert len(pseudonyms) == 1 and pseudonyms.pop().startswith("erased-")  # type: ignore
        assert all(e.person_id is None and not e.has_crop for e in events
                   if e.person_name != "Astronaut")
        assert [e.has_crop for e in events if e.person_name == "Astronaut"] == [True]
        assert len(library.list_people()) == 1
        entry = library.list_audit()[0]
        assert entry.action == "erase_person" and "Grace" not in entry.details
        assert all("Grace Hopper" not in a.details for a in library.list_audit())


def test_erasure_leaves_nothing_while_the_library_stays_open(enrolled: Path) -> None:
    """The kiosk's own connection stays open: the WAL must be truncated, not left to a close."""
    slices = _log_visits(enrolled)
    with FaceLibrary.open(enrolled / "faceguard.db") as library:
        person = library.find_person_by_name("Grace Hopper")
        assert person is not None
        result = erase_person(library, person.id)
        assert result.checkpointed and result.vacuumed and result.event_crops == 3
        assert (enrolled / "faceguard.db-wal").stat().st_size == 0
        assert _found(enrolled, slices) == 0
        assert result.size_after < result.size_before


def test_a_plain_remove_leaves_the_bytes_behind(enrolled: Path) -> None:
    """What the erasure test guards against: deleting the rows alone leaves the bytes in the
    file's freed pages, even after the WAL is checkpointed away."""
    slices = _log_visits(enrolled)
    with FaceLibrary.open(enrolled / "faceguard.db") as library:
        person = library.find_person_by_name("Grace Hopper")
        assert person is not None
        library.remove_person(person.id, forget_event_crops=True)
        assert library.list_templates(person.id) == []
        with library.upkeep("checkpointing", transaction=False) as conn:
            assert checkpoint(conn)
        assert _found(enrolled, slices) > len(slices) // 2


def test_secure_delete_alone_is_not_enough(enrolled: Path) -> None:
    """Without VACUUM, zeroing freed content still leaves parts of event crops in the gaps
    of pages that SQLite rebuilt: the erasure must rewrite the file."""
    slices = _log_visits(enrolled)
    with FaceLibrary.open(enrolled / "faceguard.db") as library:
        person = library.find_person_by_name("Grace Hopper")
        assert person is not None
        result = erase_person(library, person.id, vacuum=False)
        assert result.checkpointed and result.templates == 2
    assert _found(enrolled, slices) > 0


def test_erase_is_refused_while_a_kiosk_runs_and_for_unknown_names(
        enrolled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    with KioskLock(enrolled) as lock:
        assert lock.acquire(exclusive=False)
        assert main(["--data-dir", str(enrolled), "people", "erase", "Grace Hopper"]) \
            == EXIT_ERROR
        assert "close the kiosk, then erase Grace Hopper" in capsys.readouterr().err
    assert main(["--data-dir", str(enrolled), "people", "erase", "Nobody"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == "faceguard: no person named 'Nobody'\n"
    with FaceLibrary.open(enrolled / "faceguard.db") as library:
        assert len(library.list_people()) == 2


# -- the notice -----------------------------------------------------------------------------

def test_the_notice_states_the_settings(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    save_settings(Settings(kiosk_name="Front <door>", retention_events_days=45,
                           retention_unknown_crops_hours=12, retention_audit_days=0,
                           retention_contact="Jo Bloggs, HR, room 2.14"), data)
    out = tmp_path / "notice.html"
    assert main(["--data-dir", str(data), "notice", "--out", str(out)]) == EXIT_OK
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "@media print" in page
    assert "45 days" in page and "12 hours" in page
    assert "until deleted by an administrator" in page  # audit 0: kept
    assert "Front &lt;door&gt;" in page and "<door>" not in page
    assert "Jo Bloggs, HR, room 2.14" in page
    assert "http" not in page and "<script" not in page  # self-contained
    assert not (data / "faceguard.db").exists()  # the notice never creates a library
    assert main(["--data-dir", str(data), "notice", "--out",
                 str(tmp_path / "no" / "n.html")]) == EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err
