"""Typed application settings: one place for defaults, validation, schema migration and storage.

Settings live in ``<data_dir>/settings.json``. Loading never fails: a missing file gives the
defaults, and an unreadable file, a corrupt file or a bad value falls back to the default with a
warning logged. Unknown keys are ignored. Files from older schema versions are migrated on load.
Saving is atomic (temporary file in the same folder, fsync, rename).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceguard.errors import FaceGuardError
from faceguard.paths import data_dir as default_data_dir

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
SCHEMA_VERSION = 1

# Matching operating point. By default (match_threshold None) the threshold and margin come
# from the embedding model's calibration, recorded with the false-accept rate it was measured
# at in resources/models/manifest.json and MODEL_CARD.md. A number here overrides it.
DEFAULT_MATCH_THRESHOLD: float | None = None
DEFAULT_MATCH_MARGIN = 0.05
DEFAULT_THRESHOLD_FAR = 1e-3
DEFAULT_THRESHOLD_NOTE = "model calibration; see resources/models/MODEL_CARD.md"

DEFAULT_MODEL_FILE = "lite_mobilefacenet_96.onnx"


class SettingsError(FaceGuardError):
    """Settings have an invalid value or cannot be saved."""


def _check_str(value: Any, *, max_len: int = 256, allow_empty: bool = False) -> str | None:
    """Return a problem description for a bad string, or None when it is fine."""
    if not isinstance(value, str):
        return "must be text"
    if not allow_empty and not value.strip():
        return "must not be empty"
    if len(value) > max_len:
        return f"must be at most {max_len} characters"
    return None


def _check_float(value: Any, lo: float, hi: float, *, lo_open: bool = False) -> str | None:
    """Problem description for a number outside [lo, hi] (or (lo, hi])."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if not math.isfinite(value):
        return "must be a finite number"
    if value < lo or (lo_open and value == lo) or value > hi:
        left = "(" if lo_open else "["
        return f"must be in {left}{lo}, {hi}]"
    return None


