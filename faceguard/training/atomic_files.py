"""Files of the training caches and checkpoints written all at once (a temporary file beside
the target, then ``os.replace``): a job stopped half-way leaves the previous file or none.

Standard library and numpy only (the distillation script runs from a bare checkout).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np


def write_bytes_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """``write(handle)`` into ``<name>.tmp``, fsync, then rename over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_text_atomically(path: Path, text: str) -> None:
    """Write UTF-8 text through ``<name>.tmp`` and os.replace."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomically(path: Path, record: object) -> None:
    """JSON (indent 1) through ``<name>.tmp`` and os.replace."""
    write_text_atomically(path, json.dumps(record, indent=1))


def save_npy_atomically(path: Path, array: np.ndarray) -> None:
    """np.save through ``<name>.tmp.npy`` and os.replace."""
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def save_npz_atomically(path: Path, **arrays: np.ndarray | np.generic) -> None:
    """np.savez through ``<name>.tmp.npz`` and os.replace."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)
