"""Refuse to start on a Qt binding that corrupts the interpreter.

PySide6 6.12.0 returns ``None`` from every method that returns nothing without giving the
caller a new reference. On CPython 3.12 and newer ``None`` is immortal, so nothing happens;
on 3.11 every such call lowers ``None``'s reference count until the interpreter frees it and
aborts ("Fatal Python error: none_dealloc"), about half a minute into live video. pyproject.toml
keeps that release off 3.11; this check catches any other install (an older environment, a
frozen bundle built by hand) at start-up, before a kiosk dies in front of a door.
"""

from __future__ import annotations

import sys

import PySide6
from PySide6.QtGui import QImage, QPainter, QPen

from faceguard.errors import FaceGuardError

PROBE_CALLS = 256


def none_references_lost(calls: int = PROBE_CALLS) -> int:
    """How many references to ``None`` ``calls`` void QPainter calls lose (0 when healthy)."""
    if sys.version_info >= (3, 12):
        return 0  # None is immortal: its count cannot move and it can never be freed
    image = QImage(4, 4, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    pen = QPen()
    try:
        for _ in range(16):  # warm-up: the first calls fill the binding's caches
            painter.setPen(pen)
        before = sys.getrefcount(None)
        for _ in range(calls):
            painter.setPen(pen)
        after = sys.getrefcount(None)
    finally:
        painter.end()
    return max(0, before - after)


def binding_problem(calls: int = PROBE_CALLS) -> str | None:
    """Why this PySide6 cannot run the kiosk on this interpreter, or None when it can."""
    lost = none_references_lost(calls)
    if lost < calls // 2:
        return None
    python = ".".join(str(part) for part in sys.version_info[:3])
    return (f"PySide6 {PySide6.__version__} on Python {python} loses a reference to None on "
            f"every Qt call ({lost} in {calls}) and would crash the kiosk within a minute; "
            "install 'PySide6-Essentials<6.12' or run FaceGuard on Python 3.12 or newer")


def check_binding() -> None:
    """Raise :class:`FaceGuardError` when the Qt binding is unsafe here."""
    problem = binding_problem()
    if problem:
        raise FaceGuardError(problem)
