"""The logs view: a paged table over the events with date, person and decision filters that
updates live, attendance per person per day, and CSV export of either (the library's export:
same columns, same spreadsheet safety)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QDate,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtGui import QHideEvent, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from faceguard.clock import local_text
from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.gui import theme
from faceguard.gui.admin import audit
from faceguard.library.attendance import AttendanceDay, attendance, local_day_range
from faceguard.library.database import Event, FaceLibrary
from faceguard.library.export import attendance_to_csv, events_to_csv
from faceguard.wording import access_text

PAGE_SIZE = 50
THUMB = 40
DECISIONS = (("All decisions", None), ("Recognised", "known"), ("Not recognised", "unknown"),
             ("Presentation attack suspected", "attack"))
DECISION_TEXT = {value: text for text, value in DECISIONS if value is not None}
ModelIndex = QModelIndex | QPersistentModelIndex


class EventFilter:
    """The filters of the logs view, as library query arguments."""

    def __init__(self, first: date | None = None, last: date | None = None,
                 person: int | None = None, decision: str | None = None,
                 kiosk: str | None = None) -> None:
        self.first, self.last, self.person, self.decision = first, last, person, decision
        self.kiosk = kiosk  # one door's entries (a fleet kiosk holds every door's)

    def range(self) -> tuple[datetime | None, datetime | None]:
        """Aware start and end for the chosen local days (None: open)."""
        if self.first is None and self.last is None:
            return None, None
        return local_day_range(self.first or date(1970, 1, 2), self.last or date(9999, 12, 30))

    def events(self, library: FaceLibrary, **extra: Any) -> list[Event]:
        start, end = self.range()
        return library.query_events(start, end, self.person, self.decision,
                                    kiosk_id=self.kiosk, **extra)

    def count(self, library: FaceLibrary) -> int:
        start, end = self.range()
        return library.count_events(start, end, self.person, self.decision,
                                    kiosk_id=self.kiosk)


class EventsModel(QAbstractTableModel):
    """One page of events, newest first, with face thumbnails."""

    HEADERS = ("Face", "Time", "Person", "Decision", "Door", "Similarity", "Kiosk")

    def __init__(self, library: FaceLibrary, page_size: int = PAGE_SIZE) -> None:
        super().__init__()
        self.library = library
        self.page_size = page_size
        self.filter = EventFilter()
        self.page = 0
        self.total = 0
        self.events: list[Event] = []
        self._thumbs: dict[int, QPixmap] = {}

    def refresh(self) -> None:
        """Re-read the current page (the filter or the data changed)."""
        self.beginResetModel()
        self.total = self.filter.count(self.library)
        last_page = max(0, (self.total - 1) // self.page_size)
        self.page = min(self.page, last_page)
        self.events = self.filter.events(self.library, limit=self.page_size,
                                         offset=self.page * self.page_size,
                                         newest_first=True, with_crops=True)
        self._thumbs = {k: v for k, v in self._thumbs.items()
                        if k in {e.id for e in self.events}}
        self.endResetModel()

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def go_to(self, page: int) -> None:
        self.page = max(0, min(page, self.pages - 1))
        self.refresh()

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.events)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        event = self.events[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return self._thumb(event)
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 1:
                return local_text(event.timestamp)
            if column == 2:
                return event.person_name or "—"
            if column == 3:
                return DECISION_TEXT.get(event.decision, event.decision)
            if column == 4:
                return access_text(event.access, event.access_reason)
            if column == 5:
                return "" if event.similarity is None else f"{event.similarity:.3f}"
            if column == 6:
                return event.kiosk_id
        if role == Qt.ItemDataRole.ForegroundRole and column == 3:
            return theme.ACCENT if event.decision == "known" else \
                theme.FAULT if event.decision == "attack" else theme.UNKNOWN
        if role == Qt.ItemDataRole.ToolTipRole and column == 4:
            return access_text(event.access, event.access_reason) or None
        if role == Qt.ItemDataRole.ForegroundRole and column == 4 and event.access == "denied":
            return theme.FAULT
        return None

    def _thumb(self, event: Event) -> QPixmap | None:
        if not event.crop_jpeg:
            return None
        if event.id not in self._thumbs:
            pixmap = QPixmap()
            if not pixmap.loadFromData(event.crop_jpeg, "JPG"):
                return None
            self._thumbs[event.id] = pixmap.scaled(
                THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
        return self._thumbs[event.id]


class LogsDialog(QDialog):
    """Events and attendance with filters, paging, live updates and CSV export."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, *,
                 page_size: int = PAGE_SIZE, today: date | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Entry log")
        self.resize(980, 680)
        self.ctx = ctx
        today = today or date.today()
        self.model = EventsModel(ctx.library, page_size)

        self.first = QDateEdit(QDate(today.year, today.month, today.day).addDays(-6))
        self.last = QDateEdit(QDate(today.year, today.month, today.day))
        for edit in (self.first, self.last):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.dateChanged.connect(self.apply_filters)
        self.person = QComboBox()
        self.person.setMinimumWidth(200)
        self.decision = QComboBox()
        for text, value in DECISIONS:
            self.decision.addItem(text, value)
        self.door = QComboBox()
        self.door.addItem("All doors", None)
        for name in ctx.door_names():
            self.door.addItem(name, name)
        self.door.setVisible(self.door.count() > 2)  # shown where several doors log here
        self.door.currentIndexChanged.connect(self.apply_filters)
        self.load_people()
        self.person.currentIndexChanged.connect(self.apply_filters)
        self.decision.currentIndexChanged.connect(self.apply_filters)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("From"))
        filters.addWidget(self.first)
        filters.addWidget(QLabel("to"))
        filters.addWidget(self.last)
        filters.addSpacing(12)
        filters.addWidget(self.person)
        filters.addWidget(self.decision)
        filters.addWidget(self.door)
        filters.addStretch(1)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 6)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, THUMB + 20)
        self.table.setColumnWidth(1, 170)
        self.table.setColumnWidth(2, 180)
        self.table.setColumnWidth(3, 130)
        self.table.setColumnWidth(4, 220)
        self.newer = QPushButton("◀ Newer")
        self.older = QPushButton("Older ▶")
        self.newer.clicked.connect(lambda: self.model.go_to(self.model.page - 1))
        self.older.clicked.connect(lambda: self.model.go_to(self.model.page + 1))
        self.page_label = QLabel()
        self.export_events_button = QPushButton("Export events (CSV)…")
        self.export_events_button.clicked.connect(self.choose_events_csv)
        pager = QHBoxLayout()
        pager.addWidget(self.newer)
        pager.addWidget(self.older)
        pager.addWidget(self.page_label)
        pager.addStretch(1)
        pager.addWidget(self.export_events_button)
        events_tab = QWidget()
        events_layout = QVBoxLayout(events_tab)
        events_layout.addWidget(self.table, 1)
        events_layout.addLayout(pager)

        self.attendance_table = QTableWidget(0, 6)
        self.attendance_table.setHorizontalHeaderLabels(
            ["Date", "Person", "First in", "Last out", "Hours", "Events"])
        self.attendance_table.verticalHeader().hide()
        self.attendance_table.setAlternatingRowColors(True)
        self.attendance_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.attendance_table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.Stretch)
        self.export_attendance_button = QPushButton("Export attendance (CSV)…")
        self.export_attendance_button.clicked.connect(self.choose_attendance_csv)
        attendance_tab = QWidget()
        attendance_layout = QVBoxLayout(attendance_tab)
        attendance_layout.addWidget(self.attendance_table, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.export_attendance_button)
        attendance_layout.addLayout(row)

        self.tabs = QTabWidget()
        self.tabs.addTab(events_tab, "Events")
        self.tabs.addTab(attendance_tab, "Attendance")
        self.status = QLabel(" ")
        theme.set_role(self.status, "hint")
        footer = theme.dialog_footer(self, self.status)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(footer)

        self._refresh_timer = QTimer(self, singleShot=True, interval=300)
        self._refresh_timer.timeout.connect(self.refresh)
        self.model.modelReset.connect(self._update_pager)
        self.apply_filters()

    # -- filters -------------------------------------------------------------------------------

    def load_people(self) -> None:
        """Fill the person filter (removed people's events stay under "Everyone")."""
        current = self.person.currentData()
        self.person.blockSignals(True)
        self.person.clear()
        self.person.addItem("Everyone", None)
        for person in self.ctx.library.list_people(include_inactive=True):
            self.person.addItem(person.name, person.id)
        index = self.person.findData(current)
        self.person.setCurrentIndex(max(0, index))
        self.person.blockSignals(False)

    def current_filter(self) -> EventFilter:
        first = self.first.date().toPython()
        last = self.last.date().toPython()
        assert isinstance(first, date) and isinstance(last, date)
        if last < first:
            first, last = last, first
        return EventFilter(first, last, self.person.currentData(), self.decision.currentData(),
                           self.door.currentData())

    def apply_filters(self) -> None:
        self.model.filter = self.current_filter()
        self.model.page = 0
        self.refresh()

    def refresh(self) -> None:
        """Re-read events and attendance (also called on each new event, debounced)."""
        try:
            self.model.refresh()
            self.days = self.attendance_days()
        except FaceGuardError as error:
            self.status.setText(str(error))
            return
        self._fill_attendance(self.days)

    def event_logged(self, _event: object = None) -> None:
        """Live update: a new event was logged (refresh shortly, once per burst)."""
        self._refresh_timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        """Closed: a refresh still pending would read the library after the dialog's end."""
        self._refresh_timer.stop()
        super().hideEvent(event)

    def attendance_days(self) -> list[AttendanceDay]:
        events = self.model.filter.events(self.ctx.library)
        return attendance(events, decisions={"known"})

    def _fill_attendance(self, days: list[AttendanceDay]) -> None:
        self.attendance_table.setRowCount(len(days))
        for row, day in enumerate(days):
            values = [day.day.isoformat(), day.person_name, local_text(day.first_in, "%H:%M"),
                      local_text(day.last_out, "%H:%M") if day.last_out else "—",
                      f"{day.hours:.2f}", str(day.events)]
            for column, value in enumerate(values):
                self.attendance_table.setItem(row, column, QTableWidgetItem(value))

    def _update_pager(self) -> None:
        model = self.model
        if model.total == 0:
            self.page_label.setText("No events for these filters")
        else:
            first = model.page * model.page_size + 1
            last = first + len(model.events) - 1
            self.page_label.setText(f"{first}–{last} of {model.total}   (page {model.page + 1} "
                                    f"of {model.pages})")
        self.newer.setEnabled(model.page > 0)
        self.older.setEnabled(model.page + 1 < model.pages)

    def allow_reports(self, allowed: bool) -> None:
        """Show or hide the attendance report and the CSV exports (a viewer account sees
        the entry log only)."""
        self.export_events_button.setVisible(allowed)
        self.export_attendance_button.setVisible(allowed)
        self.tabs.setTabVisible(1, allowed)

    # -- export --------------------------------------------------------------------------------

    def choose_events_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export events", "events.csv",
                                              "CSV files (*.csv)")
        if path:
            self.export_events(Path(path))

    def choose_attendance_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export attendance", "attendance.csv",
                                              "CSV files (*.csv)")
        if path:
            self.export_attendance(Path(path))

    def export_events(self, path: Path) -> int:
        """Write every event matching the filters (all pages) as CSV; returns the row count."""
        try:
            count = events_to_csv(self.model.filter.events(self.ctx.library), path)
        except FaceGuardError as error:
            self.status.setText(str(error))
            return 0
        audit(self.ctx, "export_events", {"rows": count, "file": path.name})
        self.status.setText(f"Wrote {count} events to {path}.")
        return count

    def export_attendance(self, path: Path) -> int:
        """Write the attendance days for the filters as CSV; returns the row count."""
        try:
            count = attendance_to_csv(self.attendance_days(), path)
        except FaceGuardError as error:
            self.status.setText(str(error))
            return 0
        audit(self.ctx, "export_attendance", {"rows": count, "file": path.name})
        self.status.setText(f"Wrote {count} attendance rows to {path}.")
        return count
