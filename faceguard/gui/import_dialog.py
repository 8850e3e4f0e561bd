"""The bulk import dialog: a folder with one subfolder of photos per person, enrolled in a
worker (:meth:`faceguard.core.enrolment.Enroller.import_folder`) with every photo listed."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
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
from faceguard.core.enrolment import Enroller, ImportSummary, PhotoResult
from faceguard.core.photo_checks import person_folders
from faceguard.errors import FaceGuardError
from faceguard.gui import theme
from faceguard.gui.tasks import Runner, Worker
from faceguard.wording import plural


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
