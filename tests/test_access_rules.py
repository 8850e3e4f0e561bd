"""Access rules: the decision table on fixed datetimes (Europe/Berlin, DST, midnight,
holidays, validity), the rules in the library (migration 008, audited), the gate and CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from faceguard.cli import EXIT_ERROR, EXIT_OK, main
from faceguard.core.access import (
    HOLIDAY,
    IN,
    OUT,
    AccessError,
    Rules,
    Validity,
    Verdict,
    Window,
    decide,
    local_zone,
    parse_window,
    passback,
)
from faceguard.core.door.simulated import SimulatedDoor
from faceguard.core.gate import Gate, load_rules
from faceguard.library import rules as store
from faceguard.library.database import MIGRATION_NAMES, SCHEMA_VERSION, FaceLibrary
from faceguard.settings import Settings

BER = ZoneInfo("Europe/Berlin")
V = Verdict


def at(text: str) -> datetime:
    """A Berlin wall-clock time ``YYYY-MM-DD HH:MM``; ``...Z`` is UTC."""
    if text.endswith("Z"):
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    return datetime.fromisoformat(text).replace(tzinfo=BER)


def w(day: str, span: str, door: str | None = None) -> list[Window]:
    return parse_window(day, span, door)


RULES = Rules(
    zone=BER,
    groups={
        "Staff": (*w("mon-fri", "07:00-19:00"), *w("holiday", "10:00-12:00")),
        "Night": tuple(w("all", "22:00-06:00")),
        "Cleaning": tuple(w("sat", "22:00-02:00", "back-door")),
        "Empty": (),
    },
    members={1: frozenset({"Staff"}), 2: frozenset({"Night"}), 3: frozenset({"Cleaning"}),
             5: frozenset({"Staff"}), 6: frozenset({"Staff", "Night"}),
             7: frozenset({"Empty"}), 8: frozenset({"Staff", "Cleaning"})},
    holidays=frozenset({date(2024, 12, 25)}),
    validity={5: Validity(at("2024-06-01 00:00"), at("2024-06-08 00:00")),
              6: Validity(disabled=True)},
)

TABLE = [
    # person, moment, door, verdict
    (1, "2024-06-03 06:59", "front", V.OUTSIDE_HOURS),  # Monday
    (1, "2024-06-03 07:00", "front", V.ALLOWED),
    (1, "2024-06-03 18:59", "front", V.ALLOWED),
    (1, "2024-06-03 19:00", "front", V.OUTSIDE_HOURS),  # the end is exclusive
    (1, "2024-06-08 10:00", "front", V.OUTSIDE_HOURS),  # Saturday
    (1, "2024-06-03 05:00Z", "front", V.ALLOWED),  # 07:00 CEST
    (1, "2024-01-08 06:00Z", "front", V.ALLOWED),  # 07:00 CET
    (1, "2024-01-08 05:59Z", "front", V.OUTSIDE_HOURS),
    # midnight: every day 22:00-06:00
    (2, "2024-06-07 23:59", "front", V.ALLOWED),
    (2, "2024-06-08 00:00", "front", V.ALLOWED),
    (2, "2024-06-08 05:59", "front", V.ALLOWED),
    (2, "2024-06-08 06:00", "front", V.OUTSIDE_HOURS),
    (2, "2024-06-08 21:59", "front", V.OUTSIDE_HOURS),
    # spring forward, Sunday 2024-03-31: 02:00 CET -> 03:00 CEST
    (2, "2024-03-31 00:59Z", "front", V.ALLOWED),  # 01:59 CET
    (2, "2024-03-31 01:00Z", "front", V.ALLOWED),  # 03:00 CEST
    (2, "2024-03-31 03:59Z", "front", V.ALLOWED),  # 05:59 CEST
    (2, "2024-03-31 04:00Z", "front", V.OUTSIDE_HOURS),  # 06:00 CEST (05:00 at +1)
    # fall back, Sunday 2024-10-27: 03:00 CEST -> 02:00 CET; 02:30 happens twice
    (2, "2024-10-27 00:30Z", "front", V.ALLOWED),  # 02:30 CEST
    (2, "2024-10-27 01:30Z", "front", V.ALLOWED),  # 02:30 CET
    (2, "2024-10-27 04:59Z", "front", V.ALLOWED),  # 05:59 CET
    (2, "2024-10-27 05:00Z", "front", V.OUTSIDE_HOURS),  # 06:00 CET (07:00 at +2)
    (1, "2024-10-28 05:59Z", "front", V.OUTSIDE_HOURS),  # Monday 06:59 CET
    (1, "2024-10-28 06:00Z", "front", V.ALLOWED),
    # door-specific window crossing midnight (Saturday 22:00-02:00 at back-door)
    (3, "2024-06-08 23:00", "back-door", V.ALLOWED),
    (3, "2024-06-08 23:00", "front", V.NO_GROUP),
    (3, "2024-06-09 01:59", "back-door", V.ALLOWED),  # Sunday, started Saturday
    (3, "2024-06-09 02:00", "back-door", V.OUTSIDE_HOURS),
    (3, "2024-06-07 23:00", "back-door", V.OUTSIDE_HOURS),  # Friday
    (8, "2024-06-08 23:00", "front", V.OUTSIDE_HOURS),  # Staff has the door, not now
    (8, "2024-06-08 23:00", "back-door", V.ALLOWED),
    # holidays: Wednesday 2024-12-25 uses the holiday windows
    (1, "2024-12-24 09:00", "front", V.ALLOWED),
    (1, "2024-12-25 09:00", "front", V.OUTSIDE_HOURS),
    (1, "2024-12-25 11:00", "front", V.ALLOWED),
    (1, "2024-12-25 12:00", "front", V.OUTSIDE_HOURS),
    (2, "2024-12-25 05:00", "front", V.ALLOWED),  # Tuesday's night runs into the holiday
    (2, "2024-12-25 23:00", "front", V.OUTSIDE_HOURS),  # Night has no holiday hours
    (2, "2024-12-26 03:00", "front", V.OUTSIDE_HOURS),  # ... so nothing spills from it
    # validity edges: from 2024-06-01 00:00 (inclusive) until 2024-06-08 00:00 (exclusive)
    (5, "2024-05-31 23:59", "front", V.NOT_VALID_YET),
    (5, "2024-05-31 21:59Z", "front", V.NOT_VALID_YET),  # 23:59 CEST
    (5, "2024-05-31 22:00Z", "front", V.OUTSIDE_HOURS),  # 00:00 CEST: valid, Saturday
    (5, "2024-06-03 09:00", "front", V.ALLOWED),
    (5, "2024-06-07 18:59", "front", V.ALLOWED),
    (5, "2024-06-07 23:59", "front", V.OUTSIDE_HOURS),
    (5, "2024-06-08 00:00", "front", V.EXPIRED),
    (5, "2024-06-10 09:00", "front", V.EXPIRED),
    (6, "2024-06-03 09:00", "front", V.DISABLED),  # in hours, but disabled
    (4, "2024-06-03 09:00", "front", V.NO_GROUP),  # in no group
    (7, "2024-06-03 09:00", "front", V.NO_GROUP),  # a group without hours
]


@pytest.mark.parametrize(("person", "moment", "door", "verdict"), TABLE)
def test_decision_table(person: int, moment: str, door: str, verdict: Verdict) -> None:
    decision = decide(person, at(moment), RULES, door)
    assert decision.verdict is verdict
    assert decision.allowed == (verdict is V.ALLOWED)
    assert decision.reason == verdict.value


def _reference(person: int, moment: datetime, rules: Rules, door: str) -> bool:
    """Independent: build each window as a wall-clock interval around the moment."""
    local = moment.astimezone(rules.zone).replace(tzinfo=None, fold=0)
    for group in rules.members.get(person, ()):
        for window in rules.groups[group]:
            if window.door not in (None, door):
                continue
            for offset in (-1, 0):
                day = local.date() + timedelta(days=offset)
                kind = HOLIDAY if day in rules.holidays else day.weekday()
                if window.day != kind:
                    continue
                start = datetime.combine(day, dtime()) + timedelta(minutes=window.start)
                end_day = day + timedelta(days=1 if window.crosses_midnight else 0)
                end = datetime.combine(end_day, dtime()) + timedelta(minutes=window.end)
                if start <= local < end:
                    return True
    return False


@pytest.mark.parametrize("first_day", ["2024-03-25", "2024-10-21", "2024-12-21"])
def test_every_ten_minutes_of_dst_and_holiday_weeks_matches_a_reference(first_day: str) -> None:
    start = datetime.fromisoformat(first_day).replace(tzinfo=BER).astimezone(UTC)
    for step in range(0, 9 * 24 * 6):
        moment = start + timedelta(minutes=10 * step)
        for person in (1, 2, 3, 8):
            for door in ("front", "back-door"):
                expected = _reference(person, moment, RULES, door)
                assert decide(person, moment, RULES, door).allowed == expected, (
                    person, moment.astimezone(BER), door)


def test_without_rules_and_bad_input() -> None:
    empty = Rules(zone=BER)
    assert decide(1, at("2024-06-03 03:00"), empty, "front").verdict is V.NO_RULES
    assert decide(1, at("2024-06-03 03:00"), empty, "front").allowed
    strict = Rules(zone=BER, allow_without_rules=False)
    assert decide(1, at("2024-06-03 03:00"), strict, "front").verdict is V.NO_GROUP
    with pytest.raises(AccessError):
        decide(1, datetime(2024, 6, 3, 9), RULES, "front")  # naive
    with pytest.raises(AccessError):
        Window(0, 600, 600)
    with pytest.raises(AccessError):
        parse_window("fri-holiday", "07:00-08:00")
    with pytest.raises(AccessError):
        parse_window("mon", "7-8")
    assert [x.day for x in parse_window("fri-mon", "07:00-08:00")] == [4, 5, 6, 0]
    assert parse_window("mon", "00:00-24:00")[0].end == 1440
    assert local_zone("Europe/Berlin") == BER
    with pytest.raises(AccessError, match="unknown time zone"):
        local_zone("Mars/Olympus")


def test_anti_passback() -> None:
    assert passback(None, IN).allowed and passback(OUT, IN).allowed
    assert passback(IN, IN).verdict is V.PASSBACK
    assert passback(IN, OUT).allowed and passback(None, OUT).allowed


# -- in the library ------------------------------------------------------------------------------

@pytest.fixture
def library(tmp_path: Path) -> Iterator[FaceLibrary]:
    lib = FaceLibrary.open(tmp_path / "faceguard.db")
    for name in ("Ana", "Bo", "Cy"):
        lib.add_person(name)
    yield lib
    lib.close()


def test_migration_008_follows_007_and_creates_the_tables(library: FaceLibrary) -> None:
    assert MIGRATION_NAMES.index("008_access_rules") == MIGRATION_NAMES.index("007_liveness") + 1
    assert library.schema_version() == SCHEMA_VERSION
    with library.reading("test") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE "
                                             "type = 'table'")}
    assert {"access_groups", "access_members", "access_windows", "access_holidays",
            "access_validity", "access_passback", "door_outbox"} <= tables


def test_rules_in_the_library_are_audited_and_decide(library: FaceLibrary) -> None:
    ana, bo, _ = (library.find_person_by_name(n) for n in ("Ana", "Bo", "Cy"))
    assert ana and bo
    store.add_group(library, "Staff", actor="t")
    store.set_membership(library, "Staff", ana.id, True, actor="t")
    assert not store.set_membership(library, "Staff", ana.id, True, actor="t")  # no change
    for window in parse_window("mon-fri", "07:00-19:00"):
        store.add_window(library, "Staff", window.day, window.start, window.end, actor="t")
    store.set_holiday(library, date(2024, 12, 25), "Christmas", actor="t")
    store.set_validity(library, bo.id, None, at("2024-06-01 00:00"), actor="t")
    settings = Settings(access_timezone="Europe/Berlin")
    rules = load_rules(library, settings)
    assert decide(ana.id, at("2024-06-03 09:00"), rules, "x").allowed
    assert decide(ana.id, at("2024-12-25 09:00"), rules, "x").verdict is V.OUTSIDE_HOURS
    assert decide(bo.id, at("2024-06-03 09:00"), rules, "x").verdict is V.EXPIRED
    actions = [a.action for a in library.list_audit(newest_first=False)]
    assert actions.count("access_window_added") == 5
    assert {"access_group_added", "access_member_added", "holiday_set",
            "pass_changed"} <= set(actions)
    with pytest.raises(Exception, match="already exists"):
        store.add_group(library, " staff ", actor="t")
    assert len(library.list_audit()) == len(actions)  # a refused change writes nothing
    assert store.remove_windows(library, "Staff", 0, actor="t") == 1
    store.remove_group(library, "Staff", actor="t")
    assert load_rules(library, settings).empty


def test_gate_opens_refuses_and_enforces_anti_passback(library: FaceLibrary) -> None:
    ana = library.find_person_by_name("Ana")
    assert ana
    store.add_group(library, "Night", actor="t")
    store.set_membership(library, "Night", ana.id, True, actor="t")
    store.add_window(library, "Night", 0, 22 * 60, 6 * 60, actor="t")  # Monday night
    settings = Settings(access_timezone="Europe/Berlin", access_antipassback="on",
                        door_pulse_s=0.1)
    door = SimulatedDoor("kiosk-1", pulse_s=0.1)
    gate = Gate(library, settings, door)
    decision, result = gate.at_door(ana.id, "Ana", at("2024-06-03 12:00"), direction=IN)
    assert decision.reason == "outside your hours" and result.done and not door.energised
    decision, result = gate.at_door(ana.id, "Ana", at("2024-06-04 01:00"), direction=IN)
    assert decision.allowed and door.energised and door.state == "unlocked"
    decision, _ = gate.at_door(ana.id, "Ana", at("2024-06-04 01:05"), direction=IN)
    assert decision.verdict is V.PASSBACK
    assert gate.at_door(ana.id, "Ana", at("2024-06-04 01:10"), direction=OUT)[0].allowed
    assert (store.last_passage(library, ana.id) or ('',))[0] == OUT
    gate.manual_open("admin")
    assert library.list_audit(limit=1)[0].action == "door_opened"
    gate.close()
    assert door.energised is False


def run(data: Path, *args: str) -> int:
    return main(["--data-dir", str(data), *args])


def test_groups_and_rules_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    with FaceLibrary.open(_make(data)) as lib:
        lib.add_person("Ana")
    assert run(data, "config", "set", "access.timezone", "Europe/Berlin") == EXIT_OK
    assert run(data, "groups", "add", "Visitors") == EXIT_OK
    assert run(data, "groups", "members", "Visitors", "--add", "Ana") == EXIT_OK
    assert run(data, "rules", "add", "Visitors", "mon-fri", "08:00-17:00") == EXIT_OK
    assert run(data, "rules", "add", "Visitors", "holiday", "22:00-02:00",
               "--door", "back") == EXIT_OK
    assert run(data, "rules", "holiday", "2024-12-25", "Christmas") == EXIT_OK
    assert run(data, "rules", "pass", "Ana", "--from", "2024-06-01",
               "--until", "2024-06-07") == EXIT_OK
    capsys.readouterr()
    assert run(data, "rules", "list") == EXIT_OK
    out = capsys.readouterr().out
    assert "Visitors: mon 08:00-17:00;" in out and "holiday 22:00-02:00 @back" in out
    assert "holiday 2024-12-25 Christmas" in out
    assert "from 2024-06-01T00:00:00+02:00 until 2024-06-08T00:00:00+02:00" in out
    assert run(data, "groups", "list") == EXIT_OK
    assert "Visitors: 1 member (Ana)" in capsys.readouterr().out
    assert run(data, "rules", "remove", "Visitors", "mon-fri") == EXIT_OK
    assert "removed 5 windows" in capsys.readouterr().out
    assert run(data, "rules", "add", "Visitors", "someday", "08:00-09:00") == EXIT_ERROR
    assert run(data, "groups", "remove", "Nobody") == EXIT_ERROR
    err = capsys.readouterr().err
    assert "a day is one of" in err and "no access group named 'Nobody'" in err
    assert len(err.strip().splitlines()) == 2 and "Traceback" not in err
    with FaceLibrary.open(data / "faceguard.db") as lib:
        details = [json.loads(a.details) for a in lib.list_audit() if a.actor == "cli"
                   and a.action.startswith(("access", "holiday", "pass"))]
    assert len(details) == 15  # group, member, 6 windows, holiday, pass, 5 removals


def test_door_test_cli_with_the_simulated_door(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert run(data, "config", "set", "door.pulse_s", "0.1") == EXIT_OK
    capsys.readouterr()
    assert run(data, "door", "test") == EXIT_OK
    out = capsys.readouterr().out
    assert "(simulated, fail-secure, pulse 0.1 s): unlocked for 0.1 s" in out
    assert "state unlocked" in out and "state locked" in out
    assert run(data, "config", "set", "door.driver", "gpio") == EXIT_OK
    capsys.readouterr()
    assert run(data, "door", "test") == EXIT_ERROR
    assert "gpio door driver needs libgpiod" in capsys.readouterr().err


def _make(data: Path) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    return data / "faceguard.db"
