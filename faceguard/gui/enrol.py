"""The enrolment dialog: one person from photo files or the live camera (the bulk import of a
folder of people is :mod:`faceguard.gui.import_dialog`). Photos are checked in a worker (one
face, size, sharpness, frontal pose); the dialog shows the aligned crop kept for each good
photo and the reason for each rejected one."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.context import AppContext
from faceguard.core.enrolment import EnrolMode, LookAlike
from faceguard.core.photo_checks import PhotoCheck, image_files
from faceguard.errors import FaceGuardError
from faceguard.gui import theme
from faceguard.gui.photo_table import PhotoRow, PhotoTable
from faceguard.gui.tasks import Runner, Task
from faceguard.library.database import Person
from faceguard.wording import plural

CAPTURE_FRAMES = 6
CAPTURE_INTERVAL_MS = 350

FrameProvider = Callable[[], np.ndarray | None]
LOOKALIKE_CHOICES = (
    ("Refuse the photo", LookAlike.REFUSE),
    ("Add the photo to the person it matches", LookAlike.MERGE),
    ("Replace the person it matches with this one", LookAlike.REPLACE),
    ("Enrol it anyway (give a reason)", LookAlike.FORCE),
)


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

        self.table = PhotoTable()

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
        task = Task(lambda t: enroller.check_files(new, progress=t.report,
                                                   cancelled=lambda: t.cancelled))
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
        self.table.show_row(index, self.rows[index])

    def _update_buttons(self) -> None:
        self.enrol_button.setEnabled(self.busy == 0 and bool(self.ready_checks))
        self.clear_button.setEnabled(self.busy == 0 and bool(self.rows))

    def result_texts(self) -> list[tuple[str, str]]:
        """(photo, result) as shown in the table (for tests and screen readers)."""
        return self.table.texts()

    def closeEvent(self, event: object) -> None:
        self._capture_timer.stop()
        super().closeEvent(event)  # type: ignore[arg-type]
