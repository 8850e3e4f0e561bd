"""Encryption at rest (issue 12): face templates and crops sealed with AES-256-GCM, bound to
their row; the data key wrapped by a passphrase (scrypt); enabling in place, resumable; a
wrong passphrase, a damaged key record or a tampered ciphertext is a clear error that
changes nothing; every command that opens the library unlocks it the same way."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from faceguard.cli import EXIT_ERROR, EXIT_OK, main
from faceguard.errors import LibraryError
from faceguard.library import crypto, encryption
from faceguard.library.database import FaceLibrary

PASS = "correct horse battery staple"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _crop(tag: bytes) -> bytes:
    return b"\xff\xd8" + tag * 40


def _fill(path: Path, people: int = 3) -> dict[str, bytes]:
    """People with a template each and events with crops; the raw bytes that must vanish."""
    secrets: dict[str, bytes] = {}
    rng = np.random.default_rng(3)
    with FaceLibrary.open(path) as library:
        for number in range(people):
            person = library.add_person(f"Person {number}")
            vector = rng.standard_normal(128).astype(np.float32)
            template = library.add_template(person.id, vector, "m", 0.9,
                                            _crop(b"tpl%03d" % number))
            secrets[f"vector {template.id}"] = library.get_template_vector(template.id) \
                .astype("<f4").tobytes()
            secrets[f"crop {template.id}"] = b"tpl%03d" % number * 40
            event = library.add_event(NOW, "kiosk-1", person.id, 0.9, "known",
                                      _crop(b"evt%03d" % number))
            secrets[f"event {event.id}"] = b"evt%03d" % number * 40
    return secrets


def _file_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_sealing_binds_each_blob_to_its_row_and_column() -> None:
    cipher = crypto.BlobCipher(bytes(range(32)))
    sealed, seal = cipher.seal("templates", "embedding", 7, b"0123456789abcdef")
    assert len(sealed) == 16 and len(seal) == crypto.SEAL_BYTES and sealed != b"0123456789abcdef"
    assert cipher.open("templates", "embedding", 7, sealed, seal) == b"0123456789abcdef"
    for table, column, row in (("templates", "embedding", 8), ("templates", "crop_jpeg", 7),
                               ("events", "embedding", 7)):
        with pytest.raises(LibraryError, match="was changed or moved"):
            cipher.open(table, column, row, sealed, seal)
    flipped = bytes([sealed[0] ^ 1]) + sealed[1:]
    with pytest.raises(LibraryError, match=f"{'templates'} row 7 does not open"):
        cipher.open("templates", "embedding", 7, flipped, seal)
    with pytest.raises(LibraryError, match="cut short"):
        cipher.open("templates", "embedding", 7, sealed, seal[:10])


def test_enable_encrypts_in_place_and_the_plaintext_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "faceguard.db"
    secrets = _fill(path)
    assert all(s in _file_bytes(path) for s in secrets.values())
    with FaceLibrary.open(path) as library:
        before = library.templates_matrix("m")
        result = encryption.enable(library, passphrase=PASS, use_keyring=False, actor="cli")
        assert (result.sealed, result.already, result.kek) == (9, 0, "passphrase")
        assert encryption.state(library) == "on"
        assert encryption.counts(library) == encryption.Counts(0, 9)
        after = library.templates_matrix("m")
        assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    found = [name for name, s in secrets.items() if s in _file_bytes(path)]
    assert found == []
    with FaceLibrary.open(path) as library:  # a new process: locked until unlocked
        assert library.list_people()  # names and the log still read
        with pytest.raises(LibraryError, match="give its passphrase"):
            library.templates_matrix("m")
        with pytest.raises(LibraryError, match="Nothing was stored"):
            library.add_event(NOW, "kiosk-1", None, 0.1, "unknown", _crop(b"new"))
        encryption.unlock(library, PASS)
        assert np.array_equal(library.templates_matrix("m")[1], before[1])
        event = library.add_event(NOW, "kiosk-1", None, 0.1, "unknown", _crop(b"fresh!"))
        assert library.get_event_crop(event.id) == _crop(b"fresh!")
        assert [e.crop_jpeg for e in library.query_events(with_crops=True)][-1] == \
            _crop(b"fresh!")
        actions = [e.action for e in library.list_audit()]
        assert actions[:2] == ["encryption_enabled", "encryption_started"]
    assert b"fresh!" * 40 not in _file_bytes(path)


def test_a_wrong_passphrase_or_damaged_key_record_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "faceguard.db"
    _fill(path, people=1)
    with FaceLibrary.open(path) as library:
        encryption.enable(library, passphrase=PASS, use_keyring=False, actor="cli")
    def content() -> list[tuple[object, ...]]:
        conn = sqlite3.connect(path)
        rows = [tuple(r) for table in ("templates", "events", "audit", "library_meta")
                for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]
        conn.close()
        return rows

    snapshot = content()
    with FaceLibrary.open(path) as library:
        with pytest.raises(LibraryError, match="the passphrase is wrong; nothing was changed"):
            encryption.unlock(library, "not the passphrase at all")
        with pytest.raises(LibraryError, match="the passphrase is wrong"):
            encryption.enable(library, passphrase="not the passphrase at all",
                              use_keyring=False, actor="cli")
    assert content() == snapshot
    conn = sqlite3.connect(path)
    record = conn.execute("SELECT value FROM library_meta WHERE key = 'encryption.key'") \
        .fetchone()[0]
    conn.execute("UPDATE library_meta SET value = ? WHERE key = 'encryption.key'",
                 (record[: len(record) // 2],))  # the key record cut short
    conn.commit()
    conn.close()
    with FaceLibrary.open(path) as library, \
            pytest.raises(LibraryError, match="damaged or cut short"):
        encryption.unlock(library, PASS)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE library_meta SET value = ? WHERE key = 'encryption.key'", (record,))
    # A tampered ciphertext: one bit of the template's crop flipped.
    conn.execute("UPDATE templates SET crop_jpeg = CAST(zeroblob(length(crop_jpeg)) AS BLOB) "
                 "WHERE id = 1")
    conn.commit()
    conn.close()
    with FaceLibrary.open(path) as library:
        encryption.unlock(library, PASS)
        with pytest.raises(LibraryError, match="crop_jpeg of templates row 1 does not open"):
            library.get_template_crop(1)
        assert library.get_template_vector(1).shape == (128,)  # the rest still opens


def test_enabling_resumes_after_an_interruption(tmp_path: Path) -> None:
    path = tmp_path / "faceguard.db"
    secrets = _fill(path, people=5)
    calls = [0]

    def interrupt(done: int, total: int) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt  # stands for the kill: the batch in hand was committed

    with FaceLibrary.open(path) as library, pytest.raises(KeyboardInterrupt):
        encryption.enable(library, passphrase=PASS, use_keyring=False, actor="cli",
                          progress=interrupt, batch_rows=2)
    with FaceLibrary.open(path) as library:
        assert encryption.state(library) == "encrypting"
        partial = encryption.counts(library)
        assert partial.sealed == 4 and partial.plain == 11
        result = encryption.enable(library, passphrase=PASS, use_keyring=False, actor="cli")
        assert (result.sealed, result.already) == (11, 4)
        assert encryption.state(library) == "on"
    assert not [s for s in secrets.values() if s in _file_bytes(path)]


def test_encryption_commands_and_a_locked_library(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    _fill(folder / "faceguard.db", people=2)
    base = ["--data-dir", str(folder)]
    monkeypatch.delenv(crypto.PASSPHRASE_ENV, raising=False)
    assert main([*base, "encryption", "status"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("encryption: off; the face templates and face "
                                              "images are stored unencrypted")
    assert main([*base, "encryption", "enable"]) == EXIT_ERROR
    assert "give a passphrase" in capsys.readouterr().err
    weak = tmp_path / "weak.txt"
    weak.write_text("short\n", encoding="utf-8")
    assert main([*base, "--passphrase-file", str(weak), "encryption", "enable"]) == EXIT_ERROR
    assert "at least 12 characters" in capsys.readouterr().err
    secret = tmp_path / "pass.txt"
    secret.write_text(PASS + "\n", encoding="utf-8")
    assert main([*base, "--passphrase-file", str(secret), "encryption", "enable"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("encryption on: sealed 6 face blobs")
    monkeypatch.setenv(crypto.PASSPHRASE_ENV, PASS)
    assert main([*base, "encryption", "status", "--json"]) == EXIT_OK
    status = json.loads(capsys.readouterr().out)
    assert (status["state"], status["kek"], status["sealed"], status["plain"]) == \
        ("on", "passphrase", 6, 0)
    out = tmp_path / "p0.zip"
    assert main([*base, "people", "export", "Person 0", "--out", str(out)]) == EXIT_OK
    monkeypatch.setenv(crypto.PASSPHRASE_ENV, "a wrong passphrase here")
    assert main([*base, "people", "list"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("faceguard: cannot open the encrypted face data: the passphrase is "
                          "wrong") and "Traceback" not in err
    monkeypatch.delenv(crypto.PASSPHRASE_ENV)
    assert main([*base, "people", "list"]) == EXIT_OK  # names need no key
    assert main([*base, "people", "export", "Person 0", "--out", str(out)]) == EXIT_ERROR
    assert "give its passphrase" in capsys.readouterr().err


def test_the_key_encryption_key_in_the_operating_system_keyring(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """With a real keyring backend (keyrings.alt's file keyring, in a folder of this test):
    no passphrase is needed; an entry that vanished is a clear error."""
    keyring = pytest.importorskip("keyring")
    file_backend = pytest.importorskip("keyrings.alt.file")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    backend = file_backend.PlaintextKeyring()
    monkeypatch.setattr(backend, "file_path", str(tmp_path / "xdg" / "keyring.cfg"),
                        raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        folder = tmp_path / "data"
        folder.mkdir()
        _fill(folder / "faceguard.db", people=1)
        monkeypatch.delenv(crypto.PASSPHRASE_ENV, raising=False)
        base = ["--data-dir", str(folder)]
        assert main([*base, "encryption", "enable", "--keyring"]) == EXIT_OK
        assert "key wrapped by the operating system's keyring" in capsys.readouterr().out
        with FaceLibrary.open(folder / "faceguard.db") as library:
            record = encryption.key_record(library)
            assert record is not None and record.kek == "keyring"
        assert main([*base, "people", "export", "Person 0", "--out",
                     str(tmp_path / "p.zip")]) == EXIT_OK  # unlocked from the keyring
        with FaceLibrary.open(folder / "faceguard.db") as library, \
                library.reading("reading the id") as conn:
            library_id = conn.execute("SELECT value FROM library_meta WHERE key = "
                                      "'library.id'").fetchone()[0]
        keyring.delete_password(crypto.KEYRING_SERVICE, f"library-{library_id}")
        capsys.readouterr()
        assert main([*base, "people", "list"]) == EXIT_ERROR
        err = capsys.readouterr().err
        assert "is missing from the operating system's keyring" in err and "Traceback" not in err
    finally:
        keyring.set_keyring(previous)
