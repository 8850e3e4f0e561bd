"""Encryption at rest for face data: template vectors, template crops and event crops.

- **Cipher.** AES-256-GCM (the ``cryptography`` package). Each value is sealed with a fresh
  random 96-bit nonce and the associated data ``faceguard:<table>.<column>:<row id>``, so a
  blob copied to another row or column does not open. The ciphertext has the plaintext's
  length and stays in its column (the vector's length check still holds); the nonce and the
  16-byte tag go to the column's ``*_seal`` column (migration 011). A row whose seal is NULL
  is plaintext: a library being encrypted holds both kinds, which is what makes
  :func:`encrypt_rows` resumable after a ``kill -9``.
- **Keys.** One random 256-bit data key per library. It is stored only wrapped (AES-256-GCM
  again) by a key-encryption key (KEK), in the library's ``library_meta`` row
  ``encryption.key`` (JSON, :class:`KeyRecord`), so backups stay encrypted and carry their
  key record. The KEK is either a random key kept in the operating system's keyring
  (``keyring`` package; service ``FaceGuard``, user ``library-<library id>``) or derived from
  an admin passphrase with scrypt (n=2^15, r=8, p=1, 16-byte salt; about 0.1 s here).
- **Errors.** A wrong passphrase, a keyring entry that is gone, a damaged or truncated key
  record, or a tampered ciphertext are each a :class:`~faceguard.errors.LibraryError` with a
  one-line reason; nothing is changed by any of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceguard.errors import LibraryError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SEAL_BYTES = NONCE_BYTES + TAG_BYTES
KEY_RECORD = "encryption.key"
STATE_KEY = "encryption.state"  # absent: off; "encrypting": being enabled; "on"
LIBRARY_ID_KEY = "library.id"
KDF_N, KDF_R, KDF_P = 2**15, 8, 1
_KDF_MAXMEM = 128 * 1024 * 1024
_WRAP_AAD = b"faceguard-data-key-v1"
KEYRING_SERVICE = "FaceGuard"
PASSPHRASE_ENV = "FACEGUARD_PASSPHRASE"
MIN_PASSPHRASE = 12

# (table, blob column, seal column): everything that holds a face.
SEALED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("templates", "embedding", "embedding_seal"),
    ("templates", "crop_jpeg", "crop_seal"),
    ("events", "crop_jpeg", "crop_seal"),
)


def install(execute: Any) -> None:
    """Migration step: a seal column beside each face column; the library's random id."""
    for table, _column, seal in SEALED_COLUMNS:
        execute(f"ALTER TABLE {table} ADD COLUMN {seal} BLOB")
    execute("INSERT OR IGNORE INTO library_meta (key, value) VALUES (?, ?)",
            (LIBRARY_ID_KEY, secrets.token_hex(8)))


def _aad(table: str, column: str, row_id: int) -> bytes:
    return f"faceguard:{table}.{column}:{int(row_id)}".encode()


class BlobCipher:
    """Seals and opens face blobs with the library's data key."""

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != KEY_BYTES:
            raise LibraryError("the data key must be 256 bits")
        self._aead = AESGCM(data_key)
        self.key_id = hashlib.sha256(b"faceguard-key-id" + data_key).hexdigest()[:16]

    def seal(self, table: str, column: str, row_id: int, plain: bytes) -> tuple[bytes, bytes]:
        """``(ciphertext, seal)``: the ciphertext has the plaintext's length; the seal is
        the nonce and the tag."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        out = self._aead.encrypt(nonce, bytes(plain), _aad(table, column, row_id))
        return out[:-TAG_BYTES], nonce + out[-TAG_BYTES:]

    def open(self, table: str, column: str, row_id: int, cipher: bytes, seal: bytes) -> bytes:
        """The plaintext; LibraryError when the blob, its seal or its row was changed."""
        seal = bytes(seal)
        if len(seal) != SEAL_BYTES:
            raise LibraryError(f"the encrypted {column} of {table} row {row_id} is damaged "
                               "(its seal is cut short); restore the library from a backup")
        try:
            return self._aead.decrypt(seal[:NONCE_BYTES], bytes(cipher) + seal[NONCE_BYTES:],
                                      _aad(table, column, row_id))
        except InvalidTag:
            raise LibraryError(f"the encrypted {column} of {table} row {row_id} does not "
                               "open: it was changed or moved after it was written; restore "
                               "the library from a backup") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class KeyRecord:
    """The wrapped data key as stored in ``library_meta``."""

    kek: str  # "passphrase" or "keyring"
    nonce: bytes
    wrapped: bytes
    key_id: str
    salt: bytes = b""
    n: int = KDF_N
    r: int = KDF_R
    p: int = KDF_P

    def to_json(self) -> str:
        """The stored text."""
        return json.dumps({"version": 1, "kek": self.kek, "nonce": _b64(self.nonce),
                           "wrapped": _b64(self.wrapped), "key_id": self.key_id,
                           "kdf": {"name": "scrypt", "salt": _b64(self.salt), "n": self.n,
                                   "r": self.r, "p": self.p}}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> KeyRecord:
        """Parse a stored record (LibraryError when it is damaged or cut short)."""
        damaged = ("the library's encryption key record is damaged or cut short; restore the "
                   "library from a backup (its face data cannot be opened without it)")
        try:
            raw = json.loads(text)
            kdf = raw["kdf"]
            record = cls(str(raw["kek"]), base64.b64decode(raw["nonce"], validate=True),
                         base64.b64decode(raw["wrapped"], validate=True), str(raw["key_id"]),
                         base64.b64decode(kdf["salt"], validate=True), int(kdf["n"]),
                         int(kdf["r"]), int(kdf["p"]))
        except (ValueError, KeyError, TypeError):
            raise LibraryError(damaged) from None
        if record.kek not in ("passphrase", "keyring") or len(record.nonce) != NONCE_BYTES \
                or len(record.wrapped) != KEY_BYTES + TAG_BYTES or \
                (record.kek == "passphrase" and (len(record.salt) < 16 or
                                                 not 2 <= record.n <= 2**20)):
            raise LibraryError(damaged)
        return record


def passphrase_kek(passphrase: str, salt: bytes, n: int = KDF_N, r: int = KDF_R,
                   p: int = KDF_P) -> bytes:
    """The key-encryption key derived from a passphrase (scrypt)."""
    return hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          dklen=KEY_BYTES, maxmem=_KDF_MAXMEM)


def wrap_key(data_key: bytes, kek: bytes, kind: str, salt: bytes = b"") -> KeyRecord:
    """Wrap the data key with a KEK into a storable record."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    wrapped = AESGCM(kek).encrypt(nonce, data_key, _WRAP_AAD)
    return KeyRecord(kind, nonce, wrapped, BlobCipher(data_key).key_id, salt)


