"""Enrolment dialogs: one person from photo files or the live camera, and a bulk import of a
folder of people. Photos are checked in a worker (one face, size, sharpness, frontal pose); the
dialog shows the aligned crop kept for each good photo and the reason for each rejected one."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.context import AppContext
from faceguard.core.enrolment import (
    Enroller,
    EnrolMode,
    ImportSummary,
    LookAlike,
    PhotoCheck,
    PhotoResult,
    image_files,
    person_folders,
)
from faceguard.errors import FaceGuardError
from faceguard.gui import theme
from faceguard.gui.tasks import Runner, Task, Worker
from faceguard.gui.worker import to_qimage
from faceguard.library.database import Person
from faceguard.wording import plural

THUMB = 64
CAPTURE_FRAMES = 6
CAPTURE_INTERVAL_MS = 350

FrameProvider = Callable[[], np.ndarray | None]
LOOKALIKE_CHOICES = (
    ("Refuse the photo", LookAlike.REFUSE),
    ("Add the photo to the person it matches", LookAlike.MERGE),
    ("Replace the person it matches with this one", LookAlike.REPLACE),
    ("Enrol it anyway (give a reason)", LookAlike.FORCE),
)


def thumbnail(crop: np.ndarray | None) -> QIcon:
    """An icon of an aligned face crop (empty icon without one)."""
    if crop is None:
        return QIcon()
    return QIcon(QPixmap.fromImage(to_qimage(crop)))


def describe_check(check: PhotoCheck) -> str:
    """One line for a checked photo."""
    if not check.ok:
        return f"✗ {check.reason}"
    assert check.observation is not None
    quality = check.observation.quality
    return f"✓ ready (face {quality.size_px:.0f} px, quality {quality.score:.2f})"


@dataclass
class PhotoRow:
    """One photo in the dialog's list."""

    source: str
    check: PhotoCheck | None = None
    result: PhotoResult | None = None


