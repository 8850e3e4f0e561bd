"""The access rules editor (admin, behind the PIN): groups and their members, each group's
weekly hours drawn as a grid, holidays, and each person's pass (valid from / until,
disabled). Every change goes through :class:`faceguard.core.access_admin.AccessAdmin`
(audited, one transaction each); the kiosk reads the rules again after each one."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.access import DAY_NAMES, HOLIDAY, format_minutes
from faceguard.core.access_admin import DAY_CHOICES, AccessAdmin, Pass
from faceguard.errors import FaceGuardError
from faceguard.gui import theme
from faceguard.gui.week_grid import WeekGrid


def _date_edit() -> QDateEdit:
    edit = QDateEdit()
    edit.setCalendarPopup(True)
    edit.setDisplayFormat("yyyy-MM-dd")
    edit.setDate(QDate.currentDate())
    return edit


def _qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


def _pydate(value: QDate) -> date:
    return date(value.year(), value.month(), value.day())


class RulesDialog(QDialog):
    """Groups and hours, holidays, passes (see the module notes)."""

    def __init__(self, admin: AccessAdmin, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Access rules")
        self.resize(1000, 680)
        self.admin = admin
        self.message = QLabel(" ")
        self.message.setWordWrap(True)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._groups_tab(), "Groups and hours")
        self.tabs.addTab(self._holidays_tab(), "Holidays")
        self.tabs.addTab(self._passes_tab(), "Passes")
        zone = QLabel(f"Hours are local wall-clock times ({admin.zone}); a window whose end is "
                      "before its start runs past midnight. While no group exists, every "
                      "recognised person may pass (access.without_rules = "
                      f"{admin.ctx.settings.access_without_rules}).")
        zone.setWordWrap(True)
        theme.set_role(zone, "hint")
        layout = QVBoxLayout(self)
        layout.addWidget(zone)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(theme.dialog_footer(self, self.message))
        self.refresh()

    # -- layout ------------------------------------------------------------------------------

    def _groups_tab(self) -> QWidget:
        self.group_list = QListWidget()
        self.group_list.currentTextChanged.connect(self._group_chosen)
        self.new_group = QLineEdit()
        self.new_group.setPlaceholderText("New group (e.g. Staff)")
        add = QPushButton("Add group")
        add.clicked.connect(self.add_group)
        self.remove_group_button = QPushButton("Remove group")
        self.remove_group_button.clicked.connect(self.remove_group)
        left = QVBoxLayout()
        left.addWidget(QLabel("Groups"))
        left.addWidget(self.group_list, 1)
        left.addWidget(self.new_group)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(self.remove_group_button)
        left.addLayout(row)
        left_box = QWidget()
        left_box.setLayout(left)

        self.grid = WeekGrid()
        self.window_list = QListWidget()
        self.days = QComboBox()
        for choice in DAY_CHOICES:
            self.days.addItem(choice)
        self.start = QLineEdit("07:00")
        self.end = QLineEdit("19:00")
        for edit in (self.start, self.end):
            edit.setInputMask("99:99")
            edit.setFixedWidth(edit.fontMetrics().horizontalAdvance("00:00") + 28)
        self.door = QLineEdit()
        self.door.setPlaceholderText("every door")
        self.door.setToolTip("Only at this kiosk (its kiosk name); empty: at every door")
        self.door.setMaximumWidth(130)
        add_hours = QPushButton("Add hours")
        add_hours.clicked.connect(self.add_hours)
        remove_hours = QPushButton("Remove selected hours")
        remove_hours.clicked.connect(self.remove_hours)
        hours_row = QHBoxLayout()
        hours_row.addWidget(self.days)
        hours_row.addWidget(self.start)
        hours_row.addWidget(QLabel("to"))
        hours_row.addWidget(self.end)
        hours_row.addWidget(self.door)
        hours_row.addWidget(add_hours)
        hours_row.addStretch(1)
        hours_row.addWidget(remove_hours)
        hours = QGroupBox("Weekly hours")
        hours_layout = QVBoxLayout(hours)
        hours_layout.addWidget(self.grid, 2)
        hours_layout.addWidget(self.window_list, 1)
        hours_layout.addLayout(hours_row)

        self.member_list = QListWidget()
        save_members = QPushButton("Save members")
        save_members.clicked.connect(self.save_members)
        members = QGroupBox("Members")
        members_layout = QVBoxLayout(members)
        members_layout.addWidget(self.member_list, 1)
        members_layout.addWidget(save_members)

        right = QSplitter(Qt.Orientation.Horizontal)
        right.addWidget(hours)
        right.addWidget(members)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left_box)
        split.addWidget(right)
        split.setStretchFactor(1, 4)
        return split

    def _holidays_tab(self) -> QWidget:
        self.holiday_list = QListWidget()
        self.holiday_date = _date_edit()
        self.holiday_name = QLineEdit()
        self.holiday_name.setPlaceholderText("Name (optional)")
        add = QPushButton("Add holiday")
        add.clicked.connect(self.add_holiday)
        remove = QPushButton("Remove selected")
        remove.clicked.connect(self.remove_holiday)
        row = QHBoxLayout()
        row.addWidget(self.holiday_date)
        row.addWidget(self.holiday_name, 1)
        row.addWidget(add)
        row.addWidget(remove)
        hint = QLabel("On a holiday, each group's holiday hours apply instead of that "
                      "weekday's (a group without holiday hours is closed).")
        hint.setWordWrap(True)
        theme.set_role(hint, "hint")
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.addWidget(hint)
        layout.addWidget(self.holiday_list, 1)
        layout.addLayout(row)
        return box

    def _passes_tab(self) -> QWidget:
        self.pass_table = QTableWidget(0, 2)
        self.pass_table.setHorizontalHeaderLabels(["Person", "Pass"])
        self.pass_table.horizontalHeader().setStretchLastSection(True)
        self.pass_table.setColumnWidth(0, 260)
        self.pass_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.pass_table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.pass_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.pass_table.itemSelectionChanged.connect(self._pass_chosen)
        self.use_from = QCheckBox("Valid from")
        self.use_until = QCheckBox("Valid until (inclusive)")
        self.valid_from = _date_edit()
        self.valid_until = _date_edit()
        for edit, check in ((self.valid_from, self.use_from),
                            (self.valid_until, self.use_until)):
            edit.setEnabled(False)
            check.toggled.connect(edit.setEnabled)
        self.disabled = QCheckBox("Disabled (never let in)")
        save = QPushButton("Save pass")
        save.clicked.connect(self.save_pass)
        form = QFormLayout()
        form.addRow(self.use_from, self.valid_from)
        form.addRow(self.use_until, self.valid_until)
        form.addRow("", self.disabled)
        form.addRow("", save)
        box = QWidget()
        layout = QHBoxLayout(box)
        layout.addWidget(self.pass_table, 2)
        side = QVBoxLayout()
        side.addLayout(form)
        side.addStretch(1)
        layout.addLayout(side, 1)
        return box

    # -- showing -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read everything again from the library."""
        current = self.current_group
        self._groups = {g.name: g for g in self.admin.groups()}
        self.group_list.blockSignals(True)
        self.group_list.clear()
        for name in self._groups:
            self.group_list.addItem(name)
        self.group_list.blockSignals(False)
        names = list(self._groups)
        if names:
            self.group_list.setCurrentRow(names.index(current) if current in names else 0)
        self._group_chosen(self.current_group or "")
        self.holiday_list.clear()
        for day, name in self.admin.holidays():
            item = QListWidgetItem(f"{day.isoformat()}  {name}".strip())
            item.setData(Qt.ItemDataRole.UserRole, day.isoformat())
            self.holiday_list.addItem(item)
        self._passes = self.admin.passes()
        chosen = self.current_pass
        self.pass_table.blockSignals(True)
        self.pass_table.setRowCount(len(self._passes))
        for row, entry in enumerate(self._passes):
            self.pass_table.setItem(row, 0, QTableWidgetItem(entry.name))
            self.pass_table.setItem(row, 1, QTableWidgetItem(entry.label()))
        self.pass_table.blockSignals(False)
        if chosen is not None:
            ids = [p.person_id for p in self._passes]
            if chosen.person_id in ids:
                self.pass_table.selectRow(ids.index(chosen.person_id))

    @property
    def current_group(self) -> str | None:
        item = self.group_list.currentItem() if hasattr(self, "_groups") else None
        return item.text() if item is not None else None

    def _group_chosen(self, name: str) -> None:
        group = self._groups.get(name)
        windows = group.windows if group else ()
        self.grid.set_windows(windows)
        self.window_list.clear()
        for day, start, end, door in windows:
            text = f"{DAY_NAMES[day]} {format_minutes(start)}-{format_minutes(end)}"
            if end <= start:
                text += " (runs past midnight)"
            if door:
                text += f" at {door} only"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, (day, start))
            self.window_list.addItem(item)
        self.member_list.clear()
        members = self.admin.member_ids(name) if group else set()
        for person in self.admin.ctx.library.list_people():
            item = QListWidgetItem(person.name)
            item.setData(Qt.ItemDataRole.UserRole, person.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if person.id in members
                               else Qt.CheckState.Unchecked)
            self.member_list.addItem(item)
        self.member_list.setEnabled(group is not None)

    @property
    def current_pass(self) -> Pass | None:
        rows = self.pass_table.selectionModel().selectedRows() if hasattr(self, "_passes") \
            else []
        if not rows or rows[0].row() >= len(self._passes):
            return None
        return self._passes[rows[0].row()]

    def _pass_chosen(self) -> None:
        entry = self.current_pass
        if entry is None:
            return
        self.use_from.setChecked(entry.valid_from is not None)
        self.use_until.setChecked(entry.valid_until is not None)
        if entry.valid_from:
            self.valid_from.setDate(_qdate(entry.valid_from))
        if entry.valid_until:
            self.valid_until.setDate(_qdate(entry.valid_until))
        self.disabled.setChecked(entry.disabled)

    # -- changing ----------------------------------------------------------------------------

    def _do(self, done: str, change: object) -> bool:
        """Run a change; its error (one line) or ``done`` in the message line."""
        try:
            assert callable(change)
            change()
        except FaceGuardError as error:
            self.message.setText(str(error))
            theme.set_role(self.message, "error")
            return False
        self.message.setText(done)
        theme.set_role(self.message, "ok")
        self.refresh()
        return True

    def add_group(self) -> None:
        name = " ".join(self.new_group.text().split())
        if self._do(f"Added the group {name}.", lambda: self.admin.add_group(name)):
            self.new_group.clear()
            items = self.group_list.findItems(name, Qt.MatchFlag.MatchFixedString)
            if items:
                self.group_list.setCurrentItem(items[0])

    def remove_group(self) -> None:
        name = self.current_group
        if name:
            self._do(f"Removed the group {name}.", lambda: self.admin.remove_group(name))

    def add_hours(self) -> None:
        name = self.current_group
        if not name:
            self.message.setText("Choose or add a group first.")
            theme.set_role(self.message, "error")
            return
        days, start, end = self.days.currentText(), self.start.text(), self.end.text()
        door = self.door.text().strip() or None
        where = f" at {door}" if door else ""
        self._do(f"{name}: added {days} {start}-{end}{where}.",
                 lambda: self.admin.add_hours(name, days, start, end, door))

    def remove_hours(self) -> None:
        name, item = self.current_group, self.window_list.currentItem()
        if name and item is not None:
            day, start = item.data(Qt.ItemDataRole.UserRole)
            self._do(f"{name}: removed {item.text()}.",
                     lambda: self.admin.remove_hours(name, int(day), int(start)))

    def save_members(self) -> None:
        name = self.current_group
        if not name:
            return
        chosen = [int(self.member_list.item(i).data(Qt.ItemDataRole.UserRole))
                  for i in range(self.member_list.count())
                  if self.member_list.item(i).checkState() == Qt.CheckState.Checked]
        self._do(f"{name}: {len(chosen)} member{'s' if len(chosen) != 1 else ''}.",
                 lambda: self.admin.set_members(name, chosen))

    def add_holiday(self) -> None:
        day = _pydate(self.holiday_date.date())
        name = self.holiday_name.text()
        if self._do(f"{day.isoformat()} is a holiday.",
                    lambda: self.admin.set_holiday(day, name)):
            self.holiday_name.clear()

    def remove_holiday(self) -> None:
        item = self.holiday_list.currentItem()
        if item is not None:
            day = date.fromisoformat(str(item.data(Qt.ItemDataRole.UserRole)))
            self._do(f"{day.isoformat()} is no longer a holiday.",
                     lambda: self.admin.remove_holiday(day))

    def save_pass(self) -> None:
        entry = self.current_pass
        if entry is None:
            self.message.setText("Choose a person first.")
            theme.set_role(self.message, "error")
            return
        start = _pydate(self.valid_from.date()) if self.use_from.isChecked() else None
        until = _pydate(self.valid_until.date()) if self.use_until.isChecked() else None
        disabled = self.disabled.isChecked()
        self._do(f"Saved the pass of {entry.name}.",
                 lambda: self.admin.set_pass(entry.person_id, start, until, disabled))


__all__ = ["HOLIDAY", "RulesDialog", "WeekGrid"]
