"""The door at the kiosk: the headless kiosk on the demo video opens the (simulated) door for
an allowed visit, refuses one the rules do not allow now with the plain reason, and never
opens for the stranger."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from faceguard.cli import EXIT_OK
from faceguard.kiosk.demo import write_demo_video
from faceguard.library.database import FaceLibrary
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "resources" / "demo" / "astronaut.png"


@pytest.fixture()
def video(tmp_path: Path) -> Path:
    path = tmp_path / "demo.avi"
    write_demo_video(path, fps=4.0, size=(480, 360))
    return path


def events(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.startswith("{")]


def test_the_door_opens_for_the_enrolled_person_and_never_for_the_stranger(
        data_dir: Path, video: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(data_dir, "enroll", "Eileen Collins", str(ASTRONAUT)) == EXIT_OK
    capsys.readouterr()
    assert run_cli(data_dir, "run", "--headless", "--source", str(video)) == EXIT_OK
    logged = events(capsys)
    known = [e for e in logged if e["decision"] == "known"]
    strangers = [e for e in logged if e["decision"] == "unknown"]
    assert known and all(e["door"] == "unlocked" for e in known)
    assert strangers and all(e["door"] is None for e in strangers)


def test_a_pass_that_expired_is_refused_with_the_reason(
        data_dir: Path, video: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(data_dir, "enroll", "Eileen Collins", str(ASTRONAUT)) == EXIT_OK
    assert run_cli(data_dir, "groups", "add", "Staff") == EXIT_OK
    assert run_cli(data_dir, "groups", "members", "Staff", "--add", "Eileen Collins") == EXIT_OK
    assert run_cli(data_dir, "rules", "add", "Staff", "all", "00:00-23:59") == EXIT_OK
    assert run_cli(data_dir, "rules", "pass", "Eileen Collins", "--until", "2020-01-31") \
        == EXIT_OK
    capsys.readouterr()
    assert run_cli(data_dir, "run", "--headless", "--source", str(video)) == EXIT_OK
    known = [e for e in events(capsys) if e["decision"] == "known"]
    assert known and all(e["door"] == "denied" for e in known)
    assert "expired" in str(known[0]["door_reason"])
    # the entry log keeps the refusal and its reason: the library, `faceguard log`, the CSV
    library = FaceLibrary.open(data_dir / "faceguard.db")
    try:
        stored = library.query_events(decision="known")
        unknown = library.query_events(decision="unknown")
    finally:
        library.close()
    assert stored and all(e.access == "denied" and "expired" in str(e.access_reason)
                          for e in stored)
    assert all(e.access is None and e.access_reason is None for e in unknown)
    assert run_cli(data_dir, "log") == EXIT_OK
    lines = [line for line in capsys.readouterr().out.splitlines() if " known " in line]
    assert lines and all("denied: " in line and "expired" in line for line in lines)
    csv_file = data_dir.parent / "log.csv"
    assert run_cli(data_dir, "log", "--csv", str(csv_file)) == EXIT_OK
    rows = list(csv.DictReader(csv_file.open(encoding="utf-8")))
    assert {r["access"] for r in rows if r["decision"] == "known"} == {"denied"}
    assert {r["access"] for r in rows if r["decision"] == "unknown"} == {""}


def test_the_entry_log_records_an_allowed_entry(
        data_dir: Path, video: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(data_dir, "enroll", "Eileen Collins", str(ASTRONAUT)) == EXIT_OK
    assert run_cli(data_dir, "groups", "add", "Staff") == EXIT_OK
    assert run_cli(data_dir, "groups", "members", "Staff", "--add", "Eileen Collins") == EXIT_OK
    assert run_cli(data_dir, "rules", "add", "Staff", "all", "00:00-23:59") == EXIT_OK
    assert run_cli(data_dir, "run", "--headless", "--source", str(video)) == EXIT_OK
    library = FaceLibrary.open(data_dir / "faceguard.db")
    try:
        known = library.query_events(decision="known")
    finally:
        library.close()
    assert known and all(e.access == "allowed" for e in known)


def test_the_window_says_access_denied_with_the_reason(qtbot) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pytestqt")
    from datetime import UTC, datetime

    from faceguard.gui.live_view import LiveView
    from faceguard.kiosk.decisions import KioskEvent

    view = LiveView()
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.show()
    now = datetime.now(UTC)
    view.banner.show_event(KioskEvent(now, "door-1", 7, "Ana Lima", 0.9, "IN",
                                      door="denied", door_reason="outside your hours"))
    assert view.banner.title.text() == "Access denied"
    assert view.banner.detail.text() == "Ana Lima: Outside your hours"
    view.banner.show_event(KioskEvent(now, "door-1", 7, "Ana Lima", 0.9, "IN",
                                      door="unlocked"))
    assert view.banner.title.text() == "Welcome, Ana Lima"
    assert view.banner.detail.text().endswith("IN - door open")


def test_the_demo_opens_for_eileen_refuses_grace_outside_her_hours_and_not_the_stranger(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The built-in demo (its own library, the product model, liveness enforced) on its
    video at 6 frames/s: the door opens for Eileen, refuses Grace (enrolled, outside her
    "Late shift" hours), stays shut for the replay of Eileen's photo and for the stranger."""
    import cv2

    from faceguard.cli import main
    from faceguard.core.gate import Gate
    from faceguard.kiosk.demo import DEMO_LATE_GROUP, AttackDemoSource, prepare_demo
    from faceguard.library import rules as store

    folder = tmp_path / "demo"
    with prepare_demo(folder) as session:
        groups = {g.name: g for g in store.list_groups(session.ctx.library)}
        assert groups[DEMO_LATE_GROUP].members == ("Grace Hopper",)
        gate = Gate(session.ctx.library, session.ctx.settings)
        grace = session.ctx.library.find_person_by_name("Grace Hopper")
        assert grace is not None
        now = datetime.now().astimezone()
        assert gate.decide(grace.id, now).reason == "outside your hours"
        assert gate.decide(grace.id, now + timedelta(hours=6, minutes=30)).allowed
        gate.close()
    video = tmp_path / "attack.avi"
    source = AttackDemoSource(loop=False, fps=6.0, size=(640, 480))
    source.open()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 6.0, (640, 480))
    for index in range(source.cycle_frames):
        writer.write(cv2.cvtColor(source.render(index), cv2.COLOR_RGB2BGR))
    writer.release()
    capsys.readouterr()
    assert main(["--data-dir", str(folder), "run", "--headless", "--source", str(video)]) \
        == EXIT_OK
    seen = [(e["decision"], e["person"], e["door"], e["door_reason"]) for e in events(capsys)]
    assert seen == [("known", "Eileen Collins", "unlocked", "allowed"),
                    ("known", "Grace Hopper", "denied", "outside your hours"),
                    ("attack", None, None, None), ("unknown", None, None, None)], seen
