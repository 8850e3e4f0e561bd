"""Turning encryption at rest on for a library, and unlocking an encrypted one.

:func:`enable` stores a new wrapped data key (or unwraps the existing one: a second run
resumes), then seals the face columns (:data:`~faceguard.library.crypto.SEALED_COLUMNS`)
in batches, each one transaction: a ``kill -9`` leaves every row either plaintext (seal
NULL) or sealed, never half, and running it again carries on. When no plaintext row is
left the state becomes ``on`` (audited with the counts) and the file is rewritten with
``secure_delete`` (VACUUM), so no freed page keeps the plaintext.

:func:`unlock` gives a library its :class:`~faceguard.library.crypto.BlobCipher` from the
keyring or the passphrase; the library then opens sealed blobs on reading and seals new
ones on writing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from faceguard.errors import LibraryError
from faceguard.library import crypto
from faceguard.library.crypto import (
    KEY_RECORD,
    LIBRARY_ID_KEY,
    SEALED_COLUMNS,
    STATE_KEY,
    BlobCipher,
    KeyRecord,
)
from faceguard.library.database import FaceLibrary

BATCH_ROWS = 200


def _meta(library: FaceLibrary, key: str) -> str | None:
    with library.reading("reading the encryption state") as conn:
        row = conn.execute("SELECT value FROM library_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def state(library: FaceLibrary) -> str:
    """``off``, ``encrypting`` (started, not finished: run enable again) or ``on``."""
    return _meta(library, STATE_KEY) or "off"


def key_record(library: FaceLibrary) -> KeyRecord | None:
    """The stored wrapped key (LibraryError when damaged), or None when never enabled."""
    text = _meta(library, KEY_RECORD)
    return None if text is None else KeyRecord.from_json(text)


@dataclass(frozen=True)
class Counts:
    """Face blobs by kind."""

    plain: int
    sealed: int


def counts(library: FaceLibrary) -> Counts:
    """How many face blobs are still plaintext and how many are sealed."""
    plain = sealed = 0
    with library.reading("counting encrypted face data") as conn:
        for table, column, seal in SEALED_COLUMNS:
            plain += int(conn.execute(f"SELECT count(*) FROM {table} WHERE {column} IS NOT "
                                      f"NULL AND {seal} IS NULL").fetchone()[0])
            sealed += int(conn.execute(f"SELECT count(*) FROM {table} WHERE {seal} IS NOT "
                                       "NULL").fetchone()[0])
    return Counts(plain, sealed)


def _kek(library: FaceLibrary, record: KeyRecord, passphrase: str | None) -> bytes:
    if record.kek == "keyring":
        library_id = _meta(library, LIBRARY_ID_KEY) or ""
        return crypto.keyring_kek(library_id, create=False)
    if passphrase is None:
        raise LibraryError("the face data of this library is encrypted: give its passphrase "
                           f"with --passphrase-file FILE or ${crypto.PASSPHRASE_ENV}")
    return crypto.passphrase_kek(passphrase, record.salt, record.n, record.r, record.p)


def unlock(library: FaceLibrary, passphrase: str | None) -> BlobCipher | None:
    """Hand the library its cipher (None: never encrypted). LibraryError for a wrong
    passphrase, a missing keyring entry or a damaged key record; nothing is changed."""
    record = key_record(library)
    if record is None:
        return None
    cipher = BlobCipher(crypto.unwrap_key(record, _kek(library, record, passphrase)))
    library.set_cipher(cipher)
    return cipher


@dataclass(frozen=True)
class EnableResult:
    """What :func:`enable` did."""

    sealed: int  # rows sealed by this run
    already: int  # rows that were sealed before (an earlier, interrupted run)
    seconds: float
    kek: str
    vacuumed: bool


def enable(library: FaceLibrary, *, passphrase: str | None, use_keyring: bool, actor: str,
           progress: Callable[[int, int], None] | None = None,
           batch_rows: int = BATCH_ROWS) -> EnableResult:
    """Encrypt the library's face data in place (see the module notes); resumable."""
    started = time.perf_counter()
    record = key_record(library)
    if record is None:
        if use_keyring:
            library_id = _meta(library, LIBRARY_ID_KEY) or ""
            kek, salt, kind = crypto.keyring_kek(library_id, create=True), b"", "keyring"
        else:
            if passphrase is None:
                raise LibraryError("give a passphrase (--passphrase-file FILE or "
                                   f"${crypto.PASSPHRASE_ENV}), or use the keyring")
            problem = crypto.passphrase_problem(passphrase)
            if problem:
                raise LibraryError(problem)
            salt = secrets.token_bytes(16)
            kek, kind = crypto.passphrase_kek(passphrase, salt), "passphrase"
        data_key = secrets.token_bytes(crypto.KEY_BYTES)
        record = crypto.wrap_key(data_key, kek, kind, salt)
        cipher = BlobCipher(data_key)
        with library.upkeep("storing the encryption key") as conn:
            conn.execute("INSERT INTO library_meta (key, value) VALUES (?, ?)",
                         (KEY_RECORD, record.to_json()))
            conn.execute("INSERT OR REPLACE INTO library_meta (key, value) VALUES (?, ?)",
                         (STATE_KEY, "encrypting"))
            library.audit(actor, "encryption_started", {"kek": kind,
                                                        "key_id": cipher.key_id})
        library.set_cipher(cipher)
    else:
        cipher = unlock(library, passphrase) or cipher_missing()
    before = counts(library)
    total = before.plain
    done = 0
    for table, column, seal in SEALED_COLUMNS:
        while True:
            with library.upkeep("encrypting face data") as conn:
                rows = conn.execute(
                    f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL AND {seal} "
                    f"IS NULL ORDER BY id LIMIT ?", (batch_rows,)).fetchall()
                for row_id, blob in rows:
                    sealed, tag = cipher.seal(table, column, int(row_id), bytes(blob))
                    conn.execute(f"UPDATE {table} SET {column} = ?, {seal} = ? WHERE id = ? "
                                 f"AND {seal} IS NULL", (sealed, tag, row_id))
            done += len(rows)
            if progress is not None and rows:
                progress(done, total)
            if len(rows) < batch_rows:
                break
    with library.upkeep("finishing encryption") as conn:
        conn.execute("INSERT OR REPLACE INTO library_meta (key, value) VALUES (?, 'on')",
                     (STATE_KEY,))
        library.audit(actor, "encryption_enabled", {"sealed": done, "already": before.sealed,
                                                    "kek": record.kek})
    from faceguard.library.retention import compact  # retention builds on the library too

    _seconds, vacuumed, _ = compact(library)
    return EnableResult(done, before.sealed, time.perf_counter() - started, record.kek,
                        vacuumed)


def cipher_missing() -> BlobCipher:
    """Raise: a key record without a cipher cannot happen unless it was removed meanwhile."""
    raise LibraryError("the library's encryption key record disappeared; nothing was changed")
