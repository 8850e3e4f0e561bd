"""The enrolment dialog's list of photos: each with its aligned face crop and what became of it
(checking, ready with its quality, rejected with the reason, enrolled, skipped)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from faceguard.core.enrolment import PhotoResult
from faceguard.core.photo_checks import PhotoCheck
from faceguard.gui import theme
from faceguard.gui.worker import to_qimage

THUMB = 64


def thumbnail(crop: np.ndarray | None) -> QIcon:
    """An icon of an aligned face crop (empty icon without one)."""
    if crop is None:
        return QIcon()
    return QIcon(QPixmap.fromImage(to_qimage(crop)))


def describe_check(check: PhotoCheck) -> str:
    """One line for a checked photo."""
    if not check.ok:
        return f"✗ {check.reason}"
    assert check.observation is not None
    quality = check.observation.quality
    return f"✓ ready (face {quality.size_px:.0f} px, quality {quality.score:.2f})"


@dataclass
class PhotoRow:
    """One photo in the dialog's list."""

    source: str
    check: PhotoCheck | None = None
    result: PhotoResult | None = None


def row_text(row: PhotoRow) -> str:
    """What the Result column says about a photo."""
    if row.result is not None:
        mark = "✓" if row.result.accepted else "–" if row.result.skipped else "✗"
        text = f"{mark} enrolled" if row.result.accepted else f"{mark} {row.result.reason}"
        if row.result.warning:
            text += f"  ⚠ {row.result.warning}"
        return text
    if row.check is not None:
        return describe_check(row.check)
    return "checking…"


class PhotoTable(QTableWidget):
    """Two columns, Photo and Result; one row per :class:`PhotoRow`, not editable."""

    def __init__(self) -> None:
        super().__init__(0, 2)
        self.setHorizontalHeaderLabels(["Photo", "Result"])
        self.setIconSize(QSize(THUMB, THUMB))
        self.verticalHeader().setDefaultSectionSize(THUMB + 8)
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setStretchLastSection(True)
        self.setColumnWidth(0, 300)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setAlternatingRowColors(True)

    def show_row(self, index: int, row: PhotoRow) -> None:
        """Fill table row ``index`` from ``row``."""
        label = Path(row.source).name if not row.source.startswith("camera ") else row.source
        photo = QTableWidgetItem(label)
        photo.setToolTip(row.source)
        if row.check is not None and row.check.observation is not None:
            photo.setIcon(thumbnail(row.check.observation.crop))
        text = row_text(row)
        result = QTableWidgetItem(text)
        result.setToolTip(text)
        if text.startswith("✗"):
            result.setForeground(theme.FAULT)
        elif "⚠" in text:
            result.setForeground(theme.UNKNOWN)
        elif text.startswith("✓"):
            result.setForeground(theme.ACCENT)
        self.setItem(index, 0, photo)
        self.setItem(index, 1, result)

    def texts(self) -> list[tuple[str, str]]:
        """(photo, result) of every row, as shown."""
        texts = []
        for index in range(self.rowCount()):
            photo, result = self.item(index, 0), self.item(index, 1)
            texts.append((photo.text() if photo else "", result.text() if result else ""))
        return texts
