"""Drawn icons for the standard actions, in the kiosk's light-on-dark colours.

Qt's own file dialog asks the style for its toolbar icons (back, forward, parent folder, new
folder, list and detail view). Without a desktop icon theme (most kiosk installs, Xvfb) Qt
falls back to its built-in dark-grey pictures, which vanish on the kiosk's dark background: the
toolbar showed six blank buttons. :class:`KioskStyle` keeps Fusion's look and draws those icons
itself in the theme's text colour.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QProxyStyle, QStyle, QStyleOption, QWidget

ICON_PX = 32
Draw = Callable[[QPainter], None]
SP = QStyle.StandardPixmap


def _polyline(*points: tuple[float, float]) -> QPainterPath:
    path = QPainterPath(QPointF(*points[0]))
    for point in points[1:]:
        path.lineTo(QPointF(*point))
    return path


ARROWS = {  # shaft, then head, on a 32 px grid
    "left": (((26, 16), (7, 16)), ((14, 8), (6, 16), (14, 24))),
    "right": (((6, 16), (25, 16)), ((18, 8), (26, 16), (18, 24))),
    "up": (((16, 26), (16, 7)), ((8, 14), (16, 6), (24, 14))),
}


def _arrow(direction: str) -> Draw:
    def draw(painter: QPainter) -> None:
        for stroke in ARROWS[direction]:
            painter.drawPath(_polyline(*stroke))
    return draw


def _new_folder(painter: QPainter) -> None:
    folder = _polyline((4, 9), (12, 9), (14, 12), (28, 12), (28, 26), (4, 26))
    folder.closeSubpath()
    painter.drawPath(folder)
    painter.drawLine(QPointF(16, 15), QPointF(16, 23))
    painter.drawLine(QPointF(12, 19), QPointF(20, 19))


def _list_view(painter: QPainter) -> None:
    for y in (9, 16, 23):
        painter.drawLine(QPointF(6, y), QPointF(8, y))
        painter.drawLine(QPointF(12, y), QPointF(26, y))


def _detail_view(painter: QPainter) -> None:
    painter.drawRect(QRectF(5, 7, 22, 18))
    painter.drawLine(QPointF(5, 13), QPointF(27, 13))
    painter.drawLine(QPointF(5, 19), QPointF(27, 19))
    painter.drawLine(QPointF(13, 7), QPointF(13, 25))


DRAWN: dict[QStyle.StandardPixmap, Draw] = {
    SP.SP_ArrowBack: _arrow("left"),
    SP.SP_ArrowLeft: _arrow("left"),
    SP.SP_ArrowForward: _arrow("right"),
    SP.SP_ArrowRight: _arrow("right"),
    SP.SP_ArrowUp: _arrow("up"),
    SP.SP_FileDialogToParent: _arrow("up"),
    SP.SP_FileDialogNewFolder: _new_folder,
    SP.SP_FileDialogListView: _list_view,
    SP.SP_FileDialogDetailedView: _detail_view,
}


def drawn_icon(kind: QStyle.StandardPixmap, colour: QColor) -> QIcon:
    """The drawn icon for a standard action (empty when none is drawn for it)."""
    draw = DRAWN.get(kind)
    if draw is None:
        return QIcon()
    icon = QIcon()
    for mode, alpha in ((QIcon.Mode.Normal, 255), (QIcon.Mode.Disabled, 90)):
        pixmap = QPixmap(ICON_PX, ICON_PX)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        tint = QColor(colour)
        tint.setAlpha(alpha)
        pen = QPen(tint, 2.4, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                   Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        draw(painter)
        painter.end()
        icon.addPixmap(pixmap, mode)
    return icon


class KioskStyle(QProxyStyle):
    """Fusion, with the file dialog's toolbar icons drawn in the kiosk's colours."""

    def __init__(self, colour: QColor) -> None:
        super().__init__("Fusion")
        self.colour = colour
        self._cache: dict[QStyle.StandardPixmap, QIcon] = {}

    def standardIcon(self, standardIcon: QStyle.StandardPixmap,
                     option: QStyleOption | None = None,
                     widget: QWidget | None = None) -> QIcon:
        if standardIcon not in DRAWN:
            return super().standardIcon(standardIcon, option, widget)
        if standardIcon not in self._cache:
            self._cache[standardIcon] = drawn_icon(standardIcon, self.colour)
        return self._cache[standardIcon]
