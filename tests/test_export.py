"""CSV export (injection-safe, local ISO 8601 timestamps) and attendance computation."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from faceguard.library.attendance import attendance, local_day_range
from faceguard.library.database import FaceLibrary
from faceguard.library.export import (
    ExportError,
    attendance_to_csv,
    events_to_csv,
    format_timestamp,
    neutralise,
)

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Ev:
    """A minimal event for the pure functions."""

    timestamp: datetime
    person_id: int | None
    person_name: str | None
    decision: str = "known"
    id: int = 0
    kiosk_id: str = "k1"
    similarity: float | None = 0.9
    liveness: float | None = None
    access: str | None = None
    access_reason: str | None = None


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("dangerous", ["=1+1", "+41 79", "-2", "@SUM(A1)", "\tx", "\rx", "\nx"])
def test_neutralise_prefixes_formula_starters(dangerous: str) -> None:
    assert neutralise(dangerous) == "'" + dangerous


@pytest.mark.parametrize("safe", ["Alice", "", "Jean-Luc", "1=1", " =x", "'quoted"])
def test_neutralise_leaves_ordinary_text(safe: str) -> None:
    assert neutralise(safe) == safe


def test_events_csv_neutralises_cells_and_uses_local_offsets() -> None:
    events = [
        Ev(utc(2026, 11, 28, 16, 14, 58), 1, '=HYPERLINK("http://x","click")', id=1),
        Ev(utc(2026, 7, 1, 12, 0, 0), 2, "@evil", id=2, kiosk_id="+door", similarity=-0.25),
        Ev(utc(2026, 7, 1, 12, 0, 1), None, None, "unknown", id=3, similarity=None),
    ]
    out = io.StringIO()
    assert events_to_csv(events, out, tz=NEW_YORK) == 3
    rows = read_csv(out.getvalue())
    assert [r["timestamp"] for r in rows] == [
        "2026-11-28T11:14:58-05:00",  # EST
        "2026-07-01T08:00:00-04:00",  # EDT
        "2026-07-01T08:00:01-04:00",
    ]
    assert rows[0]["person"] == '\'=HYPERLINK("http://x","click")'
    assert rows[1]["person"] == "'@evil" and rows[1]["kiosk_id"] == "'+door"
    assert rows[1]["similarity"] == "-0.2500"  # a number this module formatted stays numeric
    assert rows[2]["person"] == "" and rows[2]["person_id"] == "" and rows[2]["similarity"] == ""
    assert rows[2]["decision"] == "unknown"
    for row in rows:
        for key, value in row.items():
            if key != "similarity":
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_timestamps_with_fixed_offset_zone() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    assert format_timestamp(utc(2026, 1, 1, 20, 0, 0), india) == "2026-01-02T01:30:00+05:30"
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 1, 1))


def test_csv_to_path_is_utf8_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    events_to_csv([Ev(utc(2026, 1, 1, 9, 0, 0), 1, "Zoë -Ä")], path, tz=UTC)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = read_csv(path.read_text(encoding="utf-8-sig"))
    assert rows[0]["person"] == "Zoë -Ä" and rows[0]["timestamp"] == "2026-01-01T09:00:00+00:00"


def test_unwritable_csv_path_gives_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="Cannot write"):
        events_to_csv([], tmp_path / "missing" / "log.csv")


def test_attendance_uses_local_days_across_midnight() -> None:
    events = [
        Ev(utc(2026, 3, 1, 3, 30), 1, "Ann"),  # 22:30 on 28 Feb in New York
        Ev(utc(2026, 3, 1, 13, 0), 1, "Ann"),  # 08:00 on 1 Mar
        Ev(utc(2026, 3, 1, 17, 30), 1, "Ann"),  # 12:30
        Ev(utc(2026, 3, 1, 22, 0), 1, "Ann"),  # 17:00
        Ev(utc(2026, 3, 2, 4, 59), 1, "Ann"),  # 23:59 on 1 Mar
        Ev(utc(2026, 3, 1, 14, 0), None, None, "unknown"),  # nobody: ignored
    ]
    days = attendance(events, tz=NEW_YORK)
    assert [(d.day, d.events) for d in days] == [(date(2026, 2, 28), 1), (date(2026, 3, 1), 4)]
    feb, mar = days
    assert feb.last_out is None and feb.hours == 0.0
    assert feb.first_in.isoformat() == "2026-02-28T22:30:00-05:00"
    assert mar.first_in.isoformat() == "2026-03-01T08:00:00-05:00"
    assert mar.last_out is not None and mar.last_out.isoformat() == "2026-03-01T23:59:00-05:00"
    assert mar.hours == pytest.approx(15 + 59 / 60)
    # The same events in UTC fall on different days.
    assert [d.day for d in attendance(events, tz=UTC)] == [date(2026, 3, 1), date(2026, 3, 2)]


def test_attendance_hours_are_real_time_across_dst_changes() -> None:
    spring = [Ev(utc(2026, 3, 8, 6, 0), 1, "Ann"), Ev(utc(2026, 3, 8, 10, 0), 1, "Ann")]
    [day] = attendance(spring, tz=NEW_YORK)  # 01:00 EST -> 06:00 EDT: 4 real hours
    assert (day.first_in.hour, day.last_out.hour if day.last_out else None) == (1, 6)
    assert day.hours == pytest.approx(4.0)
    # Fall back: 01:30 EDT happens before 01:10 EST although its wall-clock time is later.
    autumn = [Ev(utc(2026, 11, 1, 6, 10), 1, "Ann"), Ev(utc(2026, 11, 1, 5, 30), 1, "Ann")]
    [day] = attendance(autumn, tz=NEW_YORK)
    assert day.first_in.isoformat() == "2026-11-01T01:30:00-04:00"
    assert day.last_out is not None and day.last_out.isoformat() == "2026-11-01T01:10:00-05:00"
    assert day.hours == pytest.approx(40 / 60)


def test_attendance_groups_people_and_filters_decisions() -> None:
    events = [
        Ev(utc(2026, 5, 4, 9, 0), 2, "Bob"),
        Ev(utc(2026, 5, 4, 9, 5), 1, "ann"),
        Ev(utc(2026, 5, 4, 17, 0), 2, "Bob", "repeat"),
        Ev(utc(2026, 5, 4, 10, 0), None, "Removed Person"),
        Ev(utc(2026, 5, 4, 11, 0), None, "Removed Person"),
    ]
    days = attendance(events, tz=UTC)
    assert [(d.person_name, d.events) for d in days] == [
        ("ann", 1),
        ("Bob", 2),
        ("Removed Person", 2),
    ]
    assert days[2].person_id is None and days[2].hours == pytest.approx(1.0)
    only_known = attendance(events, tz=UTC, decisions={"known"})
    assert [d.events for d in only_known if d.person_name == "Bob"] == [1]


def test_attendance_csv() -> None:
    days = attendance(
        [
            Ev(utc(2026, 5, 4, 13, 0), 7, "-Dash"),
            Ev(utc(2026, 5, 4, 21, 30), 7, "-Dash"),
            Ev(utc(2026, 5, 4, 14, 0), 8, "Solo"),
        ],
        tz=NEW_YORK,
    )
    out = io.StringIO()
    assert attendance_to_csv(days, out, tz=NEW_YORK) == 2
    rows = read_csv(out.getvalue())
    assert rows[0] == {
        "date": "2026-05-04",
        "person_id": "7",
        "person": "'-Dash",
        "first_in": "2026-05-04T09:00:00-04:00",
        "last_out": "2026-05-04T17:30:00-04:00",
        "hours": "8.50",
        "events": "2",
    }
    assert rows[1]["person"] == "Solo" and rows[1]["last_out"] == "" and rows[1]["hours"] == "0.00"


def test_local_day_range_and_library_round_trip() -> None:
    start, end = local_day_range(date(2026, 3, 8), date(2026, 3, 8), NEW_YORK)
    assert start.isoformat() == "2026-03-08T00:00:00-05:00"
    assert end.isoformat() == "2026-03-09T00:00:00-04:00"
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)  # DST day

    lib = FaceLibrary.in_memory()
    ann = lib.add_person("=Ann")
    lib.add_event(utc(2026, 3, 8, 4, 59), "k1", ann.id, 0.9, "known")  # 7 Mar local
    lib.add_event(utc(2026, 3, 8, 14, 0), "k1", ann.id, 0.9, "known")
    lib.add_event(utc(2026, 3, 8, 23, 0), "k1", ann.id, 0.8, "known")
    events = lib.query_events(start=start, end=end)
    assert len(events) == 2
    [day] = attendance(events, tz=NEW_YORK)
    assert day.hours == pytest.approx(9.0)
    out = io.StringIO()
    events_to_csv(events, out, tz=NEW_YORK)
    rows = read_csv(out.getvalue())
    assert [r["person"] for r in rows] == ["'=Ann", "'=Ann"]
    assert rows[0]["timestamp"] == "2026-03-08T10:00:00-04:00"