class EnrolDialog(QDialog):
    """Add a person (or photos to a person) from files, a folder or the live camera."""

    enrolled = Signal(object)  # Person

    def __init__(self, ctx: AppContext, runner: Runner, parent: QWidget | None = None, *,
                 frame_provider: FrameProvider | None = None,
                 person: Person | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Enrol a person" if person is None else f"Add photos of {person.name}")
        self.resize(820, 620)
        self.ctx = ctx
        self.runner = runner
        self.frame_provider = frame_provider
        self.enroller = ctx.enroller(actor=ctx.actor)
        self.rows: list[PhotoRow] = []
        self.person: Person | None = person
        self.busy = 0
        self._captured: list[tuple[str, np.ndarray]] = []
        self._capture_timer = QTimer(self)
        self._capture_timer.timeout.connect(self._capture_one)

        self.name = QLineEdit(person.name if person else "")
        self.employee_id = QLineEdit(person.employee_id or "" if person else "")
        self.department = QLineEdit(person.department or "" if person else "")
        self.name.setPlaceholderText("Full name (required)")
        if person is not None:
            for field in (self.name, self.employee_id, self.department):
                field.setReadOnly(True)
        self.add_existing = QCheckBox("Add these photos to the person already enrolled under "
                                      "this name")
        self.add_existing.setVisible(False)
        self.name.textChanged.connect(self._name_changed)
        self.lookalike = QComboBox()
        for text, choice in LOOKALIKE_CHOICES:
            self.lookalike.addItem(text, choice.value)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Why (kept in the audit log; needed to enrol anyway)")
        self.accept_mismatch = QCheckBox("Keep photos that do not look like this person's "
                                         "other photos")
        form = QFormLayout()
        self.form = form
        form.addRow("Name", self.name)
        form.addRow("", self.add_existing)
        form.addRow("Employee id", self.employee_id)
        form.addRow("Department", self.department)
        form.addRow("If a face matches someone else", self.lookalike)
        form.addRow("Reason", self.reason)
        form.addRow("", self.accept_mismatch)
        self.consent_required = ctx.consent_required()
        version = ctx.notice_version()
        self.consent = QCheckBox(f"The person has consented to enrolment (retention notice "
                                 f"{version})" + (" — required here" if self.consent_required
                                                  else ""))
        self.consent_by = QLineEdit()
        self.consent_by.setPlaceholderText("Who gave consent (the person, or the name on the "
                                           "signed form)")
        self.consent.toggled.connect(self.consent_by.setEnabled)
        self.consent_by.setEnabled(False)
        form.addRow("Consent", self.consent)
        form.addRow("Given by", self.consent_by)
        for widget in (self.consent, self.consent_by):
            form.setRowVisible(widget, person is None)
        self._show_resolution(lookalike=False, mismatch=False)

        self.add_files_button = QPushButton("Add photos…")
        self.add_folder_button = QPushButton("Add a folder…")
        self.capture_button = QPushButton("Capture from camera")
        self.capture_button.setEnabled(frame_provider is not None)
        self.clear_button = QPushButton("Clear list")
        self.add_files_button.clicked.connect(self.choose_files)
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.capture_button.clicked.connect(self.start_capture)
        self.clear_button.clicked.connect(self.clear)
        actions = QHBoxLayout()
        for button in (self.add_files_button, self.add_folder_button, self.capture_button):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.clear_button)

        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Photo", "Result"])
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 8)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 300)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setAlternatingRowColors(True)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = QLabel("Add photos: one clear, frontal face each.")
        self.status.setWordWrap(True)
        theme.set_role(self.status, "hint")

        self.enrol_button = QPushButton("Enrol")
        self.enrol_button.setProperty("accent", True)
        self.enrol_button.clicked.connect(self.enrol)
        footer = theme.dialog_footer(self, self.status, self.enrol_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(actions)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addLayout(footer)
        self._update_buttons()

    # -- adding photos ---------------------------------------------------------------------------

    def choose_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(
            self, "Photos of the person", "",
            "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff)")
        if names:
            self.add_files([Path(n) for n in names])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of photos of the person")
        if folder:
            self.add_folder(Path(folder))

    def add_folder(self, folder: Path) -> None:
        """Add every image directly inside a folder."""
        files = image_files(folder)
        if not files:
            self.status.setText(f"{folder} has no images.")
            return
        self.add_files(files)

    def add_files(self, paths: Sequence[Path]) -> None:
        """Check photo files in the background and list them with the outcome."""
        known = {row.source for row in self.rows}
        new = [p for p in paths if str(p) not in known]
        if not new:
            return
        first = len(self.rows)
        for path in new:
            self._append(PhotoRow(str(path)))
        enroller = self.enroller
        task = Task(lambda t: _check_files(enroller, new, t))
        self._run(task, lambda checks: self._checked(first, checks), f"Checking {len(new)} "
                  "photos…")

    def start_capture(self, frames: int = CAPTURE_FRAMES) -> None:
        """Take several frames from the live camera, then check them like photos."""
        if self.frame_provider is None or self._capture_timer.isActive():
            return
        self._captured = []
        self._capture_target = frames
        self.status.setText("Look at the camera…")
        self.capture_button.setEnabled(False)
        self._capture_timer.start(CAPTURE_INTERVAL_MS)
        self._capture_one()

    def _capture_one(self) -> None:
        assert self.frame_provider is not None
        frame = self.frame_provider()
        if frame is not None:
            stamp = time.strftime("%H%M%S")
            self._captured.append((f"camera {stamp}-{len(self._captured) + 1}", frame))
        if len(self._captured) >= self._capture_target:
            self._capture_timer.stop()
            self.capture_button.setEnabled(True)
            self.add_frames(self._captured)

    def add_frames(self, frames: Sequence[tuple[str, np.ndarray]]) -> None:
        """Check captured frames; only those passing the quality gates are kept."""
        if not frames:
            self.status.setText("No frames came from the camera.")
            return
        first = len(self.rows)
        for name, _ in frames:
            self._append(PhotoRow(name))
        enroller = self.enroller
        images = list(frames)
        task = Task(lambda t: enroller.check_images(images))
        self._run(task, lambda checks: self._checked(first, checks),
                  f"Checking {len(images)} camera frames…")

    def clear(self) -> None:
        """Empty the list (nothing enrolled is removed)."""
        self.rows.clear()
        self.table.setRowCount(0)
        self._update_buttons()

    # -- enrolling -------------------------------------------------------------------------------

    @property
    def ready_checks(self) -> list[PhotoCheck]:
        """Checked, accepted photos not yet enrolled (or refused for a conflict to resolve)."""
        return [row.check for row in self.rows
                if row.check is not None and row.check.ok
                and (row.result is None or row.result.conflict is not None)]

    @property
    def mode(self) -> EnrolMode:
        if self.person is not None or self.add_existing.isChecked():
            return EnrolMode.ADD
        return EnrolMode.NEW

    def _name_changed(self, text: str) -> None:
        existing = self.enroller.existing(text) if text.strip() and self.person is None else None
        self.add_existing.setVisible(existing is not None)
        if existing is None:
            self.add_existing.setChecked(False)
        else:
            self.add_existing.setText(f"Add these photos to {existing.name}, who is already "
                                      "enrolled")

    def _show_resolution(self, *, lookalike: bool, mismatch: bool) -> None:
        for widget, visible in ((self.lookalike, lookalike), (self.reason, lookalike),
                                (self.accept_mismatch, mismatch)):
            self.form.setRowVisible(widget, visible)

    def enrol(self) -> None:
        """Store the accepted photos as the person's templates."""
        name = self.name.text().strip()
        if not name:
            self.status.setText("Enter the person's name first.")
            self.name.setFocus()
            return
        checks = self.ready_checks
        if not checks:
            self.status.setText("No accepted photo to enrol yet.")
            return
        employee_id = self.employee_id.text().strip() or None
        department = self.department.text().strip() or None
        enroller = self.enroller
        mode = self.mode
        if mode is EnrolMode.NEW and not self._take_consent():
            return
        lookalike = LookAlike(self.lookalike.currentData())
        reason = self.reason.text().strip() or None
        accept_mismatch = self.accept_mismatch.isChecked()
        task = Task(lambda t: enroller.enroll(name, checks, employee_id=employee_id,
                                              department=department, mode=mode,
                                              lookalike=lookalike, reason=reason,
                                              accept_mismatch=accept_mismatch))
        self._run(task, self._enrolled, f"Enrolling {len(checks)} photos of {name}…")

    def _take_consent(self) -> bool:
        """Hand the consent box's record to the enroller; False (with the reason shown)
        when it is required and missing, or names no one."""
        if not self.consent.isChecked():
            if self.consent_required:
                self.status.setText("This site requires the person's consent before "
                                    "enrolment: tick the consent box and say who gave it.")
                theme.set_role(self.status, "error")
                return False
            self.enroller.consent = None
            return True
        try:
            self.enroller.consent = self.ctx.consent_for(self.consent_by.text())
        except FaceGuardError as error:
            self.status.setText(f"{str(error)[0].upper()}{str(error)[1:]}.")
            theme.set_role(self.status, "error")
            self.consent_by.setFocus()
            return False
        return True

    def _enrolled(self, outcome: object) -> None:
        assert isinstance(outcome, tuple)
        person, results = outcome
        by_source = {r.source: r for r in results}
        for index, row in enumerate(self.rows):
            result = by_source.get(row.source)
            if result is not None and row.check is not None and row.check.ok and \
                    (row.result is None or row.result.conflict is not None):
                row.result = result
                self._show_row(index)
        kept = sum(r.accepted for r in results)
        warnings = [r.warning for r in results if r.warning]
        conflicts = [r for r in results if r.conflict]
        self._show_resolution(
            lookalike=any(r.conflict == "lookalike" for r in conflicts)
            or self.lookalike.currentData() != LookAlike.REFUSE.value,
            mismatch=any(r.conflict == "mismatch" for r in conflicts)
            or self.accept_mismatch.isChecked())
        if person is None and not kept:
            self.status.setText(f"Nothing was enrolled: {conflicts[0].reason}." if conflicts
                                else "Nothing was enrolled.")
            theme.set_role(self.status, "error")
            self._update_buttons()
            return
        if person is None:  # every photo went to the person it matched (merge)
            owner = next(r.person_name for r in results if r.accepted)
            self.status.setText(f"Added {plural(kept, 'photo')} to {owner}.")
            self.enrolled.emit(self.enroller.existing(owner or ""))
            self._update_buttons()
            return
        self.person = person
        for field in (self.name, self.employee_id, self.department):
            field.setReadOnly(True)
        text = f"Enrolled {person.name}: {plural(kept, 'photo')} kept."
        if conflicts:
            text += f" Refused: {conflicts[0].reason}."
        elif warnings:
            text += f" Warning: {warnings[0]}."
        self.status.setText(text)
        theme.set_role(self.status, "error" if warnings or conflicts else "ok")
        self.enrolled.emit(person)
        self._update_buttons()

    # -- plumbing --------------------------------------------------------------------------------

    def _run(self, task: Task, on_done: Callable[[object], None], message: str) -> None:
        self.busy += 1
        self.status.setText(message)
        theme.set_role(self.status, "hint")
        self.progress.setRange(0, 0)
        self.progress.show()
        # Bound methods and relays only: they run in the GUI thread (see gui.threading).
        task.on_done(on_done)
        task.progress.connect(self._progress)
        task.failed.connect(self._failed)
        task.finished.connect(self._task_finished)
        self._update_buttons()
        self.runner.start(task)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _failed(self, message: str) -> None:
        self.status.setText(message)
        theme.set_role(self.status, "error")

    def _task_finished(self) -> None:
        self.busy -= 1
        if self.busy == 0:
            self.progress.hide()
        self._update_buttons()

    def _checked(self, first: int, checks: object) -> None:
        assert isinstance(checks, list)
        for offset, check in enumerate(checks):
            self.rows[first + offset].check = check
            self._show_row(first + offset)
        good = sum(c.ok for c in checks)
        self.status.setText(f"{good} of {len(checks)} photos can be enrolled."
                            + (" Rejected photos show the reason." if good < len(checks) else ""))
        theme.set_role(self.status, "hint")
        self._update_buttons()

    def _append(self, row: PhotoRow) -> None:
        self.rows.append(row)
        self.table.insertRow(self.table.rowCount())
        self._show_row(len(self.rows) - 1)

    def _show_row(self, index: int) -> None:
        row = self.rows[index]
        label = Path(row.source).name if not row.source.startswith("camera ") else row.source
        photo = QTableWidgetItem(label)
        photo.setToolTip(row.source)
        if row.check is not None and row.check.observation is not None:
            photo.setIcon(thumbnail(row.check.observation.crop))
        if row.result is not None:
            mark = "✓" if row.result.accepted else "–" if row.result.skipped else "✗"
            text = f"{mark} enrolled" if row.result.accepted else f"{mark} {row.result.reason}"
            if row.result.warning:
                text += f"  ⚠ {row.result.warning}"
        elif row.check is not None:
            text = describe_check(row.check)
        else:
            text = "checking…"
        result = QTableWidgetItem(text)
        result.setToolTip(text)
        if text.startswith("✗"):
            result.setForeground(theme.FAULT)
        elif "⚠" in text:
            result.setForeground(theme.UNKNOWN)
        elif text.startswith("✓"):
            result.setForeground(theme.ACCENT)
        self.table.setItem(index, 0, photo)
        self.table.setItem(index, 1, result)

    def _update_buttons(self) -> None:
        self.enrol_button.setEnabled(self.busy == 0 and bool(self.ready_checks))
        self.clear_button.setEnabled(self.busy == 0 and bool(self.rows))

    def result_texts(self) -> list[tuple[str, str]]:
        """(photo, result) as shown in the table (for tests and screen readers)."""
        texts = []
        for index in range(self.table.rowCount()):
            photo, result = self.table.item(index, 0), self.table.item(index, 1)
            texts.append((photo.text() if photo else "", result.text() if result else ""))
        return texts

    def closeEvent(self, event: object) -> None:
        self._capture_timer.stop()
        super().closeEvent(event)  # type: ignore[arg-type]


def _check_files(enroller: Enroller, paths: Sequence[Path], task: Task) -> list[PhotoCheck]:
    checks = []
    for index, path in enumerate(paths):
        if task.cancelled:
            break
        checks.append(enroller.check_file(path))
        task.report(index + 1, len(paths))
    return checks


# -- bulk import -------------------------------------------------------------------------------


class ImportWorker(Worker):
    """Enrols a folder of people (one subfolder each), reporting every photo."""

    progress = Signal(int, int)
    photo = Signal(str, str, bool, str)  # person, photo, accepted, reason or warning
    done = Signal(object)  # ImportSummary

    def __init__(self, enroller: Enroller, folder: Path) -> None:
        super().__init__()
        self.enroller = enroller
        self.folder = folder

    def work(self) -> None:
        summary = self.enroller.import_folder(
            self.folder, progress=self.progress.emit, on_result=self._result,
            cancelled=lambda: self.cancelled)
        if not self.cancelled:
            self.done.emit(summary)

    def _result(self, name: str, result: PhotoResult) -> None:
        note = (result.warning or "") if result.accepted else (result.reason or "")
        self.photo.emit(name, Path(result.source).name, result.accepted, note)


class ImportDialog(QDialog):
    """Bulk import: a folder with one subfolder of photos per person."""

    imported = Signal()

    def __init__(self, ctx: AppContext, runner: Runner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import a folder of people")
        self.resize(760, 560)
        self.ctx = ctx
        self.runner = runner
        self.worker: ImportWorker | None = None
        intro = QLabel("Choose a folder that holds one subfolder per person, named after them, "
                       "with their photos inside.")
        intro.setWordWrap(True)
        self.choose_button = QPushButton("Choose folder…")
        self.choose_button.setProperty("accent", True)
        self.choose_button.clicked.connect(self.choose_folder)
        self.consent_required = ctx.consent_required()
        self.consent_by = QLineEdit()
        self.consent_by.setPlaceholderText(
            "Who collected these people's consent (recorded for each new person)"
            + (": required here" if self.consent_required else ""))
        self.progress = QProgressBar()
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Person", "Photo", "Result"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.status = QLabel(" ")
        footer = theme.dialog_footer(self, self.status)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.consent_by)
        layout.addWidget(self.choose_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        layout.addLayout(footer)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of people")
        if folder:
            self.import_folder(Path(folder))

    def import_folder(self, folder: Path) -> None:
        """Start importing (in a worker)."""
        try:
            person_folders(folder)
        except FaceGuardError as error:
            self.status.setText(f"{error}.")
            return
        who = self.consent_by.text().strip() or None
        if who is None and self.consent_required:
            self.status.setText("This site requires consent before enrolment: say who "
                                "collected these people's consent first.")
            self.consent_by.setFocus()
            return
        try:
            consent = self.ctx.consent_for(who)
        except FaceGuardError as error:
            self.status.setText(f"{error}.")
            return
        enroller = self.ctx.enroller(actor=self.ctx.actor, consent=consent)
        worker = ImportWorker(enroller, folder)
        worker.progress.connect(self._progress)
        worker.photo.connect(self._photo)
        worker.done.connect(self._done)
        worker.failed.connect(self.status.setText)
        worker.finished.connect(self._finished)
        self.table.setRowCount(0)
        self.choose_button.setEnabled(False)
        self.status.setText(f"Importing {folder.name}…")
        self.worker = worker
        self.runner.start(worker)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _finished(self) -> None:
        self.choose_button.setEnabled(True)

    def _photo(self, person: str, photo: str, accepted: bool, note: str) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        text = ("✓ enrolled" + (f"  ⚠ {note}" if note else "")) if accepted else f"✗ {note}"
        result = QTableWidgetItem(text)
        result.setForeground(theme.ACCENT if accepted and not note else
                             theme.UNKNOWN if accepted else theme.FAULT)
        self.table.setItem(row, 0, QTableWidgetItem(person))
        self.table.setItem(row, 1, QTableWidgetItem(photo))
        self.table.setItem(row, 2, result)

    def _done(self, summary: ImportSummary) -> None:
        skipped = f", {summary.skipped} already enrolled" if summary.skipped else ""
        refused = "".join(f" {name}: {why}." for name, why in summary.refused)
        self.status.setText(
            f"Imported {summary.people_enrolled} of {plural(summary.people, 'person', 'people')}"
            f": {plural(summary.added, 'photo')} added, {len(summary.rejected)} rejected"
            f"{skipped}.{refused}")
        self.imported.emit()

    def closeEvent(self, event: object) -> None:
        if self.worker is not None:
            self.worker.cancel()
        super().closeEvent(event)  # type: ignore[arg-type]
