"""The live view: the newest frame with its faces painted over it, the greeting banner, and a
panel that offers other sources when the camera is missing or fails.

The view never shows an old frame as live: if no new frame has arrived for ``stale_after_s``
(or the worker reports a fault) the frame is dimmed and a message says what is happening.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from faceguard.clock import local_hhmm
from faceguard.gui import theme
from faceguard.kiosk.decisions import KioskEvent
from faceguard.kiosk.loop import STALE_AFTER_S, SourceStatus
from faceguard.kiosk.pipeline import FaceInfo, FrameResult

BANNER_SECONDS = 4.0
LOOK_AT_CAMERA = "Please look at the camera"
LOOK_AT_CAMERA_DETAIL = "Step out of view for a moment, then face the screen"


def _place(widget: QWidget, max_width: int, bottom_margin: int | None) -> None:
    """Centre an overlay horizontally; at the bottom (with a margin) or in the middle."""
    parent = widget.parentWidget()
    if parent is None:
        return
    widget.setFixedWidth(max(200, min(parent.width() - 40, max_width)))
    widget.adjustSize()
    free = parent.height() - widget.height()
    top = free // 2 if bottom_margin is None else free - bottom_margin
    widget.move((parent.width() - widget.width()) // 2, top)


def _place_bottom(widget: QWidget, margin: int = 24, max_width: int = 860) -> None:
    _place(widget, max_width, margin)


def _place_centre(widget: QWidget, max_width: int = 720) -> None:
    _place(widget, max_width, None)


class Banner(QFrame):
    """The large greeting under the video: welcome, goodbye, or not recognised."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.title = theme.named_label("", "bannerTitle")
        self.detail = theme.named_label("", "bannerDetail")
        for label in (self.title, self.detail):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 14, 28, 16)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.detail)
        self._hide_timer = QTimer(self, singleShot=True)
        self._hide_timer.timeout.connect(self.clear)
        self._event_until = 0.0
        self.tone = ""
        self.hide()

    def _show(self, title: str, detail: str, tone: str, seconds: float) -> None:
        self.title.setText(title)
        self.detail.setText(detail)
        if tone != self.tone:
            self.tone = tone
            self.setProperty("tone", tone)
            self.style().unpolish(self)
            self.style().polish(self)
        _place_bottom(self)
        self.show()
        self.raise_()
        self._hide_timer.start(int(seconds * 1000))

    def show_event(self, event: KioskEvent) -> None:
        """A newly logged event (takes priority over the frame-by-frame verdicts)."""
        self._event_until = time.monotonic() + BANNER_SECONDS
        if event.attack:  # plain words, never an accusation
            self._show(LOOK_AT_CAMERA, LOOK_AT_CAMERA_DETAIL, "unknown", BANNER_SECONDS)
            return
        if event.person_id is None:
            self._show("Not recognised", "Please ask at reception to be enrolled", "unknown",
                       BANNER_SECONDS)
            return
        name = event.person_name or "?"
        if event.door == "denied":  # recognised, but the rules do not let them in now
            reason = event.door_reason or "not allowed now"
            self._show("Access denied", f"{name}: {reason[0].upper()}{reason[1:]}", "unknown",
                       BANNER_SECONDS)
            return
        greeting = "Goodbye" if event.direction == "OUT" else "Welcome"
        opened = " - door open" if event.door == "unlocked" else ""
        self._show(f"{greeting}, {name}",
                   f"{local_hhmm(event.timestamp)} - {event.direction}{opened}", "welcome",
                   BANNER_SECONDS)

    def show_result(self, result: FrameResult) -> None:
        """Keep the banner in step with the current verdict between events."""
        if time.monotonic() < self._event_until:
            return
        if not any(face.counted for face in result.faces):
            self.clear()  # nobody in view: a verdict about someone who left is not shown
            return
        verdict = result.verdict
        if verdict is None:
            return
        if result.liveness == "attack" and verdict.person_id is not None:
            self._show(LOOK_AT_CAMERA, LOOK_AT_CAMERA_DETAIL, "unknown", 1.5)
        elif verdict.person_id is None:
            self._show("Not recognised", "Please ask at reception to be enrolled", "unknown",
                       1.5)
        elif result.previous is not None:
            direction = f" ({result.previous_direction})" if result.previous_direction else ""
            self._show(f"Hello again, {verdict.name}",
                       f"already recorded at {local_hhmm(result.previous)}{direction}",
                       "welcome", 1.5)

    def clear(self) -> None:
        self._hide_timer.stop()
        self.hide()


