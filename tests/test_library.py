"""Face library database: schema migrations, PRAGMAs, transactions, error handling, API."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlite_utils import Database

import faceguard.library.database as database
import faceguard.library.store as store
from faceguard.errors import ImageError, LibraryError
from faceguard.library.database import (
    MIGRATION_NAMES,
    MIGRATIONS,
    SCHEMA_VERSION,
    FaceLibrary,
)
from faceguard.vision.image_io import decode_jpeg, encode_jpeg

MODEL = "model-a"
T0 = datetime(2026, 11, 28, 16, 14, 58, 123456, tzinfo=UTC)


def crop(rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small solid-colour RGB crop encoded as JPEG."""
    image = np.zeros((24, 24, 3), dtype=np.uint8)
    image[:] = rgb
    return encode_jpeg(image)


def unit(seed: int, dim: int = 8) -> np.ndarray:
    vec = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vec / np.linalg.norm(vec)


@pytest.fixture
def lib() -> FaceLibrary:
    return FaceLibrary.in_memory()


def make_file_library(path: Path) -> None:
    """A file library holding one person with one template and one event."""
    with FaceLibrary.open(path) as library:
        person = library.add_person("Alice", "E1")
        library.add_template(person.id, unit(1), MODEL, 0.9, crop())
        library.add_event(T0, "k1", person.id, 0.8, "known")


