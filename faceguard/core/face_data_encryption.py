"""Encryption at rest as the application offers it: whether the face data is locked, unlocking
it with the passphrase, its status, and encrypting it in place (the work itself is
:mod:`faceguard.library.encryption`). A base of :class:`faceguard.core.context.AppContext`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from faceguard.library import encryption
from faceguard.library.crypto import keyring_backend
from faceguard.library.database import FaceLibrary


@dataclass(frozen=True)
class EncryptionStatus:
    """What :meth:`FaceDataEncryption.encryption_status` reports."""

    state: str  # off, encrypting, on
    kek: str | None  # passphrase, keyring, or None (never enabled)
    counts: encryption.Counts
    keyring_available: bool


class HasLibrary(Protocol):
    """What the verbs need of the context: its face library (opened on first use)."""

    @property
    def library(self) -> FaceLibrary: ...


class FaceDataEncryption:
    """The encryption verbs of an application context, on its face library."""

    def face_data_locked(self: HasLibrary) -> bool:
        """True when the library's face data is encrypted and no key was given yet (no
        keyring entry, no passphrase): the window then asks for the passphrase."""
        return self.library.encrypted() and not self.library.unlocked

    def unlock_face_data(self: HasLibrary, passphrase: str) -> None:
        """Open an encrypted library's face data with its passphrase (LibraryError when it
        is wrong; nothing changes)."""
        encryption.unlock(self.library, passphrase)

    def encryption_status(self: HasLibrary) -> EncryptionStatus:
        """Whether the face data is encrypted, with what key, how far, and whether this
        computer has a keyring to keep the key in."""
        record = encryption.key_record(self.library)
        return EncryptionStatus(encryption.state(self.library),
                                record.kek if record else None, encryption.counts(self.library),
                                keyring_backend() is not None)

    def enable_encryption(self: HasLibrary, *, passphrase: str | None, use_keyring: bool,
                          actor: str, progress: Callable[[int, int], None] | None = None
                          ) -> encryption.EnableResult:
        """Encrypt the face data in place (resumable; see faceguard.library.encryption)."""
        return encryption.enable(self.library, passphrase=passphrase, use_keyring=use_keyring,
                                 actor=actor, progress=progress)
