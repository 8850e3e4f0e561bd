"""Opening the data folder's face library: made private when created, refused where a
command only reads and there is none, and given its key when it is encrypted."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from faceguard.errors import LibraryError
from faceguard.library import encryption
from faceguard.library.crypto import read_passphrase
from faceguard.library.database import FaceLibrary
from faceguard.paths import make_private_dir, make_private_file

LIBRARY_FILE = "faceguard.db"


def open_library(data_dir: Path, library_path: Path, *, create: bool,
                 passphrase_file: str | os.PathLike[str] | None) -> FaceLibrary:
    """The face library at ``library_path``; the data folder is created when missing.

    With ``create=False`` (commands that only read) neither the folder nor the database is
    ever created: a missing one is a LibraryError that says where it was looked for.
    """
    if not create and not library_path.is_file():
        missing = data_dir if not data_dir.is_dir() else library_path
        raise LibraryError(
            f"there is no face library in the data folder {data_dir} ({missing} does "
            "not exist); "
            "check --data-dir or $FACEGUARD_DATA_DIR, or enrol someone first")
    if not data_dir.exists():
        if not create:
            raise LibraryError(f"data folder {data_dir} does not exist")
        try:
            make_private_dir(data_dir)
        except OSError as error:
            raise LibraryError(
                f"cannot create the data folder {data_dir}: {error.strerror}") from error
    if create:
        with contextlib.suppress(OSError):  # a read-only folder: FaceLibrary.open says so
            make_private_file(library_path)
    library = FaceLibrary.open(library_path)
    try:
        unlock_with_stored_key(library, passphrase_file)
    except BaseException:
        library.close()
        raise
    return library


def unlock_with_stored_key(library: FaceLibrary,
                           passphrase_file: str | os.PathLike[str] | None) -> None:
    """Give an encrypted library its key: from the keyring it was encrypted with, or the
    passphrase (``passphrase_file``, else $FACEGUARD_PASSPHRASE). Without a passphrase
    it stays locked: everything but the face data can be read. A wrong passphrase, a
    missing keyring entry or a damaged key record is a LibraryError."""
    record = encryption.key_record(library) if library.encrypted() else None
    if record is None:
        return
    passphrase = None if record.kek == "keyring" else read_passphrase(passphrase_file)
    if record.kek == "keyring" or passphrase is not None:
        encryption.unlock(library, passphrase)
