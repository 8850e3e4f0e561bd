"""A group's weekly access hours drawn as a grid (the access rules editor shows it)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from faceguard.core.access import MINUTES_PER_DAY
from faceguard.core.access_admin import day_segments
from faceguard.gui import theme

ROW_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Holiday")
Windows = tuple[tuple[int, int, int, str | None], ...]


class WeekGrid(QWidget):
    """A week drawn as 8 rows (Monday .. Sunday, holidays) by 24 hours; open hours filled."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.windows: Windows = ()
        self.setMinimumSize(520, 230)

    def sizeHint(self) -> QSize:
        return QSize(640, 250)

    def set_windows(self, windows: Windows) -> None:
        """Show these windows (day, start, end, door)."""
        self.windows = tuple(windows)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        left, top, bottom_pad = 70.0, 22.0, 6.0
        width = self.width() - left - 10
        row_h = (self.height() - top - bottom_pad) / 8
        painter.setPen(theme.MUTED)
        for hour in range(0, 25, 3):
            x = left + width * hour / 24
            painter.drawText(QRectF(x - 20, 2, 40, 16), Qt.AlignmentFlag.AlignCenter,
                             f"{hour:02d}")
        spans = day_segments(self.windows)
        for row in range(8):
            y = top + row * row_h
            painter.setPen(theme.TEXT)
            painter.drawText(QRectF(4, y, left - 10, row_h),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                             ROW_NAMES[row])
            painter.fillRect(QRectF(left, y + 3, width, row_h - 6), QColor(255, 255, 255, 18))
            for start, end in spans[row]:
                x0 = left + width * start / MINUTES_PER_DAY
                x1 = left + width * end / MINUTES_PER_DAY
                painter.fillRect(QRectF(x0, y + 3, max(x1 - x0, 2.0), row_h - 6), theme.ACCENT)
        grid = QPen(QColor(255, 255, 255, 40))
        painter.setPen(grid)
        for hour in range(25):
            x = left + width * hour / 24
            painter.drawLine(int(x), int(top), int(x), int(top + 8 * row_h))
        painter.end()
