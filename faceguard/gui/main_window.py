"""The kiosk's main window: live view, greeting banner, status bar, menus, kiosk mode (the Admin
menu and what it opens: :mod:`faceguard.gui.admin_menu`; the header across the top:
:mod:`faceguard.gui.window_header`).

The window only displays and asks: frames, results, events and source states arrive as
signals from the :class:`LiveWorker` thread, and the slow admin work (checking photos,
importing, preparing the demo) runs in workers too. Nothing here waits on the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, SignalInstance
from PySide6.QtGui import QAction, QCloseEvent, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QMainWindow,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.context import AppContext
from faceguard.core.roles import Permission
from faceguard.errors import FaceGuardError
from faceguard.gui.admin import AdminGate, DialogOpener, audit
from faceguard.gui.admin_menu import AdminMenu
from faceguard.gui.live_view import LiveView
from faceguard.gui.status_bar import KioskStatusBar
from faceguard.gui.tasks import Runner, Task, while_open
from faceguard.gui.window_header import WindowHeader
from faceguard.gui.worker import LiveWorker, to_rgb_array
from faceguard.kiosk.decisions import KioskEvent
from faceguard.kiosk.demo import DemoSession, prepare_demo
from faceguard.kiosk.loop import LoopStats, SourceStatus
from faceguard.kiosk.pipeline import FrameResult, KioskPipeline, pipeline_for
from faceguard.kiosk.sources import SourceError, SourceSpec
from faceguard.settings import Settings

log = logging.getLogger(__name__)


def _exec(dialog: object) -> int:
    return int(dialog.exec())  # type: ignore[attr-defined]


class MainWindow(QMainWindow):
    """The kiosk window over one context (a real library, or the demo's)."""

    context_changed = Signal()

    def __init__(self, ctx: AppContext, runner: Runner, *, source: str | None = None,
                 demo: DemoSession | None = None, opener: DialogOpener = _exec,
                 ask_first_pin: bool = True, realtime: bool = True) -> None:
        super().__init__()
        self.ctx = ctx
        self.runner = runner
        self.demo = demo
        self.opener = opener
        self.realtime = realtime
        self.pipeline: KioskPipeline = pipeline_for(ctx)
        self._stop_hearing = ctx.on_person_changed(self._person_changed)
        self.closed = False  # set by shutdown(): nothing here reaches the context any more
        self.worker: LiveWorker | None = None
        self.spec: SourceSpec | None = None
        self._pending: SourceSpec | None = None
        self.kiosk_mode = False
        self.latest_image: QImage | None = None
        self.events_count = 0  # events shown since the window opened (a count: kept for weeks)
        self.last_stats: LoopStats | None = None
        self.setWindowTitle("FaceGuard")
        self.resize(1200, 780)

        self.live = LiveView(self)
        self.live.source_panel.chosen.connect(self.choose_source)
        self.header = WindowHeader()
        self._update_header()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.live, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self.admin = AdminGate(ctx, opener=opener, on_change=self.admin_menu.show_role)
        self.status_bar = KioskStatusBar(self)
        self.setStatusBar(self.status_bar)
        self.status_bar.watch(ctx, self.pipeline.gate)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.escape_pressed)
        QShortcut(QKeySequence(Qt.Key.Key_F11), self, self.toggle_kiosk)
        self.header.start_clock()
        self.refresh_counts()
        initial = source or ctx.settings.source
        try:
            self.start_source(SourceSpec.parse(initial))
        except SourceError as error:
            self.live.source_panel.show_problem("No video source", str(error))
        # A timer of the window's own, stopped by shutdown() (a single shot fired after the
        # window closed would open the first-run dialog on a closed context).
        self._first_pin = QTimer(self, singleShot=True, interval=300)
        self._first_pin.timeout.connect(self.admin_menu.first_run_pin)
        if ask_first_pin and demo is None and not self.admin.has_pin:
            self._first_pin.start()

    # -- layout ----------------------------------------------------------------------------------

    def _build_menus(self) -> None:
        source_menu = self.menuBar().addMenu("&Source")
        for text, key in (("Camera…", "camera"), ("Video file…", "file"),
                          ("Stream URL…", "url"), ("Image folder…", "folder"),
                          ("Built-in demo", "demo")):
            source_menu.addAction(text, partial(self.choose_source, key))
        source_menu.addSeparator()
        source_menu.addAction("Quit", QKeySequence.StandardKey.Quit, self.close)
        self.admin_menu = AdminMenu(self, self.header.admin_button)
        self.menuBar().addMenu(self.admin_menu)
        view = self.menuBar().addMenu("&View")
        self.kiosk_action = QAction("Kiosk mode (full screen)\tF11", self, checkable=True)
        self.kiosk_action.triggered.connect(self.toggle_kiosk)
        view.addAction(self.kiosk_action)

    def _update_header(self) -> None:
        self.header.show_kiosk(self.ctx.settings.kiosk_name, demo=self.demo is not None)
        self.setWindowTitle("FaceGuard" + (" - demo" if self.demo is not None else ""))

    def refresh_counts(self) -> None:
        """People enrolled and the database, in the status bar."""
        self.status_bar.show_library(self.ctx, self.demo)

    # -- the live worker -------------------------------------------------------------------------

    def start_source(self, spec: SourceSpec) -> None:
        """Switch to a source: the running worker is cancelled, the new one starts after it."""
        self._pending = spec
        if self.worker is not None:
            self.worker.cancel()
            return
        self._start_pending()

    def _start_pending(self) -> None:
        spec, self._pending = self._pending, None
        if spec is None or self.closed:
            return
        self.spec = spec
        self.pipeline.decider.reset()
        worker = LiveWorker(self.pipeline, spec, realtime=self.realtime)
        for signal, slot in self._worker_slots(worker):
            signal.connect(slot)
        self.worker = worker
        self.status_bar.show_source(spec.describe())
        self.live.source_panel.hide()
        self.runner.start(worker)

    def _worker_slots(self, worker: LiveWorker) -> tuple[tuple[SignalInstance, Callable[..., None]],
                                                          ...]:
        """What the window hears from a live worker (connected at start, cut at shutdown)."""
        return ((worker.frame_ready, self.on_frame), (worker.event_logged, self.on_event),
                (worker.source_status, self.on_status), (worker.stats, self.on_stats),
                (worker.failed, self.on_failed), (worker.finished, self._worker_finished))

    def _worker_finished(self) -> None:
        self.worker = None
        if self._pending is not None:
            self._start_pending()

    @while_open
    def on_frame(self, image: QImage, result: FrameResult) -> None:
        self.latest_image = image
        self.live.set_frame(image, result)
        worker = self.sender()
        if isinstance(worker, LiveWorker):
            worker.frame_taken()
        elif self.worker is not None:
            self.worker.frame_taken()

    @while_open
    def on_event(self, event: KioskEvent) -> None:
        self.events_count += 1
        self.live.banner.show_event(event)
        if event.alert is not None:  # for the admin: repeated suspected attacks (audited)
            self.statusBar().showMessage(f"Liveness alert: {event.alert.message()}; see the "
                                         "audit log", 300_000)
        self.admin_menu.event_logged(event)

    @while_open
    def on_status(self, status: SourceStatus) -> None:
        self.live.set_status(status)
        spec = self.spec
        if status.state in ("reconnecting", "failed") and spec is not None:
            if spec.kind == "camera":
                self.live.source_panel.show_problem(
                    "No camera", f"{status.message[0].upper()}{status.message[1:]}. "
                    "Connect a camera, or choose another source below.")
            elif status.state == "failed":
                self.live.source_panel.show_problem("Cannot read the video source",
                                                    status.message)
        self.status_bar.show_source(f"{status.description or '—'} ({status.state})")

    @while_open
    def on_stats(self, stats: LoopStats) -> None:
        self.last_stats = stats
        self.status_bar.show_stats(stats)

    @while_open
    def on_failed(self, message: str) -> None:
        self.live.source_panel.show_problem("Cannot read the video source", message)

    def current_frame(self) -> np.ndarray | None:
        """The newest live frame as RGB (for capturing enrolment photos), None if not live."""
        if self.latest_image is None or not self.live.is_live:
            return None
        return to_rgb_array(self.latest_image)

    # -- sources -----------------------------------------------------------------------------

    def choose_source(self, kind: str) -> None:
        """Ask for a source of the given kind and switch to it."""
        text: str | None = None
        if kind == "retry" and self.spec is not None:
            self.start_source(self.spec)
            return
        if kind == "demo":
            self.start_demo()
            return
        if kind == "camera":
            number, ok = QInputDialog.getInt(self, "Camera", "Camera number:", 0, 0, 16)
            text = str(number) if ok else None
        elif kind == "file":
            text, _ = QFileDialog.getOpenFileName(
                self, "Video file", "", "Videos (*.mp4 *.avi *.mkv *.mov *.webm);;All (*)")
        elif kind == "url":
            text, ok = QInputDialog.getText(self, "Stream", "rtsp:// or http:// URL:")
            text = text if ok else None
        elif kind == "folder":
            text = QFileDialog.getExistingDirectory(self, "Folder of images")
        if text:
            try:
                self.start_source(SourceSpec.parse(text))
            except SourceError as error:
                self.live.source_panel.show_problem("Cannot use that source", str(error))

    def start_demo(self) -> None:
        """Switch to the built-in demo with its own throw-away library (in a worker)."""
        if self.demo is not None:
            self.start_source(SourceSpec("demo"))
            return
        engine = self.ctx.engine
        base = self.ctx.settings
        task = Task(lambda t: prepare_demo(base=base, engine=engine))
        # Bound methods of GUI objects: PySide runs them in the GUI thread (a lambda would
        # run in the worker's thread).
        task.on_done(self._demo_ready)
        task.failed.connect(self._demo_failed)
        self.live.source_panel.hide()
        self.runner.start(task)

    @while_open
    def _demo_failed(self, message: str) -> None:
        self.live.source_panel.show_problem("The demo cannot start", message)

    def _demo_ready(self, session: object) -> None:
        assert isinstance(session, DemoSession)
        if self.closed:  # prepared while the window was closing: nobody will show it
            session.close()
            return
        self.demo = session
        self.set_context(session.ctx)
        self.start_source(SourceSpec("demo"))

    def set_context(self, ctx: AppContext) -> None:
        """Work on another data folder (the demo's): new pipeline, admin gate, counts."""
        self.ctx = ctx
        self.admin.set_context(ctx)
        self.pipeline.close()
        self.pipeline = pipeline_for(ctx)
        self.status_bar.watch(ctx, self.pipeline.gate)
        self._stop_hearing()  # the previous context's changes are no longer ours
        self._stop_hearing = ctx.on_person_changed(self._person_changed)
        self._update_header()
        self.refresh_counts()
        self.context_changed.emit()

    def _person_changed(self, person_id: int) -> None:
        """Someone was renamed, edited or removed: the kiosk forgets its names and votes."""
        self.pipeline.person_removed(person_id)

    def settings_saved(self, saved: Settings) -> None:
        """New settings are in force (the application saved them and gave the matcher its
        operating point): the door, the decisions, the header and the source follow."""
        old_source = self.spec
        if self.pipeline.gate is not None:
            try:
                self.pipeline.gate.reconfigure(saved)  # the kiosk name is the door's
            except FaceGuardError as error:
                self.show_error("Door", str(error))
        try:
            self.pipeline.apply_settings(saved)  # its name, tracking and decision numbers
        except FaceGuardError as error:  # enforce with a missing liveness model
            QMessageBox.warning(self, "Liveness", str(error))
        self._update_header()
        try:
            spec = SourceSpec.parse(saved.source)
        except SourceError:
            return
        if spec != old_source:
            self.start_source(spec)

    # -- kiosk mode ------------------------------------------------------------------------------

    def toggle_kiosk(self) -> None:
        if self.kiosk_mode:
            self.leave_kiosk()
        else:
            self.enter_kiosk()

    def enter_kiosk(self) -> None:
        """Full screen, no menus; leaving needs the admin PIN."""
        self.kiosk_mode = True
        self.kiosk_action.setChecked(True)
        self.menuBar().hide()
        self.showFullScreen()

    def leave_kiosk(self) -> bool:
        """Back to a normal window, after the admin PIN."""
        if not self.admin.ask(self, "leave kiosk mode", Permission.KIOSK):
            self.kiosk_action.setChecked(True)
            return False
        self.kiosk_mode = False
        self.kiosk_action.setChecked(False)
        self.menuBar().show()
        self.showNormal()
        audit(self.ctx, "leave_kiosk_mode")
        return True

    def escape_pressed(self) -> None:
        if self.kiosk_mode:
            self.leave_kiosk()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.closed:
            event.accept()
            return
        if self.kiosk_mode and not self.admin.ask(self, "close the kiosk", Permission.KIOSK):
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop everything that could still reach the context, before its owner closes it:
        the window's timers, the live worker (its signals cut, its thread waited for), the
        person listener, the pipeline. Safe to call twice; closing afterwards just closes."""
        if self.closed:
            return
        self.closed = True
        self._pending = None
        self.header.stop()
        self._first_pin.stop()
        self.live.stop()
        self.status_bar.stop_watching()
        self._stop_hearing()
        worker = self.worker
        if worker is not None:
            for signal, slot in self._worker_slots(worker):
                signal.disconnect(slot)
            worker.cancel()
            self.worker = None
        if not self.runner.shutdown(5000):
            log.warning("a worker thread did not stop in time")
        self.pipeline.close()  # the door is released (a local relay de-energised)

    def show_error(self, title: str, message: str) -> None:
        QMessageBox.warning(self, title, message)