def snapshot(path: Path) -> tuple[list[str], int, int]:
    """People names and template/event counts, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM people ORDER BY id")]
        templates = conn.execute("SELECT count(*) FROM templates").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    return names, templates, events


# -- migrations and PRAGMAs ----------------------------------------------------------------------


def test_fresh_in_memory_library_is_at_latest_schema(lib: FaceLibrary) -> None:
    assert lib.schema_version() == SCHEMA_VERSION == len(MIGRATION_NAMES)
    assert [m.name for m in MIGRATIONS.applied(lib.db)] == list(MIGRATION_NAMES)
    assert {"people", "templates", "events", "audit"} <= set(lib.db.table_names())
    assert lib.path is None and not lib.read_only


def test_reopening_file_library_does_not_rerun_migrations(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    make_file_library(path)
    conn = sqlite3.connect(path)
    before = conn.execute("SELECT name, applied_at FROM _sqlite_migrations").fetchall()
    conn.close()
    with FaceLibrary.open(path) as library:
        assert library.schema_version() == SCHEMA_VERSION
        assert [p.name for p in library.list_people()] == ["Alice"]
    conn = sqlite3.connect(path)
    after = conn.execute("SELECT name, applied_at FROM _sqlite_migrations").fetchall()
    conn.close()
    assert after == before and len(after) == SCHEMA_VERSION


def test_older_schema_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(path)
    MIGRATIONS.apply(db, stop_before="003_events")
    db.table("people").insert(
        {"name": "Bob", "name_key": "bob", "active": 1, "created": T0.isoformat()}
    )
    db.close()
    with FaceLibrary.open(path) as library:
        assert library.schema_version() == SCHEMA_VERSION
        bob = library.find_person_by_name("BOB")
        assert bob is not None
        library.add_event(T0, "k1", bob.id, 0.9, "known")
        assert library.count_events() == 1


def test_newer_schema_is_refused_without_changes(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    make_file_library(path)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('faceguard', '999_future', 'x')"
        )
    conn.close()
    with pytest.raises(LibraryError, match="newer FaceGuard"):
        FaceLibrary.open(path)
    assert snapshot(path) == (["Alice"], 1, 1)


def test_file_library_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    with FaceLibrary.open(tmp_path / "lib.db") as library:
        assert library.journal_mode() == "wal"
        assert library.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert library.db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_in_memory_library_has_foreign_keys(lib: FaceLibrary) -> None:
    assert lib.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(LibraryError, match="no person"):
        lib.add_template(42, unit(1), MODEL, 0.5, crop())


# -- people --------------------------------------------------------------------------------------


def test_people_crud_and_case_insensitive_unique_names(lib: FaceLibrary) -> None:
    alice = lib.add_person("  Alice   Smith ", "E1", "Sales")
    assert alice.name == "Alice Smith" and alice.active and alice.template_count == 0
    with pytest.raises(LibraryError, match="already exists"):
        lib.add_person("alice smith")
    with pytest.raises(LibraryError, match="Employee id"):
        lib.add_person("Someone Else", "E1")
    with pytest.raises(LibraryError, match="empty"):
        lib.add_person("   ")
    bob = lib.add_person("bob")
    assert [p.name for p in lib.list_people()] == ["Alice Smith", "bob"]
    assert lib.find_person_by_name("ALICE SMITH") == lib.get_person(alice.id)
    assert lib.get_person(999) is None

    renamed = lib.rename_person(bob.id, "Robert")
    assert renamed.name == "Robert"
    with pytest.raises(LibraryError, match="already exists"):
        lib.rename_person(bob.id, "ALICE smith")
    updated = lib.update_person(alice.id, department=None, employee_id="E9")
    assert (updated.department, updated.employee_id, updated.name) == (None, "E9", "Alice Smith")

    lib.update_person(alice.id, active=False)
    assert [p.name for p in lib.list_people()] == ["Robert"]
    assert len(lib.list_people(include_inactive=True)) == 2
    assert lib.find_person_by_name("alice smith") is None
    assert lib.find_person_by_name("alice smith", include_inactive=True) is not None
    newcomer = lib.add_person("Alice Smith")  # the name is free again
    with pytest.raises(LibraryError, match="already exists"):
        lib.update_person(alice.id, active=True)
    assert lib.get_person(newcomer.id) is not None
    with pytest.raises(LibraryError, match="no person"):
        lib.rename_person(12345, "X")


def test_writes_with_actor_are_audited_in_the_same_transaction(lib: FaceLibrary) -> None:
    person = lib.add_person("Carol", actor="admin")
    lib.rename_person(person.id, "Caroline", actor="admin")
    lib.audit("admin", "export", {"rows": 3})
    entries = lib.list_audit()
    assert [e.action for e in entries] == ["export", "update_person", "add_person"]
    assert entries[0].details == '{"rows": 3}'
    assert [e.action for e in lib.list_audit(limit=1, newest_first=False)] == ["add_person"]


def test_remove_person_cascades_templates_and_keeps_events(lib: FaceLibrary) -> None:
    alice = lib.add_person("Alice")
    bob = lib.add_person("Bob")
    lib.add_template(alice.id, unit(1), MODEL, 0.9, crop())
    lib.add_template(alice.id, unit(2), MODEL, 0.8, crop())
    lib.add_template(bob.id, unit(3), MODEL, 0.7, crop())
    lib.add_event(T0, "k1", alice.id, 0.9, "known", crop())
    lib.add_event(T0 + timedelta(hours=1), "k1", alice.id, 0.9, "known", crop())
    assert lib.get_person(alice.id).template_count == 2  # type: ignore[union-attr]

    lib.remove_person(alice.id, forget_event_crops=True)

    assert lib.get_person(alice.id) is None
    assert [t.person_id for t in lib.list_templates()] == [bob.id]
    events = lib.query_events()
    assert [(e.person_id, e.person_name, e.has_crop) for e in events] == [
        (None, "Alice", False)
    ] * 2
    assert lib.count_events(person="alice") == 2  # removed people stay searchable by name
    with pytest.raises(LibraryError, match="no person"):
        lib.remove_person(alice.id)


def test_failing_write_rolls_back_everything(lib: FaceLibrary) -> None:
    alice = lib.add_person("Alice")
    lib.add_template(alice.id, unit(1), MODEL, 0.9, crop())
    # Make the last statement of remove_person (its audit row) fail after the delete ran.
    lib.db.execute(
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit "
        "BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END"
    )
    with pytest.raises(LibraryError, match="audit log unavailable"):
        lib.remove_person(alice.id, actor="admin")
    person = lib.get_person(alice.id)
    assert person is not None and person.template_count == 1
    assert not lib.db.conn.in_transaction


# -- templates and re-embedding ------------------------------------------------------------------


def test_add_template_validates_and_normalises(lib: FaceLibrary) -> None:
    person = lib.add_person("Dan")
    template = lib.add_template(person.id, np.full(8, 3.0), MODEL, 0.75, crop(), "dan.jpg")
    assert (template.dim, template.model_id, template.source) == (8, MODEL, "dan.jpg")
    stored = lib.get_template_vector(template.id)
    assert stored.dtype == np.float32
    np.testing.assert_allclose(stored, np.full(8, 1 / np.sqrt(8)), rtol=1e-6)
    assert lib.get_template_crop(template.id) == crop()
    with pytest.raises(ValueError):
        lib.add_template(person.id, np.zeros(8), MODEL, 0.5, crop())
    with pytest.raises(ValueError):
        lib.add_template(person.id, np.ones((2, 8)), MODEL, 0.5, crop())
    with pytest.raises(ValueError):
        lib.add_template(person.id, np.array([1.0, np.nan]), MODEL, 0.5, crop())
    with pytest.raises(ValueError, match="JPEG"):
        lib.add_template(person.id, np.ones(8), MODEL, 0.5, b"\x89PNG....")
    assert len(lib.list_templates(person_id=person.id)) == 1


def test_templates_matrix_orders_by_person_and_filters(lib: FaceLibrary) -> None:
    a, b, c = (lib.add_person(n) for n in ("A", "B", "C"))
    lib.add_template(b.id, unit(1), MODEL, 0.9, crop())
    lib.add_template(a.id, unit(2), MODEL, 0.9, crop())
    lib.add_template(b.id, unit(3), MODEL, 0.9, crop())
    lib.add_template(a.id, unit(4), "other-model", 0.9, crop())
    lib.add_template(c.id, unit(5), MODEL, 0.9, crop())
    lib.update_person(c.id, active=False)
    ids, matrix = lib.templates_matrix(MODEL)
    assert ids.tolist() == [a.id, b.id, b.id]
    assert matrix.dtype == np.float32 and matrix.shape == (3, 8)
    np.testing.assert_allclose(matrix, np.stack([unit(2), unit(1), unit(3)]), rtol=1e-6)
    assert lib.templates_matrix(MODEL, include_inactive=True)[0].tolist() == [
        a.id,
        b.id,
        b.id,
        c.id,
    ]
    empty_ids, empty = lib.templates_matrix("nothing")
    assert empty_ids.shape == (0,) and empty.shape == (0, 0)
    assert lib.model_ids() == {MODEL: 4, "other-model": 1}


def test_crop_round_trip_is_rgb() -> None:
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    image[..., 0] = 250  # red in RGB
    decoded = decode_jpeg(encode_jpeg(image))
    assert decoded.shape == (16, 16, 3)
    assert decoded[..., 0].mean() > 200 and decoded[..., 2].mean() < 50
    with pytest.raises(ImageError):
        decode_jpeg(b"\xff\xd8 not really a jpeg")


def colour_embedder(calls: list[int]) -> database.EmbedFn:
    """A fake model: the vector is the crop's mean RGB followed by ones."""

    def embed(crops: list[np.ndarray]) -> np.ndarray:
        calls.append(len(crops))
        rows = [np.concatenate([c.reshape(-1, 3).mean(axis=0), np.ones(5)]) for c in crops]
        return np.asarray(rows, dtype=np.float32)

    return embed


