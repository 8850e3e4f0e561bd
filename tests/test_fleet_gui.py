"""The fleet in the window: the status bar follows the background sync, and a server that
accepts connections but never answers does not stall the GUI thread."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from faceguard.core.context import AppContext
from faceguard.fleet.server_schema import init_server
from faceguard.gui.main_window import MainWindow
from faceguard.gui.tasks import ThreadRunner
from tests.conftest import make_data_dir, run_cli


@pytest.fixture()
def joined(pg_dsn: str, tmp_path: Path, open_context: Callable[..., AppContext]) -> AppContext:
    init_server(pg_dsn)
    folder = make_data_dir(tmp_path, min_face_px=40, fleet_interval_s=1.0,
                           fleet_backoff_max_s=1.0)
    assert run_cli(folder, "kiosk", "join", "--dsn", pg_dsn, "--name", "lobby") == 0
    return open_context(folder)


class Blackhole:
    """A loopback port that accepts connections and never answers (a hung server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_status_bar_shows_synced_then_offline_with_entries_waiting(
        qtbot, joined: AppContext, pg_cluster) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow(joined, ThreadRunner(), source="9", ask_first_pin=False)
    qtbot.addWidget(window)
    window.show()
    label = window.status_bar.fleet_label
    qtbot.waitUntil(lambda: label.text().startswith("Sync: synced, last sync "), timeout=20_000)
    assert label.isVisible() and label.state == "synced"
    pg_cluster.stop("immediate")
    try:
        for _ in range(3):
            joined.library.add_event(datetime.now(UTC), "lobby", None, None, "unknown")
        qtbot.waitUntil(lambda: label.text().endswith("3 entries waiting"), timeout=20_000)
        assert label.state == "offline" and label.text().startswith("Sync: offline since ")
    finally:
        pg_cluster.start()
    qtbot.waitUntil(lambda: label.state == "synced", timeout=30_000)
    window.shutdown()


def test_a_hung_server_never_blocks_the_window(
        qtbot, joined: AppContext) -> None:  # type: ignore[no-untyped-def]
    hole = Blackhole()
    config = json.loads((joined.data_dir / "fleet.json").read_text())
    config["port"] = hole.port
    (joined.data_dir / "fleet.json").write_text(json.dumps(config))
    try:
        window = MainWindow(joined, ThreadRunner(), source="9", ask_first_pin=False)
        qtbot.addWidget(window)
        window.show()
        gaps: list[float] = []
        last = [time.monotonic()]

        def tick() -> None:
            now = time.monotonic()
            gaps.append(now - last[0])
            last[0] = now

        from PySide6.QtCore import QTimer

        timer = QTimer(window)
        timer.timeout.connect(tick)
        timer.start(20)
        qtbot.waitUntil(lambda: window.status_bar.fleet_label.state == "offline", timeout=30_000)
        qtbot.wait(1500)  # more rounds against the hung server, with back-off
        timer.stop()
        loop = joined._sync_loop
        assert loop is not None and loop.failures >= 1
        assert max(gaps) < 0.5, f"the GUI thread stalled {max(gaps):.2f} s"
        window.shutdown()
    finally:
        hole.close()


def test_the_logs_view_filters_by_door(  # type: ignore[no-untyped-def]
        qtbot, tmp_path: Path, open_context: Callable[..., AppContext]) -> None:
    from faceguard.gui.logs import LogsDialog

    context = open_context(make_data_dir(tmp_path))
    for door, count in (("front", 3), ("side", 2)):
        for _ in range(count):
            context.library.add_event(datetime.now(UTC), door, None, None, "unknown")
    dialog = LogsDialog(context)
    qtbot.addWidget(dialog)
    assert not dialog.door.isHidden()
    assert [dialog.door.itemText(i) for i in range(dialog.door.count())] == [
        "All doors", "front", "side"]
    assert dialog.model.total == 5
    dialog.door.setCurrentIndex(dialog.door.findData("side"))
    assert dialog.model.total == 2
    assert {e.kiosk_id for e in dialog.model.events} == {"side"}
