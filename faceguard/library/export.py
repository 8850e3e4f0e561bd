"""CSV export of the event log and of attendance, safe to open in a spreadsheet.

Text cells that begin with ``=``, ``+``, ``-``, ``@``, a tab, CR or LF are prefixed with a single
quote so spreadsheets do not run them as formulas (CSV injection). Numbers written by this module
(ids, similarities, hours) are not prefixed: they are formatted here and cannot hold a formula.
Timestamps are ISO 8601 in local time with the UTC offset (``2026-11-28T11:14:58-05:00``); ``tz``
overrides the system's local zone. Written to a path, files are UTF-8 with a BOM (so Excel reads
names correctly); written to an open text file, nothing is added.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol, TextIO

from faceguard.clock import to_local
from faceguard.errors import FaceGuardError
from faceguard.library.attendance import AttendanceDay, EventLike

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")

EVENT_COLUMNS = (
    "event_id",
    "timestamp",
    "kiosk_id",
    "person_id",
    "person",
    "decision",
    "similarity",
    "liveness",
    "access",
    "access_reason",
)
ATTENDANCE_COLUMNS = ("date", "person_id", "person", "first_in", "last_out", "hours", "events")


class ExportError(FaceGuardError):
    """A CSV file could not be written."""


class ExportEvent(EventLike, Protocol):
    """Event fields the event export reads (``database.Event`` fits)."""

    @property
    def id(self) -> int: ...

    @property
    def kiosk_id(self) -> str: ...

    @property
    def similarity(self) -> float | None: ...

    @property
    def liveness(self) -> float | None: ...

    @property
    def access(self) -> str | None: ...

    @property
    def access_reason(self) -> str | None: ...


def neutralise(text: str) -> str:
    """Prefix a text cell with ``'`` when a spreadsheet would treat it as a formula."""
    return "'" + text if text.startswith(DANGEROUS_PREFIXES) else text


def format_timestamp(moment: datetime, tz: tzinfo | None = None) -> str:
    """ISO 8601 local time with its offset, to the second."""
    return to_local(moment, tz).isoformat(timespec="seconds")


def _cell(value: Any, tz: tzinfo | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_timestamp(value, tz)
    if isinstance(value, bool):
        return neutralise(str(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return neutralise(str(value))


@contextmanager
def _open_target(file: TextIO | str | os.PathLike[str]) -> Iterator[TextIO]:
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        try:
            handle = path.open("w", encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise ExportError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
        with handle:
            yield handle
    else:
        yield file


def _write(
    file: TextIO | str | os.PathLike[str],
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    tz: tzinfo | None,
) -> int:
    count = 0
    with _open_target(file) as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        try:
            writer.writerow(header)
            for row in rows:
                writer.writerow([_cell(value, tz) for value in row])
                count += 1
        except OSError as exc:
            raise ExportError(f"Cannot write the CSV file: {exc.strerror or exc}.") from exc
    return count


def events_to_csv(
    rows: Iterable[ExportEvent],
    file: TextIO | str | os.PathLike[str],
    *,
    tz: tzinfo | None = None,
) -> int:
    """Write events as CSV (columns :data:`EVENT_COLUMNS`); returns the number of rows."""
    return _write(
        file,
        EVENT_COLUMNS,
        (
            (e.id, e.timestamp, e.kiosk_id, e.person_id, e.person_name, e.decision, e.similarity,
             e.liveness, e.access, e.access_reason)
            for e in rows
        ),
        tz,
    )


def attendance_to_csv(
    days: Iterable[AttendanceDay],
    file: TextIO | str | os.PathLike[str],
    *,
    tz: tzinfo | None = None,
) -> int:
    """Write attendance days as CSV (columns :data:`ATTENDANCE_COLUMNS`); returns row count.

    ``hours`` is written with two decimals; ``last_out`` is empty for a single-event day.
    """
    return _write(
        file,
        ATTENDANCE_COLUMNS,
        (
            (
                d.day.isoformat(),
                d.person_id,
                d.person_name,
                d.first_in,
                d.last_out,
                f"{d.hours:.2f}",
                d.events,
            )
            for d in days
        ),
        tz,
    )