def test_reembed_updates_vectors_and_model_ids(lib: FaceLibrary) -> None:
    person = lib.add_person("Eve")
    red = lib.add_template(person.id, unit(1), "old", 0.9, crop((250, 0, 0)))
    blue = lib.add_template(person.id, unit(2), "old", 0.9, crop((0, 0, 250)))
    current = lib.add_template(person.id, unit(3), "new", 0.9, crop())
    assert [t.id for t in lib.templates_needing_reembed("new")] == [red.id, blue.id]
    calls: list[int] = []
    progress: list[tuple[int, int]] = []

    result = lib.reembed(
        "new", colour_embedder(calls), batch_size=1, progress=lambda *p: progress.append(p)
    )

    assert (result.updated, result.failed) == (2, [])
    assert calls == [1, 1] and progress == [(1, 2), (2, 2)]
    assert lib.model_ids() == {"new": 3}
    assert lib.templates_needing_reembed("new") == []
    red_vec, blue_vec = lib.get_template_vector(red.id), lib.get_template_vector(blue.id)
    assert red_vec[0] > 0.5 and red_vec[2] < 0.1  # the crop reached the model as RGB
    assert blue_vec[2] > 0.5 and blue_vec[0] < 0.1
    assert np.linalg.norm(red_vec) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(lib.get_template_vector(current.id), unit(3), rtol=1e-6)
    assert lib.templates_matrix("new")[1].shape == (3, 8)


