"""The people screen: list, add, edit and remove enrolled people (removal deletes their
templates and stored face crops)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.gui import theme
from faceguard.gui.enrol import EnrolDialog, FrameProvider
from faceguard.gui.import_dialog import ImportDialog
from faceguard.gui.tasks import Runner
from faceguard.library.database import Person
from faceguard.library.export import format_timestamp
from faceguard.wording import plural

Confirm = Callable[[QWidget, str], bool]
DialogOpener = Callable[[QDialog], int]


def ask_yes_no(parent: QWidget, question: str) -> bool:
    """A plain yes/no question."""
    answer = QMessageBox.question(parent, "Please confirm", question)
    return answer == QMessageBox.StandardButton.Yes


class PersonDialog(QDialog):
    """Edit a person's name, employee id and department."""

    def __init__(self, person: Person, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Edit {person.name}")
        self.name = QLineEdit(person.name)
        self.employee_id = QLineEdit(person.employee_id or "")
        self.department = QLineEdit(person.department or "")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Employee id", self.employee_id)
        form.addRow("Department", self.department)
        buttons = theme.accept_cancel(self, self.accept)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)


class PeopleDialog(QDialog):
    """Everyone enrolled, with their photo count; changes keep the live matcher in sync."""

    changed = Signal()  # anything about the people changed (counts, templates)
    renamed = Signal(int)  # person id whose name or details changed
    removed = Signal(int)  # person id removed

    def __init__(self, ctx: AppContext, runner: Runner, parent: QWidget | None = None, *,
                 frame_provider: FrameProvider | None = None, confirm: Confirm = ask_yes_no,
                 opener: DialogOpener = lambda dialog: dialog.exec()) -> None:
        super().__init__(parent)
        self.setWindowTitle("People")
        self.resize(860, 560)
        self.ctx = ctx
        self.runner = runner
        self.frame_provider = frame_provider
        self.confirm = confirm
        self.opener = opener
        self.people: list[Person] = []
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Name", "Employee id", "Department", "Photos",
                                              "Enrolled"])
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, self.table.columnCount()):  # headers never cut ("mployee ic")
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.add_button = QPushButton("Add a person…")
        self.add_button.setProperty("accent", True)
        self.photos_button = QPushButton("Add photos…")
        self.edit_button = QPushButton("Edit…")
        self.remove_button = QPushButton("Remove…")
        self.import_button = QPushButton("Import a folder of people…")
        self.add_button.clicked.connect(self.add_person)
        self.photos_button.clicked.connect(self.add_photos)
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.import_button.clicked.connect(self.bulk_import)
        self.forget_crops = QCheckBox("On removal, also erase the face images of their past "
                                      "entries")
        self.status = QLabel(" ")
        theme.set_role(self.status, "hint")
        buttons = QHBoxLayout()
        for button in (self.add_button, self.photos_button, self.edit_button,
                       self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        footer = theme.dialog_footer(self, self.status)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.forget_crops)
        layout.addLayout(footer)
        self.reload()

    def reload(self) -> None:
        """Re-read the people from the library."""
        self.people = self.ctx.library.list_people()
        self.table.setRowCount(len(self.people))
        for row, person in enumerate(self.people):
            values = [person.name, person.employee_id or "", person.department or "",
                      str(person.template_count), format_timestamp(person.created)[:10]]
            for column, value in enumerate(values):
                self.table.setItem(row, column, QTableWidgetItem(value))
        self.status.setText(f"{plural(len(self.people), 'person', 'people')} enrolled")
        self._update_buttons()

    def selected(self) -> Person | None:
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return self.people[min(rows)] if rows else None

    def select(self, name: str) -> None:
        """Select a person by name (tests, and after adding)."""
        for row, person in enumerate(self.people):
            if person.name == name:
                self.table.selectRow(row)
                return

    def _update_buttons(self) -> None:
        chosen = self.selected() is not None
        for button in (self.photos_button, self.edit_button, self.remove_button):
            button.setEnabled(chosen)

    def _enrol_dialog(self, person: Person | None) -> None:
        dialog = EnrolDialog(self.ctx, self.runner, self, frame_provider=self.frame_provider,
                             person=person)
        dialog.enrolled.connect(lambda _p: self._changed())
        self.opener(dialog)
        self.reload()

    def add_person(self) -> None:
        self._enrol_dialog(None)

    def add_photos(self) -> None:
        person = self.selected()
        if person is not None:
            self._enrol_dialog(person)

    def bulk_import(self) -> None:
        dialog = ImportDialog(self.ctx, self.runner, self)
        dialog.imported.connect(self._changed)
        self.opener(dialog)
        self.reload()

    def edit_selected(self) -> None:
        person = self.selected()
        if person is None:
            return
        dialog = PersonDialog(person, self)
        if self.opener(dialog) != QDialog.DialogCode.Accepted:
            return
        self.update_person(person, dialog.name.text(), dialog.employee_id.text(),
                           dialog.department.text())

    def update_person(self, person: Person, name: str, employee_id: str,
                      department: str) -> bool:
        """Save edited fields; False (with the reason shown) when the library refuses."""
        try:
            self.ctx.update_person(person.id, name=name,
                                   employee_id=employee_id.strip() or None,
                                   department=department.strip() or None, actor=self.ctx.actor)
        except FaceGuardError as error:
            self.status.setText(str(error))
            theme.set_role(self.status, "error")
            return False
        self.renamed.emit(person.id)
        self.changed.emit()
        self.reload()
        return True

    def remove_selected(self) -> None:
        person = self.selected()
        if person is None:
            return
        question = (f"Remove {person.name} and their {person.template_count} face templates? "
                    "Their past entries stay in the log under their name.")
        if not self.confirm(self, question):
            return
        self.remove_person(person, forget_crops=self.forget_crops.isChecked())

    def remove_person(self, person: Person, *, forget_crops: bool = False) -> None:
        """Delete a person and their templates, and drop them from live matching."""
        try:
            self.ctx.remove_person(person.id, forget_event_crops=forget_crops, actor=self.ctx.actor)
        except FaceGuardError as error:
            self.status.setText(str(error))
            theme.set_role(self.status, "error")
            return
        self.removed.emit(person.id)
        self.changed.emit()
        self.reload()
        self.status.setText(f"Removed {person.name}.")

    def _changed(self) -> None:
        self.changed.emit()
