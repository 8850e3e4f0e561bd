"""Smaller defects of the weeks-long-run issue (section 5), each checked as a user meets it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.cli import EXIT_ERROR, EXIT_OK, main
from faceguard.kiosk.sources import SourceEnded, SourceSpec, make_source
from faceguard.wording import one_line, plural
from tests.conftest import run_cli as run

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "resources" / "demo" / "astronaut.png"




def test_log_takes_the_widest_dates_without_a_traceback(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "enroll", "Eileen Collins", str(ASTRONAUT)) == EXIT_OK
    capsys.readouterr()
    for args in (("--from", "0001-01-01"), ("--to", "9999-12-31"),
                 ("--from", "0001-01-01", "--to", "9999-12-31")):
        assert run(data_dir, "log", *args) == EXIT_OK
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err and captured.out.endswith("0 events\n")
    assert run(data_dir, "log", "--from", "2026-05-02", "--to", "2026-05-01") == EXIT_ERROR
    assert "is after --to" in capsys.readouterr().err


def test_a_data_dir_that_is_a_file_says_so_on_one_prefixed_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("x")
    assert main(["--data-dir", str(not_a_folder), "people", "list"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.splitlines() == [f"faceguard: the data folder {not_a_folder} is a file, not a "
                                "folder; point --data-dir or $FACEGUARD_DATA_DIR at a folder"]


def test_library_warnings_carry_the_prefix(data_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (data_dir / "settings.json").write_text("{broken")
    run(data_dir, "people", "list")
    err = capsys.readouterr().err
    assert err and all(line.startswith("faceguard: ") for line in err.splitlines())
    assert "faceguard: warning: Settings file" in err


def test_a_newline_in_a_file_name_stays_on_one_line(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / "eileen\ncollins.png"
    shutil.copy(ASTRONAUT, odd)
    broken = tmp_path / "bad\nfile.jpg"
    broken.write_bytes(b"not an image")
    assert run(data_dir, "enroll", "Eileen Collins", str(odd), str(broken)) == 3
    captured = capsys.readouterr()
    assert "enrolled  " + str(tmp_path) + "/eileen\\ncollins.png" in captured.out.splitlines()
    assert all(line.startswith(("enrolled", "rejected", "Eileen"))
               for line in captured.out.splitlines())
    assert all(line.startswith("faceguard: ") for line in captured.err.splitlines())
    assert one_line("a\tb\x1bc") == "a\\tb\\x1bc"


def test_words_agree_with_their_numbers() -> None:
    assert plural(1, "try") == "1 try" and plural(4, "try") == "4 tries"
    assert plural(1, "person", "people") == "1 person"
    assert plural(0, "person", "people") == "0 people"
    assert plural(2, "day") == "2 days" and plural(1, "photo") == "1 photo"


def test_the_folder_source_reads_gifs_as_enrolment_does(tmp_path: Path) -> None:
    if shutil.which("convert") is None:
        pytest.skip("needs ImageMagick's convert to write a GIF")
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((60, 80, 3), 90, np.uint8))
    subprocess.run(["convert", "-size", "80x60", "xc:gray", str(folder / "b.gif")], check=True)
    source = make_source(SourceSpec.parse(str(folder)), loop=False, realtime=False)
    source.open()
    frames = []
    with pytest.raises(SourceEnded):
        while True:
            frames.append(source.read())
    source.close()
    # Each image is shown for a few frames; both the PNG and the GIF are among them.
    assert sorted({int(frame.mean()) for frame in frames}) == [90, 126]


def test_sigterm_ends_run_with_its_summary_line(tmp_path: Path) -> None:
    env = {**os.environ, "FACEGUARD_DATA_DIR": str(tmp_path / "data")}
    process = subprocess.Popen(
        [sys.executable, "-m", "faceguard.launcher", "run", "--headless", "--demo",
         "--realtime", "--loop"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=REPO)
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    first = process.stdout.readline()  # the first event: the loop is running
    assert first.startswith("{") and time.monotonic() < deadline
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    summary = err.strip().splitlines()[-1]
    assert "frames from built-in demo" in summary and "(stopped by SIGTERM)" in summary


def test_banner_leaves_with_the_stranger(qtbot) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pytestqt")
    from faceguard.gui.live_view import LiveView
    from faceguard.gui.worker import to_qimage
    from faceguard.kiosk.decisions import Verdict
    from faceguard.kiosk.pipeline import FaceInfo, FrameResult

    view = LiveView()
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.show()
    image = to_qimage(np.zeros((240, 320, 3), np.uint8))
    stranger = Verdict(person_id=None, name=None, similarity=0.3, votes=3)
    face = FaceInfo(box=(10, 10, 120, 130), landmarks=(), size=110, counted=True)
    view.set_frame(image, FrameResult(1, datetime.now(UTC), 320, 240, (face,), stranger))
    assert view.banner.isVisible() and view.banner.title.text() == "Not recognised"
    # The stranger walks away; the votes still say "unknown" but nobody is in view.
    view.set_frame(image, FrameResult(2, datetime.now(UTC), 320, 240, (), stranger))
    assert not view.banner.isVisible()


def test_people_dialog_headers_are_not_cut(qtbot, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pytestqt")
    from faceguard.core.context import AppContext
    from faceguard.gui.app import application
    from faceguard.gui.people import PeopleDialog
    from tests.sync_runner import SyncRunner

    application()
    ctx = AppContext(data_dir)
    dialog = PeopleDialog(ctx, SyncRunner())
    qtbot.addWidget(dialog)
    dialog.resize(860, 560)
    dialog.show()
    header = dialog.table.horizontalHeader()
    metrics = header.fontMetrics()
    for column in range(dialog.table.columnCount()):
        text = dialog.table.horizontalHeaderItem(column).text()
        assert header.sectionSize(column) >= metrics.horizontalAdvance(text) + 8, text
    ctx.close()


def test_file_dialog_toolbar_icons_are_visible(qtbot) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pytestqt")
    from PySide6.QtWidgets import QFileDialog, QToolButton

    from faceguard.gui.app import application

    application()
    dialog = QFileDialog(None, "Photos", str(REPO / "resources" / "demo"))
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    qtbot.addWidget(dialog)
    dialog.show()
    names = ["backButton", "forwardButton", "toParentButton", "newFolderButton",
             "listModeButton", "detailModeButton"]
    for name in names:
        button = dialog.findChild(QToolButton, name)
        assert button is not None, name
        shot = button.grab().toImage()
        values = sorted(shot.pixelColor(x, y).lightness()
                        for x in range(shot.width()) for y in range(shot.height()))
        background = values[len(values) // 2]
        # Enabled icons are near-white strokes; disabled ones (back/forward with no history)
        # are dimmed but must still stand out from the button.
        step = 100 if button.isEnabled() else 25
        strokes = sum(value > background + step for value in values)
        assert strokes >= 8, f"{name}: no visible icon ({strokes} stroke pixels)"
