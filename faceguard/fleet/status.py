"""What a sync round did (:class:`SyncReport`) and the kiosk's sync state as the status bar
and ``faceguard kiosk status`` show it (:class:`FleetStatus`, from the library alone)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from faceguard.fleet import local
from faceguard.fleet.config import load_config
from faceguard.library.database import FaceLibrary


@dataclass
class SyncReport:
    """What one round did."""

    uploaded_events: int = 0
    uploaded_other: int = 0
    pushed_people: int = 0
    pushed_templates: int = 0
    pushed_groups: int = 0
    applied: local.Applied = field(default_factory=local.Applied)
    cursor: int = 0
    waiting: int = 0  # still waiting for upload after the round

    @property
    def up_to_date(self) -> bool:
        return self.waiting == 0

    def to_json(self) -> dict[str, Any]:
        a = self.applied
        return {"uploaded_events": self.uploaded_events, "uploaded_other": self.uploaded_other,
                "pushed_people": self.pushed_people, "pushed_templates": self.pushed_templates,
                "pushed_groups": self.pushed_groups, "pulled": {
                    "people": a.people, "templates": a.templates, "groups": a.groups,
                    "holidays": a.holidays, "events": a.events, "removed": a.removed},
                "conflicts": a.conflicts, "cursor": self.cursor, "waiting": self.waiting,
                "up_to_date": self.up_to_date}


@dataclass(frozen=True)
class FleetStatus:
    """The kiosk's sync state, from the library alone (no network)."""

    joined: bool
    kiosk_name: str | None = None
    server: str | None = None
    waiting: int = 0
    last_sync: datetime | None = None
    offline_since: datetime | None = None
    last_error: str | None = None

    @property
    def state(self) -> str:
        if not self.joined:
            return "standalone"
        if self.offline_since is not None:
            return "offline"
        return "synced" if self.waiting == 0 and self.last_sync else "syncing"

    def text(self) -> str:
        """One line for the status bar: "synced, last sync 10:42", "offline since 10:42, 37
        entries waiting"."""
        if not self.joined:
            return "not in a fleet"
        entries = f"{self.waiting} {'entry' if self.waiting == 1 else 'entries'} waiting"
        if self.offline_since is not None:
            return f"offline since {_clock(self.offline_since)}, {entries}"
        last = f"last sync {_clock(self.last_sync)}" if self.last_sync else "not synced yet"
        if self.waiting:
            return f"syncing, {entries}, {last}"
        return f"synced, {last}"

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "text": self.text(), "kiosk": self.kiosk_name,
                "server": self.server, "waiting": self.waiting,
                "last_sync": self.last_sync and self.last_sync.isoformat(),
                "offline_since": self.offline_since and self.offline_since.isoformat(),
                "last_error": self.last_error}


def _clock(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%H:%M")


def _parse(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def fleet_status(library: FaceLibrary, data_dir: Path) -> FleetStatus:
    """The status line's facts: joined?, entries waiting, last sync, offline since."""
    config = load_config(data_dir)
    if config is None:
        return FleetStatus(joined=False)
    waiting = local.waiting(library).total
    return FleetStatus(True, config.kiosk_name, config.where(), waiting,
                       _parse(local.get_state(library, "last_sync")),
                       _parse(local.get_state(library, "offline_since")),
                       local.get_state(library, "last_error"))