def test_reembed_skips_damaged_crops_and_is_all_or_nothing(lib: FaceLibrary) -> None:
    person = lib.add_person("Fay")
    good = lib.add_template(person.id, unit(1), "old", 0.9, crop())
    bad = lib.add_template(person.id, unit(2), "old", 0.9, b"\xff\xd8 damaged")

    def failing(crops: list[np.ndarray]) -> np.ndarray:
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        lib.reembed("new", failing)
    assert lib.model_ids() == {"old": 2}
    np.testing.assert_allclose(lib.get_template_vector(good.id), unit(1), rtol=1e-6)

    result = lib.reembed("new", colour_embedder([]))
    assert (result.updated, result.failed) == (1, [bad.id])
    assert lib.model_ids() == {"new": 1, "old": 1}


# -- events --------------------------------------------------------------------------------------


def test_events_query_filters_and_pagination(lib: FaceLibrary) -> None:
    alice = lib.add_person("Alice")
    bob = lib.add_person("Bob")
    for i in range(6):
        who = alice.id if i % 2 == 0 else None
        lib.add_event(
            T0 + timedelta(minutes=i), f"k{i % 2}", who, 0.5 + i / 20, "known" if who else "unknown"
        )
    lib.add_event(T0 + timedelta(minutes=10), "k1", bob.id, None, "granted", crop())

    assert lib.count_events() == 7
    assert [e.person_name for e in lib.query_events(person="ALICE")] == ["Alice"] * 3
    assert lib.count_events(person=alice.id) == 3
    assert lib.count_events(decision="unknown") == 3
    assert lib.count_events(kiosk_id="k1") == 4
    window = lib.query_events(start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=3))
    assert [e.timestamp for e in window] == [T0 + timedelta(minutes=m) for m in (1, 2)]
    page = lib.query_events(limit=2, offset=1)
    assert [e.timestamp.minute for e in page] == [15, 16]
    newest = lib.query_events(limit=1, newest_first=True, with_crops=True)[0]
    assert newest.person_id == bob.id and newest.similarity is None
    assert newest.has_crop and newest.crop_jpeg == crop()
    assert lib.get_event_crop(newest.id) == crop()
    assert lib.query_events()[0].timestamp == T0  # microseconds and UTC round-trip
    local = T0.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert lib.count_events(start=local, end=local + timedelta(seconds=1)) == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        lib.add_event(datetime(2026, 1, 1), "k1", None, None, "unknown")
    with pytest.raises(LibraryError, match="no person"):
        lib.add_event(T0, "k1", 999, 0.9, "known")


def test_renamed_person_events_show_current_name(lib: FaceLibrary) -> None:
    person = lib.add_person("Gus")
    lib.add_event(T0, "k1", person.id, 0.9, "known")
    lib.rename_person(person.id, "Gustav")
    assert lib.query_events()[0].person_name == "Gustav"
    assert lib.count_events(person="gustav") == 1


# -- opening problems: nothing is changed --------------------------------------------------------


def test_missing_directory_gives_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "library.db"
    with pytest.raises(LibraryError, match="does not exist"):
        FaceLibrary.open(target)
    assert not target.parent.exists()


def test_directory_in_place_of_file(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="folder"):
        FaceLibrary.open(tmp_path)


