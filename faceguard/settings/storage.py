"""``<data_dir>/settings.json``: loading that never fails, and saving that is atomic.

Loading: a missing file gives the defaults, and an unreadable file, a corrupt file or a bad
value falls back to the default with a warning logged; unknown keys are ignored; files from
older schema versions are migrated. Saving: temporary file in the same folder, fsync, rename.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from faceguard.paths import data_dir as default_data_dir
from faceguard.paths import make_private_dir, write_file_atomically
from faceguard.settings.schema import Settings, SettingsError

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"


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
    try:
        if not path.parent.is_dir():
            make_private_dir(path.parent)
        write_file_atomically(path, text, prefix=".settings-")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SettingsError(f"Cannot save settings to {path}: {reason}.") from exc
    return path