def _check_int(value: Any, lo: int, hi: int) -> str | None:
    """Problem description for a non-integer or an integer outside [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number"
    if not lo <= value <= hi:
        return f"must be in [{lo}, {hi}]"
    return None


def _check_model_file(value: Any) -> str | None:
    """A model file is a plain file name inside the models folder."""
    problem = _check_str(value)
    if problem:
        return problem
    if Path(value).name != value or value in (".", ".."):
        return "must be a file name without a folder"
    return None


def _check_pin_hash(value: Any) -> str | None:
    """The PIN hash is absent (no PIN) or non-empty text."""
    if value is None:
        return None
    return _check_str(value, max_len=1024)


# Field name -> validator returning a problem description (None when valid).
_VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "kiosk_name": lambda v: _check_str(v, max_len=64),
    "source": lambda v: _check_str(v, max_len=1024),
    "model_file": _check_model_file,
    "match_threshold": lambda v: None if v is None else _check_float(v, -1.0, 1.0),
    "match_margin": lambda v: _check_float(v, 0.0, 2.0),
    "threshold_far": lambda v: _check_float(v, 0.0, 1.0, lo_open=True),
    "threshold_note": lambda v: _check_str(v, max_len=1024, allow_empty=True),
    "min_face_px": lambda v: _check_int(v, 16, 4096),
    "repeat_window_s": lambda v: _check_int(v, 0, 86_400),
    "votes_required": lambda v: _check_int(v, 1, 100),
    "votes_window": lambda v: _check_int(v, 1, 100),
    "pin_hash": _check_pin_hash,
    "admin_lock_s": lambda v: _check_int(v, 10, 86_400),
    "backups_keep": lambda v: _check_int(v, 0, 1000),
}


@dataclass(frozen=True)
class Settings:
    """All user-adjustable settings. Immutable: use :meth:`replace` to change values.

    ``match_threshold`` and ``match_margin`` form the open-set operating point: a face is
    recognised when its best person's cosine similarity is at least the threshold and beats
    the next person by at least the margin. ``threshold_far`` is the false-accept rate the
    threshold was calibrated for, ``threshold_note`` says where that number comes from.
    A person is accepted when ``votes_required`` of the last ``votes_window`` frames agree;
    the same person is not logged twice within ``repeat_window_s`` seconds.
    ``pin_hash`` is only read from older files: the admin PIN lives in the face library.
    """

    schema_version: int = SCHEMA_VERSION
    kiosk_name: str = "kiosk-1"
    source: str = "0"
    model_file: str = DEFAULT_MODEL_FILE
    match_threshold: float | None = DEFAULT_MATCH_THRESHOLD
    match_margin: float = DEFAULT_MATCH_MARGIN
    threshold_far: float = DEFAULT_THRESHOLD_FAR
    threshold_note: str = DEFAULT_THRESHOLD_NOTE
    min_face_px: int = 60
    repeat_window_s: int = 300
    votes_required: int = 3
    votes_window: int = 5
    pin_hash: str | None = field(default=None, repr=False)  # legacy: moved into the library
    admin_lock_s: int = 60
    backups_keep: int = 7  # automatic daily backups kept in backups/ (0: none)

    def __post_init__(self) -> None:
        """Reject invalid values with a user-facing message."""
        if self.schema_version != SCHEMA_VERSION:
            raise SettingsError(f"Setting schema_version must be {SCHEMA_VERSION}.")
        for name, check in _VALIDATORS.items():
            problem = check(getattr(self, name))
            if problem:
                raise SettingsError(f"Setting {name} {problem} (got {getattr(self, name)!r}).")
        if self.votes_required > self.votes_window:
            raise SettingsError(
                f"Setting votes_required ({self.votes_required}) must not exceed "
                f"votes_window ({self.votes_window})."
            )
        # Floats given as whole numbers in JSON ("threshold": 1) are kept as floats.
        for name in ("match_threshold", "match_margin", "threshold_far"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (validated; raises SettingsError)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable mapping of every setting."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Settings:
        """Build settings from a loaded mapping: migrate, drop unknown keys, default bad values.

        Every problem is logged as a warning; this never raises.
        """
        data = migrate(dict(raw))
        known = {f.name for f in dataclasses.fields(cls)} - {"schema_version"}
        for key in sorted(set(data) - known - {"schema_version"}):
            log.warning("Ignoring unknown setting %r.", key)
        values: dict[str, Any] = {}
        for name in sorted(known & set(data)):
            problem = _VALIDATORS[name](data[name])
            if problem:
                log.warning("Setting %s %s (got %r); using the default.", name, problem, data[name])
            else:
                values[name] = data[name]
        defaults = cls()
        required = values.get("votes_required", defaults.votes_required)
        window = values.get("votes_window", defaults.votes_window)
        if required > window:
            log.warning(
                "Setting votes_required (%s) exceeds votes_window (%s); using the defaults.",
                required,
                window,
            )
            values.pop("votes_required", None)
            values.pop("votes_window", None)
        return cls(**values)


def _migrate_0_to_1(data: dict[str, Any]) -> dict[str, Any]:
    """Unversioned files: ``threshold``/``margin``/``camera`` keys, camera index as a number."""
    renames = {"threshold": "match_threshold", "margin": "match_margin", "camera": "source"}
    for old, new in renames.items():
        if old in data and new not in data:
            data[new] = data.pop(old)
    source = data.get("source")
    if isinstance(source, int) and not isinstance(source, bool):
        data["source"] = str(source)
    return data


# from-version -> function producing the next version's mapping.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _migrate_0_to_1}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a settings mapping from its schema version up to :data:`SCHEMA_VERSION`.

    A file without ``schema_version`` is version 0. A newer version than this program knows is
    read as far as possible (unknown keys are ignored) with a warning.
    """
    version = data.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        log.warning("Settings schema_version %r is invalid; reading as the current one.", version)
        version = SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        log.warning(
            "Settings were written by a newer FaceGuard (schema %d, this one knows %d); "
            "reading what is understood.",
            version,
            SCHEMA_VERSION,
        )
        version = SCHEMA_VERSION
    while version < SCHEMA_VERSION:
        data = _MIGRATIONS[version](data)
        version += 1
        log.info("Migrated settings to schema version %d.", version)
    data["schema_version"] = SCHEMA_VERSION
    return data


def settings_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the settings file inside the data dir (see :func:`faceguard.paths.data_dir`)."""
    return default_data_dir(data_dir) / SETTINGS_FILE


def load_settings(data_dir: str | os.PathLike[str] | None = None) -> Settings:
    """Load settings from ``<data_dir>/settings.json``; defaults (with a warning) on any problem.

    The file is never modified by loading.
    """
    path = settings_path(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("Cannot read settings file %s (%s); using defaults.", path, exc)
        return Settings()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        log.warning("Settings file %s is corrupt (%s); using defaults.", path, exc)
        return Settings()
    if not isinstance(raw, dict):
        log.warning("Settings file %s does not hold a JSON object; using defaults.", path)
        return Settings()
    return Settings.from_dict(raw)


def save_settings(settings: Settings, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write settings atomically to ``<data_dir>/settings.json`` and return the path.

    The data folder is created if needed. On failure the previous file is left intact and a
    :class:`SettingsError` says why.
    """
    path = settings_path(data_dir)
    text = json.dumps(settings.to_dict(), indent=2, sort_keys=True) + "\n"
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SettingsError(f"Cannot save settings to {path}: {reason}.") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return path