class SourcePanel(QFrame):
    """Says plainly what is wrong with the source and offers the other sources."""

    chosen = Signal(str)  # "file", "url", "folder", "demo", "retry"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourcePanel")
        self.title = theme.named_label("No camera", "sourceTitle")
        self.message = theme.named_label("", "sourceMessage")
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 22, 28, 22)
        layout.addWidget(self.title)
        layout.addWidget(self.message)
        layout.addSpacing(8)
        layout.addWidget(QLabel("Use another source:"))
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for key, text in (("file", "Video file…"), ("url", "Stream URL…"),
                          ("folder", "Image folder…"), ("demo", "Run the demo"),
                          ("retry", "Try again")):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, k=key: self.chosen.emit(k))
            if key == "demo":
                button.setProperty("accent", True)
            row.addWidget(button)
            self.buttons[key] = button
        layout.addLayout(row)
        self.hide()

    def show_problem(self, title: str, message: str) -> None:
        self.title.setText(title)
        self.message.setText(message)
        _place_centre(self)
        self.show()
        self.raise_()


class LiveView(QWidget):
    """Paints the newest frame, its faces (box, landmarks, name, similarity) and the state."""

    def __init__(self, parent: QWidget | None = None, *, stale_after_s: float = STALE_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self.setObjectName("liveView")
        self.setMinimumSize(480, 320)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.stale_after_s = stale_after_s
        self.clock = clock
        self.image: QImage | None = None
        self.result: FrameResult | None = None
        self.status: SourceStatus | None = None
        self.last_frame_at: float | None = None
        self.frames_shown = 0
        self.stale = False
        self.banner = Banner(self)
        self.source_panel = SourcePanel(self)
        self._watchdog = QTimer(self)
        self._watchdog.timeout.connect(self.check_stale)
        self._watchdog.start(250)

    # -- inputs ------------------------------------------------------------------------------

    def set_frame(self, image: QImage, result: FrameResult) -> None:
        """Show a new frame (the worker's copied QImage) and its result."""
        self.image = image
        self.result = result
        self.last_frame_at = self.clock()
        self.frames_shown += 1
        self.stale = False
        self.source_panel.hide()
        self.banner.show_result(result)
        self.update()

    def set_status(self, status: SourceStatus) -> None:
        """The worker's view of the source (live, reconnecting, failed...)."""
        self.status = status
        if status.state == "live":
            self.source_panel.hide()
        elif status.state in ("reconnecting", "failed", "stalled"):
            self.stale = True
            self.banner.clear()
        elif status.state == "opening" and self.image is None:
            self.stale = False
        self.update()

    def check_stale(self) -> None:
        """Dim the frame when none has come for ``stale_after_s`` (also if the worker hangs)."""
        if self.last_frame_at is None:
            return
        if self.stale:
            self.update()  # keeps the "no new frames for N s" count going
            return
        if self.clock() - self.last_frame_at > self.stale_after_s:
            self.stale = True
            self.banner.clear()
            self.update()

    def stop(self) -> None:
        """The window is closing: its watchdog and the banner's timer stop."""
        self._watchdog.stop()
        self.banner.clear()

    @property
    def is_live(self) -> bool:
        return self.image is not None and not self.stale

    # -- painting ----------------------------------------------------------------------------

    def image_rect(self) -> QRectF:
        """Where the frame is drawn (fitted, centred)."""
        if self.image is None or self.image.isNull():
            return QRectF(self.rect())
        scale = min(self.width() / self.image.width(), self.height() / self.image.height())
        width, height = self.image.width() * scale, self.image.height() * scale
        return QRectF((self.width() - width) / 2, (self.height() - height) / 2, width, height)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.fillRect(self.rect(), theme.VIDEO_BACKGROUND)
        if self.image is not None and not self.image.isNull():
            target = self.image_rect()
            painter.drawImage(target, self.image)
            if not self.stale and self.result is not None:
                scale = target.width() / self.image.width()
                for face in self.result.faces:
                    self._paint_face(painter, face, target, scale)
        self._paint_state(painter)
        painter.end()

    def _paint_face(self, painter: QPainter, face: FaceInfo, target: QRectF,
                    scale: float) -> None:
        x1, y1, x2, y2 = face.box
        box = QRectF(target.x() + x1 * scale, target.y() + y1 * scale,
                     (x2 - x1) * scale, (y2 - y1) * scale)
        if face.too_small:
            pen = QPen(theme.OTHER_FACE, 1.5, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(box)
            self._label(painter, box, "come closer", theme.OTHER_FACE, QColor("#0b0e11"))
            return
        colour = theme.ACCENT if face.known else theme.UNKNOWN
        if not face.counted:
            colour = theme.OTHER_FACE
        painter.setPen(QPen(colour, 3.0 if face.counted else 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        for x, y in face.landmarks:
            painter.drawEllipse(QPointF(target.x() + x * scale, target.y() + y * scale), 2.5, 2.5)
        name = face.name if face.known else "Unknown"
        similarity = "" if face.similarity is None else f"  {face.similarity:.2f}"
        live = "" if face.liveness is None else f"  live {face.liveness:.2f}"
        self._label(painter, box, f"{name}{similarity}{live}", colour, QColor("#0b0e11"))

    def _label(self, painter: QPainter, box: QRectF, text: str, background: QColor,
               foreground: QColor) -> None:
        font = QFont(self.font())
        font.setPixelSize(15)
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        width, height = metrics.horizontalAdvance(text) + 16, metrics.height() + 6
        top = box.top() - height - 4
        if top < 0:
            top = box.bottom() + 4
        rect = QRectF(box.left(), top, width, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(background)
        painter.drawRoundedRect(rect, 5, 5)
        painter.setPen(foreground)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_state(self, painter: QPainter) -> None:
        """Dim a frame that is not live and say why; a small LIVE tag otherwise."""
        status = self.status
        message = None
        if self.image is None:
            message = status.message if status else "Starting…"
        elif self.stale:
            if status is not None and status.state in ("reconnecting", "failed"):
                message = status.message
            else:
                since = self.last_frame_at if self.last_frame_at is not None else self.clock()
                waited = self.clock() - since
                message = f"No new frames for {waited:.0f} s - waiting for the source"
        if self.image is not None and self.stale:
            painter.fillRect(self.image_rect(), QColor(0, 0, 0, 150))
        font = QFont(self.font())
        font.setPixelSize(13)
        font.setBold(True)
        painter.setFont(font)
        tag = "NO SIGNAL" if (self.stale or self.image is None) else "LIVE"
        colour = theme.FAULT if tag == "NO SIGNAL" else theme.ACCENT
        metrics = painter.fontMetrics()
        corner = self.image_rect().topLeft() if self.image is not None else QPointF(0, 0)
        rect = QRectF(corner.x() + 16, corner.y() + 16, metrics.horizontalAdvance(tag) + 28,
                      metrics.height() + 8)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(11, 14, 17, 200))
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.setBrush(colour)
        painter.drawEllipse(QPointF(rect.left() + 12, rect.center().y()), 4, 4)
        painter.setPen(theme.TEXT)
        painter.drawText(rect.adjusted(20, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, tag)
        if message and not self.source_panel.isVisible():
            message = message[0].upper() + message[1:]
            font.setPixelSize(20)
            painter.setFont(font)
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            area = QRectF(self.rect()).adjusted(60, 0, -60, 0)
            text_rect = painter.boundingRect(area, int(flags), message)
            plate = text_rect.adjusted(-24, -16, 24, 16)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(11, 14, 17, 220))
            painter.drawRoundedRect(plate, 12, 12)
            painter.setPen(theme.TEXT)
            painter.drawText(area, flags, message)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_overlays()

    def _place_overlays(self) -> None:
        _place_bottom(self.banner)
        _place_centre(self.source_panel)
