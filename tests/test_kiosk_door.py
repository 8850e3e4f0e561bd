"""The door at the kiosk: the headless kiosk on the demo video opens the (simulated) door for
an allowed visit, refuses one the rules do not allow now with the plain reason, and never
opens for the stranger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceguard.cli import EXIT_OK
from faceguard.kiosk.demo import write_demo_video
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