def unwrap_key(record: KeyRecord, kek: bytes) -> bytes:
    """The data key; LibraryError when the KEK is wrong (wrong passphrase, other keyring)."""
    try:
        key = AESGCM(kek).decrypt(record.nonce, record.wrapped, _WRAP_AAD)
    except InvalidTag:
        what = "the passphrase is wrong" if record.kek == "passphrase" else \
            "the key in the operating system's keyring is not this library's"
        raise LibraryError(f"cannot open the encrypted face data: {what}; nothing was "
                           "changed") from None
    if BlobCipher(key).key_id != record.key_id:
        raise LibraryError("the library's encryption key record is damaged; restore the "
                           "library from a backup")
    return key


def passphrase_problem(passphrase: str) -> str | None:
    """Why a new passphrase is too weak (None when it will do)."""
    if len(passphrase) < MIN_PASSPHRASE:
        return f"the passphrase must have at least {MIN_PASSPHRASE} characters"
    if len(set(passphrase)) < 5:
        return "the passphrase must not repeat a few characters"
    return None


# -- the operating system's keyring (optional) --------------------------------------------------


def keyring_backend() -> Any | None:
    """The ``keyring`` module when it is installed and has a real backend, else None."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        if isinstance(keyring.get_keyring(), fail.Keyring):
            return None
    except Exception:  # a broken backend counts as none
        return None
    return keyring


def keyring_kek(library_id: str, *, create: bool) -> bytes:
    """The KEK kept in the OS keyring for this library (made when ``create``)."""
    backend = keyring_backend()
    if backend is None:
        raise LibraryError("no operating-system keyring is available here; use a passphrase "
                           f"(--passphrase-file FILE or ${PASSPHRASE_ENV})")
    user = f"library-{library_id}"
    stored = backend.get_password(KEYRING_SERVICE, user)
    if stored is None:
        if not create:
            raise LibraryError(f"the key of this library is missing from the operating "
                               f"system's keyring ({KEYRING_SERVICE}/{user}); without it the "
                               "face data cannot be opened")
        stored = _b64(secrets.token_bytes(KEY_BYTES))
        backend.set_password(KEYRING_SERVICE, user, stored)
    try:
        kek = base64.b64decode(stored, validate=True)
    except ValueError:
        kek = b""
    if len(kek) != KEY_BYTES:
        raise LibraryError(f"the keyring entry {KEYRING_SERVICE}/{user} is damaged")
    return kek


def read_passphrase(passphrase_file: str | os.PathLike[str] | None) -> str | None:
    """The passphrase from ``--passphrase-file`` (first line) or $FACEGUARD_PASSPHRASE."""
    if passphrase_file is not None:
        try:
            with open(passphrase_file, encoding="utf-8") as handle:
                line = handle.readline()
        except OSError as error:
            raise LibraryError(f"cannot read the passphrase file {passphrase_file}: "
                               f"{error.strerror or error}") from error
        text = line.rstrip("\r\n")
        if not text:
            raise LibraryError(f"the passphrase file {passphrase_file} is empty")
        return text
    return os.environ.get(PASSPHRASE_ENV) or None
