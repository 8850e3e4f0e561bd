"""The kiosk window's status bar: the video source and its state, frames per second and the
pipeline's time per frame, people enrolled, then the door, the fleet sync and the database."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from faceguard.core.context import AppContext
from faceguard.core.gate import Gate
from faceguard.errors import FaceGuardError
from faceguard.fleet.sync_loop import SyncLoop
from faceguard.gui.door_panel import DoorStatusBridge, DoorStatusLabel
from faceguard.gui.fleet_status import FleetStatusBridge, FleetStatusLabel, watch_fleet
from faceguard.kiosk.demo import DemoSession
from faceguard.kiosk.loop import LoopStats


class KioskStatusBar(QStatusBar):
    """The labels of the status bar; the door and the fleet labels follow their bridges."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source_label = QLabel("Source: —")
        self.fps_label = QLabel("— fps")
        self.latency_label = QLabel("pipeline — ms")
        self.people_label = QLabel("— people")
        self.db_label = QLabel("")
        self.door_label = DoorStatusLabel()
        self.door_bridge = DoorStatusBridge(self)
        self.door_bridge.changed.connect(self.door_label.show_status)
        self.setSizeGripEnabled(False)
        for label in (self.source_label, self.fps_label, self.latency_label,
                      self.people_label):
            self.addWidget(label)
        self.addPermanentWidget(self.door_label)
        self.fleet_label = FleetStatusLabel()
        self.fleet_bridge = FleetStatusBridge(self)
        self.fleet_bridge.changed.connect(self.fleet_label.show_status)
        self.addPermanentWidget(self.fleet_label)
        self.addPermanentWidget(self.db_label)
        self._sync: SyncLoop | None = None  # the watched context's background sync

    def watch(self, ctx: AppContext, gate: Gate | None) -> None:
        """Follow a context's fleet sync (a fleet kiosk syncs in the background) and a
        pipeline's door (lock state and alarms)."""
        self.stop_watching()
        self._sync = watch_fleet(ctx, self.fleet_bridge)
        if gate is not None:
            self.door_bridge.watch(gate)

    def stop_watching(self) -> None:
        """The sync loop (the context's, running on) no longer reports to this window."""
        if self._sync is not None:
            self._sync.on_status = None
            self._sync = None

    def show_source(self, description: str) -> None:
        self.source_label.setText(f"Source: {description}")

    def show_stats(self, stats: LoopStats) -> None:
        self.fps_label.setText(f"{stats.fps:.1f} fps")
        dropped = f", {stats.dropped} dropped" if stats.dropped else ""
        self.latency_label.setText(f"pipeline {stats.latency_ms:.0f} ms/frame{dropped}")

    def show_library(self, ctx: AppContext, demo: DemoSession | None) -> None:
        """People enrolled and the database (the demo's says so)."""
        try:
            people = len(ctx.library.list_people())
        except FaceGuardError as error:
            self.people_label.setText(str(error))
            return
        self.people_label.setText(f"{people} {'person' if people == 1 else 'people'} enrolled")
        path = ctx.library_path
        where = str(path)
        if demo is not None:
            where = "demo library" + (" (temporary)" if demo.temporary else "")
        read_only = " (read-only)" if ctx.library.read_only else ""
        self.db_label.setText(f"Database: {where}{read_only}")
        self.db_label.setToolTip(str(path))
