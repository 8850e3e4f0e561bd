"""Encryption at rest on the library's side: the data key's cipher opens sealed face blobs on
reading and seals new ones on writing, each bound to its table, column and row id
(:mod:`faceguard.library.crypto`)."""

from __future__ import annotations

import sqlite3
from typing import Any

from faceguard.errors import LibraryError
from faceguard.library.crypto import KEY_RECORD, PASSPHRASE_ENV, BlobCipher


class BlobSealing:
    """The cipher part of :class:`faceguard.library.store.LibraryStore` (which sets the
    connection, its lock and the cipher)."""

    _conn: sqlite3.Connection
    _lock: Any  # threading.RLock
    _cipher: BlobCipher | None

    def set_cipher(self, cipher: BlobCipher | None) -> None:
        """Give the library the data key's cipher (:func:`faceguard.library.encryption.unlock`):
        sealed face blobs open on reading, new ones are sealed on writing."""
        with self._lock:
            self._cipher = cipher

    @property
    def unlocked(self) -> bool:
        """True when the library holds its data key's cipher."""
        return self._cipher is not None

    def encrypted(self) -> bool:
        """True once encryption was turned on (new face blobs are then always sealed)."""
        try:
            row = self._conn.execute("SELECT 1 FROM library_meta WHERE key = ?",
                                     (KEY_RECORD,)).fetchone()
        except sqlite3.OperationalError:  # a library from before migration 011
            return False
        return row is not None

    def _locked_message(self) -> str:
        return ("the face data of this library is encrypted: give its passphrase with "
                f"--passphrase-file FILE or ${PASSPHRASE_ENV} (or use the keyring it was "
                "encrypted with)")

    def _next_id(self, table: str) -> int:
        """The id the next row of ``table`` gets (inside the write transaction), so that a
        sealed blob can be bound to it before the row is written."""
        return int(self._conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
                   .fetchone()[0])

    def _seal(self, table: str, column: str, row_id: int, plain: bytes | None
              ) -> tuple[bytes | None, bytes | None]:
        """``(blob, seal)`` to store: sealed when encryption is on, else ``(plain, None)``."""
        if plain is None or not self.encrypted():
            return plain, None
        if self._cipher is None:
            raise LibraryError(f"Nothing was stored: {self._locked_message()}.")
        return self._cipher.seal(table, column, row_id, plain)

    def _unseal(self, table: str, column: str, row_id: int, blob: bytes | None,
                seal: bytes | None) -> bytes | None:
        """The plaintext of a stored blob (sealed or not)."""
        if blob is None or seal is None:
            return None if blob is None else bytes(blob)
        if self._cipher is None:
            raise LibraryError(f"Cannot read the face data: {self._locked_message()}.")
        return self._cipher.open(table, column, row_id, bytes(blob), bytes(seal))
