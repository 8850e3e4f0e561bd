"""The kiosk's visual identity: colours for painted overlays, and the Qt stylesheet."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from faceguard.paths import resources_dir

log = logging.getLogger(__name__)

STYLESHEET = "kiosk.qss"
BACKGROUND = QColor("#14181d")
VIDEO_BACKGROUND = QColor("#0b0e11")
TEXT = QColor("#e6e9ed")
MUTED = QColor("#9aa3ae")
ACCENT = QColor("#2bb3a3")  # the one accent: recognised, selected, primary actions
UNKNOWN = QColor("#e0a33a")  # not recognised
FAULT = QColor("#e5484d")  # camera faults and errors
OTHER_FACE = QColor(230, 233, 237, 150)


def stylesheet() -> str:
    """The kiosk stylesheet from resources/styles (empty when it is missing)."""
    path = resources_dir() / "styles" / STYLESHEET
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        log.warning("stylesheet %s not loaded: %s", path, error)
        return ""


def apply_theme(app: QApplication) -> None:
    """Use the Fusion style under the kiosk stylesheet (same look on every platform), with
    drawn icons where the platform has no icon theme (the file dialog's toolbar)."""
    from faceguard.gui.icons import KioskStyle

    app.setStyle(KioskStyle(TEXT))
    app.setStyleSheet(stylesheet())


def set_role(widget: QWidget, role: str) -> None:
    """Give a label a stylesheet role (hint, error, ok) and refresh its style."""
    widget.setProperty("role", role)
    widget.style().unpolish(widget)
    widget.style().polish(widget)


def named_label(text: str, name: str) -> QLabel:
    """A label with an object name for the stylesheet."""
    label = QLabel(text)
    label.setObjectName(name)
    return label


def dialog_footer(dialog: QDialog, status: QLabel, *buttons: QWidget) -> QHBoxLayout:
    """The footer row of a dialog: a status line, extra buttons, then Close (accepts)."""
    close = QPushButton("Close")
    close.clicked.connect(dialog.accept)
    footer = QHBoxLayout()
    footer.addWidget(status, 1)
    for button in buttons:
        footer.addWidget(button)
    footer.addWidget(close)
    return footer


def accept_cancel(dialog: QDialog, on_accept: Callable[[], object], *,
                  accept: QDialogButtonBox.StandardButton = QDialogButtonBox.StandardButton.Save,
                  ) -> QDialogButtonBox:
    """A dialog's Save (or ``accept``) and Cancel buttons: the first calls ``on_accept``,
    Cancel rejects the dialog."""
    buttons = QDialogButtonBox(accept | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(on_accept)
    buttons.rejected.connect(dialog.reject)
    return buttons
