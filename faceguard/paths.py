"""Where FaceGuard finds its resources and keeps its data."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

APP_NAME = "FaceGuard"
DATA_DIR_ENV = "FACEGUARD_DATA_DIR"
TRAIN_CACHE_ENV = "FACEGUARD_TRAIN_CACHE"


def resources_dir() -> Path:
    """The resources folder, from a source checkout or a frozen (PyInstaller) build."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def models_dir() -> Path:
    """Folder holding the ONNX models and their manifest."""
    return resources_dir() / "models"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: explicit override, then $FACEGUARD_DATA_DIR, then the user data dir."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    # imported here: the training code imports this module on GPU machines that have only
    # PyTorch's stack, not the product's dependencies
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def train_cache_dir() -> Path:
    """Cache for training artefacts (crops, teacher vectors, checkpoints), outside the repo."""
    env = os.environ.get(TRAIN_CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "faceguard-train"


# The data folder holds biometric data: private to the user on POSIX (0700, files 0600).
# Windows keeps its per-user ACLs on %LOCALAPPDATA%; the modes below are not applied there.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with the folder itself private to the user.

    A folder that already exists is tightened to 0700 when it is this user's and others may
    read it. Raises OSError when it cannot be created.
    """
    existed = path.is_dir()
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if os.name == "posix":
        info = path.stat()
        if (not existed or info.st_uid == os.getuid()) and info.st_mode & 0o077:
            os.chmod(path, PRIVATE_DIR_MODE)
    return path


def make_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing; tighten this user's file to 0600.

    SQLite gives a database's ``-wal`` and ``-shm`` files the database file's mode, so
    creating the library file this way keeps them private too.
    """
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, PRIVATE_FILE_MODE)
        os.close(fd)
    if os.name == "posix":
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(path, PRIVATE_FILE_MODE)


def write_file_atomically(path: Path, data: str | bytes, *, prefix: str) -> None:
    """Replace ``path`` with ``data`` (text: UTF-8, in text mode) all at once: a temporary
    file beside it, fsync, rename. On failure (OSError) the previous file is untouched and
    no temporary file is left behind."""
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
        handle: IO[Any] = (os.fdopen(fd, "w", encoding="utf-8") if isinstance(data, str)
                           else os.fdopen(fd, "wb"))
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
