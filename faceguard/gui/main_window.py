"""The kiosk's main window: live view, greeting banner, status bar, admin menus, kiosk mode.

The window only displays and asks: frames, results, events and source states arrive as
signals from the :class:`LiveWorker` thread, and the slow admin work (checking photos,
importing, preparing the demo) runs in workers too. Nothing here waits on the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.access_admin import AccessAdmin
from faceguard.core.context import AppContext
from faceguard.core.door import DoorResult
from faceguard.core.roles import Permission
from faceguard.errors import FaceGuardError
from faceguard.gui import theme
from faceguard.gui.admin import AdminGate, DialogOpener, audit
from faceguard.gui.door_panel import DoorSettingsDialog, DoorStatusBridge, DoorStatusLabel
from faceguard.gui.encryption_dialog import EncryptionDialog
from faceguard.gui.enrol import EnrolDialog
from faceguard.gui.fleet_status import FleetStatusBridge, FleetStatusLabel, watch_fleet
from faceguard.gui.import_dialog import ImportDialog
from faceguard.gui.live_view import LiveView
from faceguard.gui.logs import LogsDialog
from faceguard.gui.people import PeopleDialog
from faceguard.gui.rules_editor import RulesDialog
from faceguard.gui.settings_dialog import SettingsDialog
from faceguard.gui.tasks import Runner, Task
from faceguard.gui.worker import LiveWorker, to_rgb_array
from faceguard.kiosk.decisions import DecisionPolicy, KioskEvent
from faceguard.kiosk.demo import DemoSession, prepare_demo
from faceguard.kiosk.loop import LoopStats, SourceStatus
from faceguard.kiosk.pipeline import FrameResult, KioskPipeline, pipeline_for
from faceguard.kiosk.sources import SourceError, SourceSpec

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
        self.admin = AdminGate(ctx, opener=opener, on_change=self._apply_role)
        self.pipeline: KioskPipeline = pipeline_for(ctx)
        ctx.on_person_changed(self._person_changed)
        self._apply_threshold()
        self.worker: LiveWorker | None = None
        self.spec: SourceSpec | None = None
        self._pending: SourceSpec | None = None
        self.kiosk_mode = False
        self.latest_image: QImage | None = None
        self.events_count = 0  # events shown since the window opened (a count: kept for weeks)
        self.last_stats: LoopStats | None = None
        self.logs: list[LogsDialog] = []
        self.setWindowTitle("FaceGuard")
        self.resize(1200, 780)

        self.live = LiveView(self)
        self.live.source_panel.chosen.connect(self.choose_source)
        self._build_header()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.live, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self._build_status_bar()
        watch_fleet(ctx, self.fleet_bridge)  # a fleet kiosk syncs in the background
        self._watch_door()
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.escape_pressed)
        QShortcut(QKeySequence(Qt.Key.Key_F11), self, self.toggle_kiosk)
        self._clock = QTimer(self)
        self._clock.timeout.connect(self._tick)
        self._clock.start(1000)
        self._tick()
        self.refresh_counts()
        initial = source or ctx.settings.source
        try:
            self.start_source(SourceSpec.parse(initial))
        except SourceError as error:
            self.live.source_panel.show_problem("No video source", str(error))
        if ask_first_pin and demo is None and not self.admin.has_pin:
            QTimer.singleShot(300, self._first_run_pin)

    # -- layout ----------------------------------------------------------------------------------

    def _build_header(self) -> None:
        self.header = QWidget()
        self.header.setObjectName("header")
        self.kiosk_label = theme.named_label("", "kioskName")
        self.mode_tag = theme.named_label("DEMO", "modeTag")
        self.clock_label = theme.named_label("", "clock")
        self.admin_button = QToolButton()
        self.admin_button.setText("Admin")
        self.admin_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        row = QHBoxLayout(self.header)
        row.setContentsMargins(18, 10, 18, 10)
        row.addWidget(self.kiosk_label)
        row.addSpacing(10)
        row.addWidget(self.mode_tag)
        row.addStretch(1)
        row.addWidget(self.clock_label)
        row.addSpacing(18)
        row.addWidget(self.admin_button)
        self._update_header()

    def _build_menus(self) -> None:
        source_menu = self.menuBar().addMenu("&Source")
        for text, key in (("Camera…", "camera"), ("Video file…", "file"),
                          ("Stream URL…", "url"), ("Image folder…", "folder"),
                          ("Built-in demo", "demo")):
            source_menu.addAction(text, partial(self.choose_source, key))
        source_menu.addSeparator()
        source_menu.addAction("Quit", QKeySequence.StandardKey.Quit, self.close)
        self.admin_menu = QMenu("&Admin", self)
        people, logs, settings = Permission.PEOPLE, Permission.LOGS, Permission.SETTINGS
        entries: list[tuple[str, Callable[[], object], Permission | None]] = [
            ("Enrol a person…", self.open_enrol, people), ("People…", self.open_people, people),
            ("Import a folder of people…", self.open_import, people),
            ("Entry log…", self.open_logs, logs),
            ("Access rules…", self.open_rules, settings),
            ("Door…", self.open_door_settings, settings),
            ("Open the door", self.open_door, Permission.KIOSK),
            ("Settings…", self.open_settings, settings),
            ("Encryption…", self.open_encryption, settings),
            ("Change my PIN…", self.change_pin, None)]
        self.role_actions: list[tuple[QAction, Permission]] = []
        for text, slot, permission in entries:
            action = self.admin_menu.addAction(text, slot)
            if permission is not None:
                self.role_actions.append((action, permission))
        self.admin_menu.addSeparator()
        self.sign_out_action = self.admin_menu.addAction("Sign out", self.admin.sign_out)
        self.sign_out_action.setVisible(False)
        self.admin_menu.aboutToShow.connect(self._apply_role)
        self.menuBar().addMenu(self.admin_menu)
        self.admin_button.setMenu(self.admin_menu)
        view = self.menuBar().addMenu("&View")
        self.kiosk_action = QAction("Kiosk mode (full screen)\tF11", self, checkable=True)
        self.kiosk_action.triggered.connect(self.toggle_kiosk)
        view.addAction(self.kiosk_action)

    def _build_status_bar(self) -> None:
        self.source_label = QLabel("Source: —")
        self.fps_label = QLabel("— fps")
        self.latency_label = QLabel("pipeline — ms")
        self.people_label = QLabel("— people")
        self.db_label = QLabel("")
        self.door_label = DoorStatusLabel()
        self.door_bridge = DoorStatusBridge(self)
        self.door_bridge.changed.connect(self.door_label.show_status)
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        for label in (self.source_label, self.fps_label, self.latency_label,
                      self.people_label):
            bar.addWidget(label)
        bar.addPermanentWidget(self.door_label)
        self.fleet_label = FleetStatusLabel()
        self.fleet_bridge = FleetStatusBridge(self)
        self.fleet_bridge.changed.connect(self.fleet_label.show_status)
        bar.addPermanentWidget(self.fleet_label)
        bar.addPermanentWidget(self.db_label)

    def _watch_door(self) -> None:
        """The status bar follows this pipeline's door (lock state and alarms)."""
        if self.pipeline.gate is not None:
            self.door_bridge.watch(self.pipeline.gate)

    def _update_header(self) -> None:
        self.kiosk_label.setText(self.ctx.settings.kiosk_name)
        self.mode_tag.setVisible(self.demo is not None)
        self.setWindowTitle("FaceGuard" + (" - demo" if self.demo is not None else ""))

    def _tick(self) -> None:
        self.clock_label.setText(datetime.now().strftime("%H:%M"))

    def refresh_counts(self) -> None:
        """People enrolled and the database, in the status bar."""
        try:
            people = len(self.ctx.library.list_people())
        except FaceGuardError as error:
            self.people_label.setText(str(error))
            return
        self.people_label.setText(f"{people} {'person' if people == 1 else 'people'} enrolled")
        path = self.ctx.library_path
        where = str(path)
        if self.demo is not None:
            where = "demo library" + (" (temporary)" if self.demo.temporary else "")
        read_only = " (read-only)" if self.ctx.library.read_only else ""
        self.db_label.setText(f"Database: {where}{read_only}")
        self.db_label.setToolTip(str(path))

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
        if spec is None:
            return
        self.spec = spec
        self.pipeline.decider.reset()
        worker = LiveWorker(self.pipeline, spec, realtime=self.realtime)
        worker.frame_ready.connect(self.on_frame)
        worker.event_logged.connect(self.on_event)
        worker.source_status.connect(self.on_status)
        worker.stats.connect(self.on_stats)
        worker.failed.connect(self.on_failed)
        worker.finished.connect(self._worker_finished)
        self.worker = worker
        self.source_label.setText(f"Source: {spec.describe()}")
        self.live.source_panel.hide()
        self.runner.start(worker)

    def _worker_finished(self) -> None:
        self.worker = None
        if self._pending is not None:
            self._start_pending()

    def on_frame(self, image: QImage, result: FrameResult) -> None:
        self.latest_image = image
        self.live.set_frame(image, result)
        worker = self.sender()
        if isinstance(worker, LiveWorker):
            worker.frame_taken()
        elif self.worker is not None:
            self.worker.frame_taken()

    def on_event(self, event: KioskEvent) -> None:
        self.events_count += 1
        self.live.banner.show_event(event)
        if event.alert is not None:  # for the admin: repeated suspected attacks (audited)
            self.statusBar().showMessage(f"Liveness alert: {event.alert.message()}; see the "
                                         "audit log", 300_000)
        for dialog in self.logs:
            dialog.event_logged(event)

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
        self.source_label.setText(f"Source: {status.description or '—'} ({status.state})")

    def on_stats(self, stats: LoopStats) -> None:
        self.last_stats = stats
        self.fps_label.setText(f"{stats.fps:.1f} fps")
        dropped = f", {stats.dropped} dropped" if stats.dropped else ""
        self.latency_label.setText(f"pipeline {stats.latency_ms:.0f} ms/frame{dropped}")

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

    def _demo_failed(self, message: str) -> None:
        self.live.source_panel.show_problem("The demo cannot start", message)

    def _demo_ready(self, session: object) -> None:
        assert isinstance(session, DemoSession)
        self.demo = session
        self.set_context(session.ctx)
        self.start_source(SourceSpec("demo"))

    def set_context(self, ctx: AppContext) -> None:
        """Work on another data folder (the demo's): new pipeline, admin gate, counts."""
        self.ctx = ctx
        self.admin.set_context(ctx)
        self.pipeline.close()
        self.pipeline = pipeline_for(ctx)
        watch_fleet(ctx, self.fleet_bridge)
        self._watch_door()
        ctx.on_person_changed(self._person_changed)
        self._apply_threshold()
        self._update_header()
        self.refresh_counts()
        self.context_changed.emit()

    def _person_changed(self, person_id: int) -> None:
        """Someone was renamed, edited or removed: the kiosk forgets its names and votes."""
        self.pipeline.person_removed(person_id)

    def _apply_threshold(self) -> None:
        settings = self.ctx.settings
        point = self.ctx.operating_point
        self.ctx.matcher.threshold, self.ctx.matcher.margin = point.threshold, point.margin
        try:
            self.pipeline.set_policy(DecisionPolicy.from_settings(settings))
        except FaceGuardError as error:  # enforce with a missing liveness model
            QMessageBox.warning(self, "Liveness", str(error))
        self.pipeline.decider.kiosk_id = settings.kiosk_name

    # -- admin -----------------------------------------------------------------------------------

    def _apply_role(self) -> None:
        """Show only what the signed-in account's role may do (everything while nobody is
        signed in: each action then asks for an account)."""
        if not hasattr(self, "role_actions"):  # signed in before the menus were built
            return
        account = self.admin.account
        for action, permission in self.role_actions:
            action.setVisible(self.admin.allows(permission))
        self.sign_out_action.setVisible(account is not None)
        if account is not None:
            self.sign_out_action.setText(f"Sign out {account.name} ({account.role})")
        self.admin_button.setText("Admin" if account is None else f"Admin: {account.name}")

    def _first_run_pin(self) -> None:
        """First run: the first administrator's PIN, then the choice of encrypting the face
        data (keyring or passphrase; the dialog says what is lost without)."""
        if not self.admin.has_pin and self.admin.set_pin(self, first_run=True) \
                and self.ctx.encryption_status().state == "off":
            self.opener(EncryptionDialog(self.ctx, self.runner, self))

    def _unlock(self, purpose: str, permission: Permission | None = None) -> bool:
        return self.admin.ask(self, purpose, permission)

    def open_enrol(self) -> None:
        if not self._unlock("enrol a person", Permission.PEOPLE):
            return
        dialog = EnrolDialog(self.ctx, self.runner, self, frame_provider=self.current_frame)
        dialog.enrolled.connect(lambda _p: self.refresh_counts())
        self.opener(dialog)
        self.refresh_counts()

    def open_people(self) -> None:
        if not self._unlock("manage people", Permission.PEOPLE):
            return
        dialog = PeopleDialog(self.ctx, self.runner, self, frame_provider=self.current_frame,
                              opener=self.opener)
        dialog.changed.connect(self.refresh_counts)
        self.opener(dialog)
        self.refresh_counts()

    def open_import(self) -> None:
        if not self._unlock("import people", Permission.PEOPLE):
            return
        dialog = ImportDialog(self.ctx, self.runner, self)
        dialog.imported.connect(self.refresh_counts)
        self.opener(dialog)
        self.refresh_counts()

    def open_logs(self) -> None:
        if not self._unlock("see the entry log", Permission.LOGS):
            return
        dialog = LogsDialog(self.ctx, self)
        dialog.allow_reports(self.admin.allows(Permission.REPORTS))
        self.logs.append(dialog)
        try:
            self.opener(dialog)
        finally:
            self.logs.remove(dialog)

    def open_settings(self) -> None:
        if not self._unlock("change the settings", Permission.SETTINGS):
            return
        dialog = SettingsDialog(self.ctx, self)
        self.opener(dialog)
        if dialog.saved is None:
            return
        old_source = self.spec
        if self.pipeline.gate is not None:
            try:
                self.pipeline.gate.reconfigure(dialog.saved)  # the kiosk name is the door's
            except FaceGuardError as error:
                self.show_error("Door", str(error))
        self._apply_threshold()
        self._update_header()
        try:
            spec = SourceSpec.parse(dialog.saved.source)
        except SourceError:
            return
        if spec != old_source:
            self.start_source(spec)

    def open_encryption(self) -> None:
        """Encryption of the face data: its state, and turning it on (administrators)."""
        if not self._unlock("encrypt the face data", Permission.SETTINGS):
            return
        self.opener(EncryptionDialog(self.ctx, self.runner, self))

    def open_rules(self) -> None:
        """The access rules editor; the kiosk reads the rules again after each change."""
        if not self._unlock("change the access rules", Permission.SETTINGS):
            return
        admin = AccessAdmin(self.ctx, actor=self.ctx.actor)
        if self.pipeline.gate is not None:
            admin.on_changed(self.pipeline.gate.reload)
        self.opener(RulesDialog(admin, self))

    def open_door_settings(self) -> None:
        """The door settings with "Test door"."""
        if not self._unlock("change the door settings", Permission.SETTINGS) \
                or self.pipeline.gate is None:
            return
        self.opener(DoorSettingsDialog(self.ctx, self.pipeline.gate, self.runner, self))

    def open_door(self) -> None:
        """The admin's manual "Open door": behind the PIN, audited, in a worker."""
        gate = self.pipeline.gate
        if gate is None or not self._unlock("open the door", Permission.KIOSK):
            return
        actor = self.ctx.actor
        task = Task(lambda _task: gate.manual_open(actor))
        task.on_done(self._door_opened)
        task.failed.connect(partial(self.show_error, "Door"))
        self.runner.start(task)

    def _door_opened(self, result: object) -> None:
        assert isinstance(result, DoorResult)
        if result.done or result.queued:
            self.statusBar().showMessage("Door opened by the admin (audited)", 10_000)
        else:
            self.show_error("Door", f"The door did not open: {result.message}")

    def change_pin(self) -> None:
        if not self._unlock("change the admin PIN"):
            return
        self.admin.set_pin(self, first_run=False)

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
        if not self._unlock("leave kiosk mode", Permission.KIOSK):
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
        if self.kiosk_mode and not self._unlock("close the kiosk", Permission.KIOSK):
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop the worker threads (waits for them: the window is going away)."""
        self._pending = None
        if self.worker is not None:
            self.worker.cancel()
        if not self.runner.shutdown(5000):
            log.warning("a worker thread did not stop in time")
        self.pipeline.close()  # the door is released (a local relay de-energised)

    def show_error(self, title: str, message: str) -> None:
        QMessageBox.warning(self, title, message)
