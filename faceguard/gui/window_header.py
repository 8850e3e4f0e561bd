"""The strip across the top of the kiosk window: the kiosk's name, the DEMO tag, the clock and
the Admin button (whose menu is :class:`faceguard.gui.admin_menu.AdminMenu`)."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QToolButton, QWidget

from faceguard.gui import theme


class WindowHeader(QWidget):
    """The header of one :class:`faceguard.gui.main_window.MainWindow`; its clock ticks
    every second until :meth:`stop`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("header")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)  # the style sheet paints it
        self.kiosk_label = theme.named_label("", "kioskName")
        self.mode_tag = theme.named_label("DEMO", "modeTag")
        self.clock_label = theme.named_label("", "clock")
        self.admin_button = QToolButton()
        self.admin_button.setText("Admin")
        self.admin_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        row = QHBoxLayout(self)
        row.setContentsMargins(18, 10, 18, 10)
        row.addWidget(self.kiosk_label)
        row.addSpacing(10)
        row.addWidget(self.mode_tag)
        row.addStretch(1)
        row.addWidget(self.clock_label)
        row.addSpacing(18)
        row.addWidget(self.admin_button)
        self._clock = QTimer(self)
        self._clock.timeout.connect(self._tick)

    def start_clock(self) -> None:
        """Show the time now and every second from now on."""
        self._clock.start(1000)
        self._tick()

    def show_kiosk(self, name: str, *, demo: bool) -> None:
        """The kiosk's name, and the DEMO tag when the window shows the demo's library."""
        self.kiosk_label.setText(name)
        self.mode_tag.setVisible(demo)

    def stop(self) -> None:
        """Stop the clock (the window is shutting down)."""
        self._clock.stop()

    def _tick(self) -> None:
        self.clock_label.setText(datetime.now().strftime("%H:%M"))
