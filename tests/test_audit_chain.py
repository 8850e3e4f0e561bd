"""The tamper-evident audit trail (issue 12): every row hashed over its content and the row
before; `faceguard audit verify` finds an edited, deleted, inserted or reordered row that
someone changed with raw SQL in the file; purges and erasures keep the chain whole."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from faceguard.cli import EXIT_ERROR, EXIT_OK, main
from faceguard.library import audit_chain
from faceguard.library.database import MIGRATION_NAMES, MIGRATIONS, FaceLibrary
from faceguard.library.retention import Retention, erase_person, purge

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _library_with_entries(folder: Path, count: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "faceguard.db"
    with FaceLibrary.open(path) as library:
        for number in range(count):
            library.audit("cli", "settings_changed", {"n": number})
    return path


def _raw(path: Path, *statements: str) -> None:
    """Change the file behind FaceGuard's back, as someone with a plain SQLite shell would."""
    conn = sqlite3.connect(path)
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


def _verify(path: Path) -> audit_chain.ChainReport:
    with FaceLibrary.open(path) as library, library.reading("verifying") as conn:
        return audit_chain.verify(conn)


def test_each_row_is_chained_to_the_one_before(tmp_path: Path) -> None:
    path = _library_with_entries(tmp_path / "data")
    report = _verify(path)
    assert report.ok and report.rows == 6
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT id, timestamp, actor, action, details, prev_hash, row_hash "
                        "FROM audit ORDER BY id").fetchall()
    conn.close()
    prev = audit_chain.GENESIS
    for row_id, stamp, actor, action, details, stored_prev, stored in rows:
        assert stored_prev == prev
        assert stored == audit_chain.row_hash(prev, row_id, stamp, actor, action, details)
        prev = stored
    assert report.head_hash == prev


@pytest.mark.parametrize(("tamper", "expected"), [
    ("UPDATE audit SET details = '{\"n\": 99}' WHERE id = 3", "audit row 3 (settings_changed "
     "by cli) was edited"),
    ("UPDATE audit SET actor = 'someone else' WHERE id = 1", "audit row 1 (settings_changed "
     "by someone else) was edited"),
    ("DELETE FROM audit WHERE id = 4", "audit row 5 does not follow row 3"),
    ("DELETE FROM audit WHERE id = 1", "audit row 2 does not follow the first row"),
    ("DELETE FROM audit WHERE id = 6", "the newest audit rows are missing"),
    ("UPDATE audit SET timestamp = '2020-01-01T00:00:00.000000+00:00' WHERE id = 2",
     "audit row 2 (settings_changed by cli) was edited"),
])
def test_verify_finds_an_edited_or_deleted_row(tmp_path: Path, tamper: str,
                                               expected: str) -> None:
    path = _library_with_entries(tmp_path / "data")
    _raw(path, tamper)
    report = _verify(path)
    assert not report.ok
    assert any(problem.startswith(expected) for problem in report.problems), report.problems


def test_verify_finds_reordered_rows(tmp_path: Path) -> None:
    """Swapping two rows (their ids, hashes and all) breaks both their hashes and links."""
    path = _library_with_entries(tmp_path / "data")
    _raw(path, "UPDATE audit SET id = -2 WHERE id = 2", "UPDATE audit SET id = 2 WHERE id = 3",
         "UPDATE audit SET id = 3 WHERE id = -2")
    report = _verify(path)
    assert "audit row 2 (settings_changed by cli) was edited or moved: its content does not "\
        "match its hash" in report.problems
    assert any(p.startswith("audit row 2 does not follow row 1") for p in report.problems)


def test_a_row_slipped_in_with_a_recomputed_hash_still_breaks_the_next_link(
        tmp_path: Path) -> None:
    path = _library_with_entries(tmp_path / "data")
    conn = sqlite3.connect(path)
    prev = conn.execute("SELECT row_hash FROM audit WHERE id = 2").fetchone()[0]
    stamp = "2026-01-01T00:00:00.000000+00:00"
    forged = audit_chain.row_hash(prev, 100, stamp, "cli", "add_person", "{}")
    # Inserting through a plain connection fails (the chaining trigger's function is
    # FaceGuard's); a forger drops the trigger first.
    with pytest.raises(sqlite3.OperationalError, match="fg_audit_hash"):
        conn.execute("INSERT INTO audit (timestamp, actor, action, details) VALUES "
                     "('x', 'y', 'z', '')")
    conn.execute("DROP TRIGGER audit_chain_insert")
    conn.execute("INSERT INTO audit VALUES (100, ?, 'cli', 'add_person', '{}', ?, ?)",
                 (stamp, prev, forged))
    conn.commit()
    conn.close()
    report = _verify(path)
    assert not report.ok  # row 100 comes after row 6, whose hash it does not follow
    assert any(p.startswith("audit row 100 does not follow row 6") for p in report.problems)


