"""Typed application settings: one place for defaults, validation, schema migration and storage.

The package's public names are the ones every other module imports from
``faceguard.settings``; they are made in:

- :mod:`~faceguard.settings.checks`: the validators a declaration names;
- :mod:`~faceguard.settings.schema`: :class:`Settings`, each field declared once;
- :mod:`~faceguard.settings.options`: :data:`OPTIONS`, the declarations as ``faceguard config``
  and the settings dialog see them;
- :mod:`~faceguard.settings.migrations`: older files brought up to :data:`SCHEMA_VERSION`;
- :mod:`~faceguard.settings.storage`: ``settings.json`` loaded (never failing) and saved
  (atomically).
"""

from faceguard.settings.migrations import SCHEMA_VERSION, migrate
from faceguard.settings.options import OPTIONS, Option, option
from faceguard.settings.schema import (
    DEFAULT_LIVENESS_MODE,
    DEFAULT_LIVENESS_THRESHOLD,
    DEFAULT_MATCH_MARGIN,
    DEFAULT_MATCH_THRESHOLD,
    DEFAULT_MODEL_FILE,
    DEFAULT_THRESHOLD_FAR,
    DEFAULT_THRESHOLD_NOTE,
    DOOR_DRIVERS,
    LIVENESS_MODES,
    LOCK_TYPES,
    NOT_ABOVE,
    SERIAL_PRESETS,
    Settings,
    SettingsError,
    setting,
)
from faceguard.settings.storage import SETTINGS_FILE, load_settings, save_settings, settings_path

__all__ = [
    "DEFAULT_LIVENESS_MODE", "DEFAULT_LIVENESS_THRESHOLD", "DEFAULT_MATCH_MARGIN",
    "DEFAULT_MATCH_THRESHOLD", "DEFAULT_MODEL_FILE", "DEFAULT_THRESHOLD_FAR",
    "DEFAULT_THRESHOLD_NOTE", "DOOR_DRIVERS", "LIVENESS_MODES", "LOCK_TYPES", "NOT_ABOVE",
    "OPTIONS", "SCHEMA_VERSION", "SERIAL_PRESETS", "SETTINGS_FILE", "Option", "Settings",
    "SettingsError", "load_settings", "migrate", "option", "save_settings", "setting",
    "settings_path",
]
