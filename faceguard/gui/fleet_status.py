"""The fleet sync in the window: "Sync: synced, last sync 10:42" / "Sync: offline since 10:42,
37 entries waiting" in the status bar.

The sync itself runs on the core's own thread (:class:`faceguard.fleet.sync_loop.SyncLoop`,
started by :meth:`AppContext.start_sync`); it never runs on the GUI thread. Its status after
each round reaches the window only through :attr:`FleetStatusBridge.changed`, a Qt signal,
so it arrives queued in the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QWidget

from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.fleet.status import FleetStatus
from faceguard.fleet.sync_loop import SyncLoop
from faceguard.gui import theme

ROLE = {"synced": "ok", "syncing": "hint", "offline": "error"}


class FleetStatusBridge(QObject):
    """Carries the sync loop's status (emitted on its thread) into the GUI thread."""

    changed = Signal(object)  # FleetStatus


class FleetStatusLabel(QLabel):
    """The kiosk's sync state; hidden on a kiosk that has not joined a fleet."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Sync: -", parent)
        self.setObjectName("fleetState")
        self.state = ""
        self.setVisible(False)

    def show_status(self, status: object) -> None:
        """Show a :class:`FleetStatus` (the slot of :attr:`FleetStatusBridge.changed`)."""
        assert isinstance(status, FleetStatus)
        self.state = status.state
        self.setVisible(status.joined)
        self.setText(f"Sync: {status.text()}")
        tip = f"fleet server {status.server}" if status.server else ""
        if status.last_error:
            tip += f"; last problem: {status.last_error}"
        self.setToolTip(tip)
        theme.set_role(self, ROLE.get(status.state, "hint"))


def watch_fleet(ctx: AppContext, bridge: FleetStatusBridge) -> SyncLoop | None:
    """Show the context's sync state now and start its background sync (a joined kiosk);
    returns the loop, whose ``on_status`` the window clears when it stops watching (the
    loop belongs to the context and may outlive the window)."""
    try:
        bridge.changed.emit(ctx.fleet_status())
        loop = ctx.start_sync(on_status=bridge.changed.emit)
    except FaceGuardError as error:  # a broken join never stops the kiosk
        bridge.changed.emit(FleetStatus(joined=True, last_error=str(error),
                                        offline_since=None))
        return None
    if loop is not None:
        loop.on_status = bridge.changed.emit  # a loop started earlier reports here too
    return loop