def test_existing_rows_are_chained_when_the_library_is_upgraded(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "faceguard.db"
    conn = sqlite3.connect(path)
    MIGRATIONS.apply(Database(conn), stop_before=MIGRATION_NAMES[MIGRATION_NAMES.index(
        "010_audit_chain")])
    for number in range(3):
        conn.execute("INSERT INTO audit (timestamp, actor, action, details) VALUES (?, 'cli', "
                     "'old_entry', ?)", (f"2025-01-0{number + 1}T00:00:00.000000+00:00",
                                         json.dumps({"n": number})))
    conn.commit()
    conn.close()
    with FaceLibrary.open(path) as library:
        library.audit("cli", "new_entry")
    report = _verify(path)
    assert report.ok and report.rows == 4


def test_purge_anchors_the_chain_and_it_still_verifies(tmp_path: Path) -> None:
    path = _library_with_entries(tmp_path / "data", count=5)
    _raw(path, "UPDATE audit SET timestamp = '2020-01-01T00:00:00.000000+00:00' WHERE id <= 3")
    # Editing timestamps by hand breaks the chain; recompute it as a migration would, so
    # this test starts from an intact chain with three old rows.
    conn = sqlite3.connect(path)
    audit_chain.register(conn)
    audit_chain.rechain(conn, 1)
    conn.commit()
    conn.close()
    assert _verify(path).ok
    with FaceLibrary.open(path) as library:
        planned = purge(library, Retention(0, 0, 730), now=NOW, dry_run=True)
        assert planned.audit == 3
        done = purge(library, Retention(0, 0, 730), now=NOW)
        assert done.audit == 3
        assert [e.action for e in library.list_audit(newest_first=False)] == \
            ["settings_changed", "settings_changed", "purge"]
    report = _verify(path)
    assert report.ok and report.anchor_id == 3 and report.rows == 3
    _raw(path, "DELETE FROM audit WHERE id = 4")  # deleting the first kept row is still found
    assert any(p.startswith("audit row 5 does not follow the first row after the last purge")
               for p in _verify(path).problems)


def test_purge_deletes_only_an_unbroken_run_of_old_rows(tmp_path: Path) -> None:
    """An old row after a newer one (the clock was set back) stays, so no gap opens."""
    path = _library_with_entries(tmp_path / "data", count=4)
    conn = sqlite3.connect(path)
    audit_chain.register(conn)
    conn.execute("UPDATE audit SET timestamp = '2020-01-01T00:00:00.000000+00:00' WHERE id IN "
                 "(1, 3)")
    audit_chain.rechain(conn, 1)
    conn.commit()
    conn.close()
    with FaceLibrary.open(path) as library:
        assert purge(library, Retention(0, 0, 730), now=NOW).audit == 1
    assert _verify(path).ok


def test_erasure_rewrites_old_details_and_rechains(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "faceguard.db"
    with FaceLibrary.open(path) as library:
        person = library.add_person("Grace Hopper", "E7", actor="cli")
        library.audit("cli", "settings_changed", {"x": 1})
        library.update_person(person.id, department="Navy", actor="cli")
        library.add_event(NOW - timedelta(hours=1), "kiosk-1", person.id, 0.9, "known")
        result = erase_person(library, person.id, vacuum=False)
        assert result.audit_entries == 1  # add_person named her; update_person only her id
    report = _verify(path)
    assert report.ok, report.problems
    assert b"Grace Hopper" not in path.read_bytes()


def test_audit_verify_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "data"
    path = _library_with_entries(folder)
    assert main(["--data-dir", str(folder), "audit", "verify"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("audit log intact: 6 entries; head ")
    head = out.split("head ")[1].strip()
    assert main(["--data-dir", str(folder), "audit", "verify", "--expect", head]) == EXIT_OK
    capsys.readouterr()
    # Someone rewrites an entry and recomputes the whole chain: only the noted head shows it.
    conn = sqlite3.connect(path)
    audit_chain.register(conn)
    conn.execute("UPDATE audit SET details = '{}' WHERE id = 2")
    audit_chain.rechain(conn, 2)
    conn.commit()
    conn.close()
    assert main(["--data-dir", str(folder), "audit", "verify"]) == EXIT_OK
    assert main(["--data-dir", str(folder), "audit", "verify", "--expect", head]) == EXIT_ERROR
    assert "was rewritten since then" in capsys.readouterr().err
    _raw(path, "UPDATE audit SET action = 'nothing_to_see' WHERE id = 5")
    assert main(["--data-dir", str(folder), "audit", "verify", "--json"]) == EXIT_ERROR
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["rows"] == 6
    assert report["problems"][0].startswith("audit row 5 (nothing_to_see by cli) was edited")
    assert main(["--data-dir", str(tmp_path / "missing"), "audit", "verify"]) == EXIT_ERROR
    assert not (tmp_path / "missing").exists()
