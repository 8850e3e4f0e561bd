"""The kiosk window with pytest-qt (offscreen): the live worker end to end on a video file,
the enrolment dialog, the logs view and its CSV export, the admin PIN, the stale-frame view."""

from __future__ import annotations

import argparse
import csv
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QDate, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QDialog

from faceguard.core.context import AppContext
from faceguard.core.enrolment import Enroller
from faceguard.core.pin import hash_pin
from faceguard.gui.admin import AdminGate, PinDialog, SetPinDialog
from faceguard.gui.app import run_gui
from faceguard.gui.enrol import EnrolDialog
from faceguard.gui.import_dialog import ImportDialog
from faceguard.gui.live_view import LiveView
from faceguard.gui.logs import LogsDialog
from faceguard.gui.main_window import MainWindow
from faceguard.gui.people import PeopleDialog
from faceguard.gui.settings_dialog import SettingsDialog
from faceguard.gui.tasks import ThreadRunner
from faceguard.gui.worker import LiveWorker, to_qimage, to_rgb_array
from faceguard.kiosk.demo import write_demo_video
from faceguard.kiosk.pipeline import FrameResult, pipeline_for
from faceguard.kiosk.sources import SourceSpec
from faceguard.library.accounts import find_account
from faceguard.library.export import EVENT_COLUMNS
from faceguard.settings import load_settings
from tests.conftest import TEST_THRESHOLD, make_data_dir
from tests.sync_runner import SyncRunner

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "resources" / "demo" / "astronaut.png"


@pytest.fixture()
def ctx(tmp_path: Path, open_context: Callable[..., AppContext]) -> AppContext:
    return open_context(make_data_dir(tmp_path, kiosk_name="lobby", min_face_px=40))


