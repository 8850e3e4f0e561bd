"""Nothing of a window outlives the application context it shows: its timers stop and its
live worker is cut off before the context closes, and whatever still calls into a closed
context is refused loudly (LibraryClosedError), never answered with a warning and a stale
state ("admin PIN state not read: ... closed database")."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDialog

from faceguard.core.context import AppContext
from faceguard.core.pin import hash_pin
from faceguard.gui.admin import AdminGate, PinDialog
from faceguard.gui.main_window import MainWindow
from faceguard.gui.tasks import ThreadRunner
from faceguard.kiosk.demo import write_demo_video
from tests.conftest import make_data_dir


@pytest.fixture()
def ctx(tmp_path: Path, open_context: Callable[..., AppContext]) -> AppContext:
    return open_context(make_data_dir(tmp_path, kiosk_name="lobby", min_face_px=40))


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture()
def warnings_logged() -> Iterator[list[str]]:
    """The warnings logged during the test (works with ``-p no:logging`` too)."""
    handler = _Seen()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.messages
    finally:
        root.removeHandler(handler)


def test_a_locked_pin_dialog_counts_down_only_while_it_is_open(
        qtbot, ctx: AppContext, warnings_logged: list[str]) -> None:  # type: ignore[no-untyped-def]
    now = [1000.0]
    AdminGate(ctx).store_hash(hash_pin("258013", n=2**10))
    dialog = PinDialog(ctx, "Sign in to open the logs.", clock=lambda: now[0])
    qtbot.addWidget(dialog)
    dialog.show()
    for attempt in range(5):
        dialog.pin.setText(f"000{attempt}")
        dialog.submit()
    assert dialog.locked and "locked for 60 s" in dialog.message.text()
    now[0] += 5
    qtbot.waitUntil(lambda: "locked for 55 s" in dialog.message.text(), timeout=3000)
    dialog.reject()  # the admin gives up; the window closes, and its context with it
    ctx.close()
    qtbot.wait(1500)  # a count-down still ticking would read the closed library now
    assert "locked for 55 s" in dialog.message.text()
    assert warnings_logged == []


def test_a_window_closed_at_once_never_asks_for_the_first_pin_on_a_closed_context(
        qtbot, ctx: AppContext, warnings_logged: list[str]) -> None:  # type: ignore[no-untyped-def]
    opened: list[QDialog] = []

    def record(dialog: QDialog) -> int:
        qtbot.addWidget(dialog)
        opened.append(dialog)
        return QDialog.DialogCode.Rejected

    # No PIN yet: the window asks for the first one 300 ms after it opens.
    window = MainWindow(ctx, ThreadRunner(), source="9", opener=record)
    qtbot.addWidget(window)
    window.show()
    window.close()  # before the 300 ms are up (Ctrl-C right after the start)
    ctx.close()
    qtbot.wait(800)
    assert opened == []
    assert warnings_logged == []


def test_a_closed_window_shows_no_more_frames_and_leaves_its_context_alone(
        qtbot, ctx: AppContext, tmp_path: Path,  # type: ignore[no-untyped-def]
        warnings_logged: list[str]) -> None:
    video = tmp_path / "demo.avi"
    write_demo_video(video, fps=4.0, size=(480, 360))
    window = MainWindow(ctx, ThreadRunner(), source=str(video), ask_first_pin=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.live.frames_shown >= 3, timeout=30_000)
    window.close()  # while frames and events are on their way from the worker thread
    assert [timer.objectName() or timer for timer in window.findChildren(QTimer)
            if timer.isActive()] == []  # the clock, the stale-frame watchdog, the banner
    shown, events = window.live.frames_shown, window.events_count
    ctx.close()
    qtbot.wait(1500)  # queued frames, events and timers would arrive now
    assert window.worker is None
    assert (window.live.frames_shown, window.events_count) == (shown, events)
    assert warnings_logged == []
