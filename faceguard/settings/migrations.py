"""Settings files from older schema versions, brought up to :data:`SCHEMA_VERSION` on load."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


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