def _save(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


# -- the worker end to end -------------------------------------------------------------------

def test_worker_on_a_video_file_logs_one_in_and_only_unknowns_for_the_stranger(
        qtbot, ctx: AppContext, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    enroller = Enroller(ctx.engine, ctx.library, ctx.matcher, ctx.min_face)
    person, _ = enroller.enroll_files("Eileen Collins", [ASTRONAUT])
    assert person is not None
    video = tmp_path / "demo.avi"
    write_demo_video(video, fps=4.0, size=(480, 360))
    pipeline = pipeline_for(ctx)
    worker = LiveWorker(pipeline, SourceSpec.parse(str(video)), realtime=False,
                        loop_source=False)
    frames: list[tuple[QImage, FrameResult]] = []
    events = []
    statuses = []
    worker.frame_ready.connect(lambda image, result: (frames.append((image, result)),
                                                      worker.frame_taken()))
    worker.event_logged.connect(events.append)
    worker.source_status.connect(statuses.append)
    # Responsiveness: the GUI thread's timer keeps ticking while the worker runs.
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    runner = ThreadRunner()
    started = time.perf_counter()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        runner.start(worker)
    elapsed = time.perf_counter() - started
    timer.stop()
    assert runner.shutdown(5000)

    known = [e for e in events if e.person_id is not None]
    assert [(e.person_name, e.direction, e.kiosk_id) for e in known] == \
        [("Eileen Collins", "IN", "lobby")]
    strangers = [e for e in events if e.person_id is None]
    assert strangers and all(e.decision == "unknown" for e in strangers)
    assert events.index(known[0]) < events.index(strangers[0])  # Eileen first, then Grace
    stored = ctx.library.query_events()
    assert [(e.person_name, e.decision) for e in stored] == \
        [(e.person_name, e.decision) for e in events]
    assert all(e.has_crop for e in stored)
    # Frames arrive as independent QImage copies with their results.
    assert frames and all(isinstance(image, QImage) and not image.isNull()
                          for image, _ in frames)
    assert frames[0][0].width() == 480 and frames[0][1].width == 480
    assert any(face.known and face.name == "Eileen Collins"
               for _, result in frames for face in result.faces)
    assert [s.state for s in statuses][-1] == "ended"
    gaps = np.diff(ticks)
    print(f"worker: {len(frames)} frames shown, mean pipeline "
          f"{np.mean([r.latency_ms for _, r in frames]):.0f} ms; GUI timer (20 ms): "
          f"{len(ticks)} ticks, max gap {gaps.max() * 1000:.0f} ms")
    # However fast the worker got through the video, the 20 ms timer ticked all along.
    assert len(ticks) >= max(3, 0.5 * elapsed / 0.02), (len(ticks), elapsed)
    assert gaps.max() < 0.5, f"GUI thread stalled {gaps.max():.3f} s"


def test_qimage_round_trip_is_a_copy() -> None:
    frame = np.random.default_rng(1).integers(0, 255, (7, 13, 3), dtype=np.uint8)
    image = to_qimage(frame)
    frame[:] = 0
    back = to_rgb_array(image)
    assert back.shape == (7, 13, 3) and back.any()


# -- enrolment -------------------------------------------------------------------------------

def test_enrol_dialog_from_files_accepts_and_rejects_with_reasons(
        qtbot, ctx: AppContext, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blank = _save(tmp_path / "blank.png", np.full((300, 300, 3), 200, np.uint8))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0garbage")
    tiny = _save(tmp_path / "tiny.png", cv2.resize(cv2.cvtColor(cv2.imread(str(ASTRONAUT)),
                                                                cv2.COLOR_BGR2RGB), (96, 96)))
    dialog = EnrolDialog(ctx, SyncRunner())
    qtbot.addWidget(dialog)
    dialog.name.setText("Ana Lima")
    dialog.employee_id.setText("E-7")
    dialog.add_files([ASTRONAUT, blank, corrupt, tiny])
    texts = dict(dialog.result_texts())
    assert texts["astronaut.png"].startswith("✓ ready")
    assert texts["blank.png"] == "✗ no face found"
    assert texts["corrupt.jpg"].startswith("✗ not a readable image")
    assert texts["tiny.png"].startswith("✗ face too small")
    assert "1 of 4 photos can be enrolled" in dialog.status.text()
    assert not dialog.table.item(0, 0).icon().isNull()  # the aligned crop kept
    assert dialog.enrol_button.isEnabled()

    with qtbot.waitSignal(dialog.enrolled, timeout=10_000):
        dialog.enrol()
    people = ctx.library.list_people()
    assert [(p.name, p.employee_id, p.template_count) for p in people] == [("Ana Lima", "E-7", 1)]
    assert dict(dialog.result_texts())["astronaut.png"] == "✓ enrolled"
    assert not dialog.enrol_button.isEnabled()

    # The same face under another name: refused, naming both; the dialog then offers the
    # resolutions, and "enrol anyway" needs a reason that goes to the audit.
    other = EnrolDialog(ctx, SyncRunner())
    qtbot.addWidget(other)
    other.name.setText("Someone Else")
    other.add_files([ASTRONAUT])
    assert not other.form.isRowVisible(other.lookalike)
    other.enrol()
    result = dict(other.result_texts())["astronaut.png"]
    assert "already matches Ana Lima" in result and "as Someone Else" in result
    assert other.status.text().startswith("Nothing was enrolled")
    assert other.form.isRowVisible(other.lookalike) and other.enrol_button.isEnabled()
    other.lookalike.setCurrentIndex(other.lookalike.findData("force"))
    other.enrol()
    assert "needs a reason" in other.status.text()
    other.reason.setText("twins; checked by HR")
    with qtbot.waitSignal(other.enrolled, timeout=10_000):
        other.enrol()
    assert dict(other.result_texts())["astronaut.png"].startswith("✓ enrolled")
    assert "enrol_resolved" in [a.action for a in ctx.library.list_audit(limit=5)]

    # Typing an enrolled name offers to add the photos to that person instead.
    more = EnrolDialog(ctx, SyncRunner())
    qtbot.addWidget(more)
    more.name.setText("ana  lima")
    assert more.add_existing.isVisibleTo(more) and "Ana Lima" in more.add_existing.text()
    more.add_files([ASTRONAUT])
    more.enrol()
    assert "already enrolled" in more.status.text()  # not ticked: refused
    more.add_existing.setChecked(True)
    more.enrol()
    assert "already enrolled for this person" in dict(more.result_texts())["astronaut.png"]


def test_enrol_dialog_needs_a_name_and_a_good_photo(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    dialog = EnrolDialog(ctx, SyncRunner())
    qtbot.addWidget(dialog)
    assert not dialog.enrol_button.isEnabled()
    dialog.add_files([ASTRONAUT])
    dialog.enrol()
    assert "name" in dialog.status.text()
    assert ctx.library.list_people() == []


def test_capture_from_camera_keeps_only_frames_that_pass(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    face = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)
    frames = iter([face, np.zeros((240, 320, 3), np.uint8), face])
    dialog = EnrolDialog(ctx, SyncRunner(), frame_provider=lambda: next(frames))
    qtbot.addWidget(dialog)
    dialog.start_capture(frames=3)
    qtbot.waitUntil(lambda: len(dialog.rows) == 3 and dialog.busy == 0, timeout=10_000)
    results = [text for _, text in dialog.result_texts()]
    assert [r[0] for r in results] == ["✓", "✗", "✓"]
    assert results[1] == "✗ no face found"


def test_removing_a_person_deletes_their_templates(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    enroller = Enroller(ctx.engine, ctx.library, ctx.matcher, ctx.min_face)
    person, _ = enroller.enroll_files("Eileen Collins", [ASTRONAUT])
    assert person is not None and len(ctx.matcher) == 1
    dialog = PeopleDialog(ctx, SyncRunner(), confirm=lambda parent, question: True)
    qtbot.addWidget(dialog)
    dialog.select("Eileen Collins")
    with qtbot.waitSignal(dialog.removed) as removed:
        dialog.remove_selected()
    assert removed.args == [person.id]
    assert ctx.library.list_people() == [] and len(ctx.matcher) == 0
    assert ctx.library.model_ids() == {}
    assert ctx.library.list_audit(limit=1)[0].action == "remove_person"


# -- logs view -------------------------------------------------------------------------------

@pytest.fixture()
def logged(ctx: AppContext) -> dict[str, int]:
    """Events over three local days: Ana (known), Bob (known), strangers (unknown)."""
    library = ctx.library
    ana = library.add_person("Ana").id
    bob = library.add_person("=Bob").id  # a formula-like name: the export must neutralise it
    base = datetime(2026, 3, 10, 9, 0).astimezone()  # local 09:00

    def at(day: int, hour: float) -> datetime:
        return (base + timedelta(days=day, hours=hour - 9)).astimezone(UTC)

    library.add_event(at(0, 8.5), "lobby", ana, 0.91, "known", b"\xff\xd8x")
    library.add_event(at(0, 17.25), "lobby", ana, 0.88, "known")
    library.add_event(at(0, 12), "lobby", None, 0.31, "unknown")
    library.add_event(at(1, 9), "lobby", bob, 0.95, "known")
    library.add_event(at(1, 9.5), "lobby", None, 0.22, "unknown")
    library.add_event(at(2, 8), "lobby", ana, 0.9, "known", access="denied",
                      access_reason="outside your hours")
    return {"ana": ana, "bob": bob}


def _dialog(qtbot, ctx: AppContext, page_size: int = 50) -> LogsDialog:  # type: ignore[no-untyped-def]
    dialog = LogsDialog(ctx, page_size=page_size, today=date(2026, 3, 12))
    qtbot.addWidget(dialog)
    return dialog


def test_logs_view_filters_and_pages(qtbot, ctx: AppContext,  # type: ignore[no-untyped-def]
                                     logged: dict[str, int]) -> None:
    dialog = _dialog(qtbot, ctx, page_size=4)
    model = dialog.model
    assert model.total == 6 and model.rowCount() == 4 and model.pages == 2
    assert "1–4 of 6" in dialog.page_label.text()
    times = [model.index(r, 1).data() for r in range(model.rowCount())]
    assert times == sorted(times, reverse=True)  # newest first, local time
    dialog.older.click()
    assert model.page == 1 and model.rowCount() == 2 and not dialog.older.isEnabled()

    dialog.person.setCurrentIndex(dialog.person.findData(logged["ana"]))
    assert model.total == 3 and model.page == 0
    assert {model.index(r, 2).data() for r in range(3)} == {"Ana"}
    assert model.HEADERS[4] == "Door"  # the newest: Ana refused, with the reason
    assert model.index(0, 4).data() == "denied: outside your hours"
    assert [model.index(r, 4).data() for r in range(1, 3)] == ["", ""]
    dialog.person.setCurrentIndex(0)
    dialog.decision.setCurrentIndex(dialog.decision.findData("unknown"))
    assert model.total == 2
    assert {model.index(r, 3).data() for r in range(2)} == {"Not recognised"}
    dialog.decision.setCurrentIndex(0)
    dialog.first.setDate(QDate.fromString("2026-03-11", "yyyy-MM-dd"))
    assert model.total == 3  # 11th and 12th only
    dialog.last.setDate(QDate.fromString("2026-03-11", "yyyy-MM-dd"))
    assert model.total == 2


def test_logs_view_updates_live(qtbot, ctx: AppContext,  # type: ignore[no-untyped-def]
                                logged: dict[str, int]) -> None:
    dialog = _dialog(qtbot, ctx)
    dialog.last.setDate(QDate.fromString("2099-01-01", "yyyy-MM-dd"))
    before = dialog.model.total
    ctx.library.add_event(datetime.now(UTC), "lobby", logged["bob"], 0.9, "known")
    dialog.event_logged()
    qtbot.waitUntil(lambda: dialog.model.total == before + 1, timeout=3000)


def test_csv_export_of_events_and_attendance(qtbot, ctx: AppContext,  # type: ignore[no-untyped-def]
                                             logged: dict[str, int], tmp_path: Path) -> None:
    dialog = _dialog(qtbot, ctx, page_size=2)  # export covers every page, not just one
    events_csv = tmp_path / "events.csv"
    assert dialog.export_events(events_csv) == 6
    with events_csv.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == EVENT_COLUMNS
    assert len(rows) == 7
    assert {r[4] for r in rows[1:]} == {"Ana", "'=Bob", ""}
    assert {r[5] for r in rows[1:]} == {"known", "unknown"}
    assert all(r[1].startswith("2026-03-1") for r in rows[1:])

    dialog.decision.setCurrentIndex(dialog.decision.findData("unknown"))
    assert dialog.export_events(events_csv) == 2

    dialog.decision.setCurrentIndex(0)
    attendance_csv = tmp_path / "attendance.csv"
    assert dialog.export_attendance(attendance_csv) == 3
    with attendance_csv.open(encoding="utf-8-sig", newline="") as handle:
        days = list(csv.DictReader(handle))
    first = next(d for d in days if d["person"] == "Ana" and d["date"] == "2026-03-10")
    assert first["hours"] == "8.75" and first["events"] == "2"
    assert first["first_in"].startswith("2026-03-10T08:30")
    assert dialog.attendance_table.rowCount() == 3
    actions = [entry.action for entry in ctx.library.list_audit()]
    assert actions.count("export_events") == 2 and "export_attendance" in actions


# -- admin PIN -------------------------------------------------------------------------------

def test_first_run_sets_a_salted_scrypt_pin(qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    def fill(dialog: QDialog) -> int:
        assert isinstance(dialog, SetPinDialog)
        qtbot.addWidget(dialog)
        dialog.pin.setText("4821")
        dialog.repeat.setText("4821")
        dialog.submit()
        assert "at least 6 digits" in dialog.message.text()
        dialog.pin.setText("123456")
        dialog.repeat.setText("123456")
        dialog.submit()
        assert "common" in dialog.message.text()
        dialog.pin.setText("482913")
        dialog.repeat.setText("482914")
        dialog.submit()
        assert "differ" in dialog.message.text()
        dialog.repeat.setText("482913")
        dialog.submit()
        return dialog.result()

    gate = AdminGate(ctx, opener=fill)
    assert not gate.has_pin
    assert gate.ask(None, "open the settings")
    account = find_account(ctx.library, "admin")  # in the library, not in settings.json
    stored = account.pin_hash if account is not None else None
    assert stored is not None and stored.startswith("scrypt$65536$") and "482913" not in stored
    assert load_settings(ctx.data_dir).pin_hash is None
    assert ctx.library.list_audit(limit=1)[0].action == "set_pin"


def test_pin_lock_out_after_five_wrong_tries(  # type: ignore[no-untyped-def]
        qtbot, ctx: AppContext, open_context: Callable[..., AppContext]) -> None:
    now = [1000.0]
    dialogs: list[PinDialog] = []

    def wrong_five_times(dialog: QDialog) -> int:
        assert isinstance(dialog, PinDialog)
        qtbot.addWidget(dialog)
        dialogs.append(dialog)
        for attempt in range(5):
            dialog.pin.setText(f"000{attempt}")
            dialog.ok_button.click()
        return dialog.result()

    gate = AdminGate(ctx, opener=wrong_five_times, clock=lambda: now[0])
    gate.store_hash(hash_pin("258013", n=2**10))
    assert not gate.ask(None, "open the logs")
    dialog = dialogs[0]
    assert dialog.locked and not dialog.pin.isEnabled() and not dialog.ok_button.isEnabled()
    assert "locked" in dialog.message.text()

    def right_pin(dialog: QDialog) -> int:
        assert isinstance(dialog, PinDialog)
        qtbot.addWidget(dialog)
        dialog.pin.setText("258013")
        dialog.submit()
        return dialog.result()

    # A restart 20 s into the lock (a new context and gate over the same library, as after
    # quitting the app) is still locked: the lock lives in the library, not in memory.
    now[0] += 20
    restarted = open_context(ctx.data_dir, settings=ctx.settings)
    gate = AdminGate(restarted, opener=right_pin, clock=lambda: now[0])
    assert not gate.ask(None, "open the logs")  # still locked: the right PIN is not checked
    now[0] += 10
    assert not gate.ask(None, "open the logs")
    now[0] += ctx.settings.admin_lock_s
    assert gate.ask(None, "open the logs")
    account = find_account(ctx.library, "admin")
    assert account is not None and account.failures == 0
    # The successful try re-hashed the cheap test hash with the current cost.
    assert account.pin_hash.startswith("scrypt$65536$")
    actions = [entry.action for entry in reversed(ctx.library.list_audit())]
    assert actions.count("admin_pin_wrong") == 4
    assert actions.count("admin_locked") == 1 and actions[-1] == "admin_unlock"


def test_a_protected_library_without_its_pin_shows_recovery_not_first_run(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QMessageBox

    AdminGate(ctx).store_hash(hash_pin("258013", n=2**10))
    ctx.library.db.conn.execute("DELETE FROM admin_accounts")  # the credential is lost
    ctx.library.db.conn.commit()
    shown: list[QDialog] = []

    def record(dialog: QDialog) -> int:
        qtbot.addWidget(dialog)
        shown.append(dialog)
        return QDialog.DialogCode.Rejected

    gate = AdminGate(ctx, opener=record)
    assert not gate.ask(None, "open the settings")
    assert not gate.set_pin(None, first_run=True)
    assert len(shown) == 2 and all(isinstance(d, QMessageBox) for d in shown)
    assert "admin reset-pin" in shown[0].text()  # type: ignore[attr-defined]


# -- live view -------------------------------------------------------------------------------

def test_live_view_never_shows_an_old_frame_as_live(qtbot) -> None:  # type: ignore[no-untyped-def]
    now = [0.0]
    view = LiveView(clock=lambda: now[0])
    qtbot.addWidget(view)
    image = to_qimage(np.zeros((48, 64, 3), np.uint8))
    view.set_frame(image, FrameResult(0, datetime.now(UTC), 64, 48))
    assert view.is_live
    now[0] += 1.0
    view.check_stale()
    assert view.is_live
    now[0] += 1.5
    view.check_stale()
    assert not view.is_live
    view.grab()  # paints the dimmed frame and the message without error
    view.set_frame(image, FrameResult(1, datetime.now(UTC), 64, 48))
    assert view.is_live


# -- the window ------------------------------------------------------------------------------

@pytest.fixture()
def video(tmp_path: Path) -> Path:
    path = tmp_path / "demo.avi"
    write_demo_video(path, fps=4.0, size=(480, 360))
    return path


def test_window_shows_frames_and_needs_the_pin_to_leave_kiosk_mode(
        qtbot, ctx: AppContext, video: Path) -> None:  # type: ignore[no-untyped-def]
    answers = ["111111", "258013"]

    def type_pin(dialog: QDialog) -> int:
        assert isinstance(dialog, PinDialog)
        qtbot.addWidget(dialog)
        dialog.pin.setText(answers.pop(0))
        dialog.submit()
        if dialog.result() != QDialog.DialogCode.Accepted:
            dialog.reject()
        return dialog.result()

    window = MainWindow(ctx, ThreadRunner(), source=str(video), opener=type_pin,
                        ask_first_pin=False)
    qtbot.addWidget(window)
    window.admin.store_hash(hash_pin("258013", n=2**10))
    window.show()
    qtbot.waitUntil(lambda: window.live.frames_shown >= 3, timeout=30_000)
    qtbot.waitUntil(lambda: "fps" in window.status_bar.fps_label.text()
                    and window.status_bar.fps_label.text()[0].isdigit(), timeout=10_000)
    assert "ms/frame" in window.status_bar.latency_label.text()
    assert "Source: video file demo.avi" in window.status_bar.source_label.text()
    assert window.status_bar.people_label.text() == "0 people enrolled"
    window.enter_kiosk()
    assert window.kiosk_mode and window.menuBar().isHidden()
    window.escape_pressed()  # wrong PIN: stays in kiosk mode
    assert window.kiosk_mode
    window.escape_pressed()  # right PIN: back to a window
    assert not window.kiosk_mode and not window.menuBar().isHidden()
    assert ctx.library.list_audit(limit=1)[0].action == "leave_kiosk_mode"
    window.shutdown()


def test_missing_camera_says_so_and_offers_other_sources(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow(ctx, ThreadRunner(), source="9", ask_first_pin=False)
    qtbot.addWidget(window)
    window.show()
    panel = window.live.source_panel
    qtbot.waitUntil(panel.isVisible, timeout=15_000)
    assert panel.title.text() == "No camera"
    assert "no camera found at index 9" in panel.message.text().lower()
    assert set(panel.buttons) == {"file", "url", "folder", "demo", "retry"}
    assert not window.live.is_live
    window.shutdown()


def test_faceguard_demo_opens_the_window_on_a_throwaway_library(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    seen: dict[str, object] = {}

    def close_when_live() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)
                   and w.isVisible()]
        if windows and windows[0].live.frames_shown > 0:
            window = windows[0]
            assert window.demo is not None
            seen["folder"] = window.demo.folder
            seen["people"] = window.status_bar.people_label.text()
            window.close()
        else:
            QTimer.singleShot(100, close_when_live)

    QTimer.singleShot(100, close_when_live)
    args = argparse.Namespace(demo=True, data_dir=None, min_face=None, source=None,
                              kiosk=False)
    assert run_gui(ctx, args) == 0
    folder = seen["folder"]
    assert isinstance(folder, Path) and not folder.exists()  # deleted afterwards
    assert seen["people"] == "2 people enrolled"  # Eileen, and Grace outside her hours
    assert not (ctx.data_dir / "faceguard.db").exists()  # the real library was not touched


def test_background_checks_report_in_the_gui_thread(
        qtbot, ctx: AppContext, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gui_thread = threading.get_ident()
    dialog = EnrolDialog(ctx, ThreadRunner())
    qtbot.addWidget(dialog)
    threads: list[int] = []
    original = dialog._checked
    dialog._checked = lambda first, checks: (threads.append(threading.get_ident()),  # type: ignore[method-assign]
                                             original(first, checks))
    blank = _save(tmp_path / "blank.png", np.zeros((200, 200, 3), np.uint8))
    dialog.add_files([ASTRONAUT, blank])
    qtbot.waitUntil(lambda: dialog.busy == 0, timeout=20_000)
    assert threads == [gui_thread]
    assert [text[0] for _, text in dialog.result_texts()] == ["✓", "✗"]


def test_bulk_import_lists_every_photo(qtbot, ctx: AppContext,  # type: ignore[no-untyped-def]
                                       tmp_path: Path) -> None:
    folder = tmp_path / "people"
    (folder / "Eileen Collins").mkdir(parents=True)
    (folder / "Nobody").mkdir()
    shutil.copy(ASTRONAUT, folder / "Eileen Collins" / "a.png")
    _save(folder / "Eileen Collins" / "b.png", np.zeros((100, 100, 3), np.uint8))
    _save(folder / "Nobody" / "c.png", np.zeros((100, 100, 3), np.uint8))
    dialog = ImportDialog(ctx, ThreadRunner())
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.imported, timeout=30_000):
        dialog.import_folder(folder)
    rows = [tuple(dialog.table.item(r, c).text() for c in range(3))
            for r in range(dialog.table.rowCount())]
    assert rows == [("Eileen Collins", "a.png", "✓ enrolled"),
                    ("Eileen Collins", "b.png", "✗ no face found"),
                    ("Nobody", "c.png", "✗ no face found")]
    assert dialog.progress.value() == dialog.progress.maximum() == 3
    assert "Imported 1 of 2 people: 1 photo added, 2 rejected." in dialog.status.text()
    assert [p.name for p in ctx.library.list_people()] == ["Eileen Collins"]


def test_settings_dialog_saves_validates_and_audits(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    dialog = SettingsDialog(ctx)
    qtbot.addWidget(dialog)
    assert dialog.threshold.value() == pytest.approx(TEST_THRESHOLD)
    assert dialog.data_folder.text() == str(ctx.data_dir)
    dialog.source.setText("   ")
    dialog.save()
    assert dialog.saved is None and "no video source" in dialog.message.text()
    assert ctx.matcher.threshold == pytest.approx(TEST_THRESHOLD)  # loaded before the change
    dialog.source.setText("rtsp://door-camera/stream")
    dialog.threshold.setValue(0.85)
    dialog.repeat.setValue(600)
    dialog.kiosk_name.setText("Back door")
    dialog.save()
    saved = load_settings(ctx.data_dir)
    assert (saved.source, saved.match_threshold, saved.repeat_window_s, saved.kiosk_name) == \
        ("rtsp://door-camera/stream", 0.85, 600, "Back door")
    entry = ctx.library.list_audit(limit=1)[0]
    assert entry.action == "settings_changed" and "Back door" in entry.details
    assert entry.actor == "admin"  # nobody signed in yet (first run)
    ctx.add_account("Ada", "administrator", "583020", actor="cli")
    assert ctx.sign_in("Ada", "583020").ok
    dialog.kiosk_name.setText("Side door")
    dialog.save()
    entry = ctx.library.list_audit(limit=1)[0]
    assert (entry.actor, entry.action) == ("Ada", "settings_changed")  # the signed-in account
    saved = load_settings(ctx.data_dir)
    assert ctx.settings == saved  # the application holds what the dialog saved
    assert ctx.matcher.threshold == pytest.approx(0.85)  # and matches with it at once