def test_garbage_file_is_rejected_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    garbage = np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes()
    path.write_bytes(garbage)
    with pytest.raises(LibraryError, match="not a database"):
        FaceLibrary.open(path)
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library.db"]


def test_foreign_sqlite_database_is_rejected_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(LibraryError, match="not a FaceGuard face library"):
        FaceLibrary.open(path)
    assert path.read_bytes() == before


def test_damaged_database_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    with FaceLibrary.open(path) as library:
        library.db.table("people").insert_all(
            {"name": f"P{i}", "name_key": f"p{i}", "department": "x" * 150, "created": "x"}
            for i in range(200)
        )
        library.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = library.db.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    # Keep the header page intact, scribble over the rest.
    data[page_size:] = b"\xa5" * (len(data) - page_size)
    path.write_bytes(bytes(data))
    with pytest.raises(LibraryError) as info, FaceLibrary.open(path) as library:
        library.list_people()
    message = str(info.value)
    assert "damaged" in message and "\n" not in message


def open_read_only_copy(path: Path, monkeypatch: pytest.MonkeyPatch) -> FaceLibrary:
    """Open a chmod 0o444 library as a normal user would.

    Tests run as root, and root may write any file whatever its mode, so the kernel's
    permission answer is simulated: ``os.access`` reports the file as not writable, which is
    what it reports for an ordinary user. FaceLibrary then opens it with SQLite's
    ``mode=ro``, so SQLite itself refuses writes.
    """
    path.chmod(0o444)
    if os.access(path, os.W_OK):  # running as root
        real_access = os.access

        def access(p: os.PathLike[str] | str, mode: int) -> bool:
            if Path(p) == path and mode & os.W_OK:
                return False
            return real_access(p, mode)

        monkeypatch.setattr(store.os, "access", access)
    return FaceLibrary.open(path)


def test_read_only_file_opens_read_only_and_refuses_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "library.db"
    make_file_library(path)
    before = snapshot(path)
    library = open_read_only_copy(path, monkeypatch)
    try:
        assert library.read_only
        assert [p.name for p in library.list_people()] == ["Alice"]
        assert library.count_events() == 1
        alice = library.list_people()[0]
        attempts = [
            lambda: library.add_person("Bob"),
            lambda: library.rename_person(alice.id, "Alicia"),
            lambda: library.remove_person(alice.id),
            lambda: library.add_event(T0, "k1", None, None, "unknown"),
            lambda: library.audit("admin", "x"),
            lambda: library.reembed("new", colour_embedder([])),
        ]
        for attempt in attempts:
            with pytest.raises(LibraryError, match="read-only"):
                attempt()
    finally:
        library.close()
    assert snapshot(path) == before


def test_sqlite_itself_refuses_writes_in_read_only_mode(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    make_file_library(path)
    library = FaceLibrary.open(path, read_only=True)
    try:
        library._read_only = False  # bypass the library's own check: SQLite must still refuse
        with pytest.raises(LibraryError, match="read-only"):
            library.add_person("Bob")
    finally:
        library.close()
    assert snapshot(path) == (["Alice"], 1, 1)


def test_read_only_open_of_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="does not exist"):
        FaceLibrary.open(tmp_path / "absent.db", read_only=True)
    assert not (tmp_path / "absent.db").exists()


def test_locked_database_gives_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    make_file_library(path)
    library = FaceLibrary.open(path, busy_timeout_s=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE people SET department = 'held' WHERE id = 1")
        with pytest.raises(LibraryError, match="in use by another program"):
            library.add_person("Bob")
        assert [p.name for p in library.list_people()] == ["Alice"]  # reads still work (WAL)
        other.execute("ROLLBACK")
        library.add_person("Bob")
        assert [p.name for p in library.list_people()] == ["Alice", "Bob"]
    finally:
        other.close()
        library.close()


def test_exclusively_locked_database_fails_to_open(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    make_file_library(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("PRAGMA locking_mode = EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE people SET department = 'held' WHERE id = 1")
        with pytest.raises(LibraryError, match="in use by another program"):
            FaceLibrary.open(path, busy_timeout_s=0.2)
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert snapshot(path) == (["Alice"], 1, 1)
