"""Take the README's screenshots of the kiosk window (run under Xvfb, or any X display).

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/make_screenshots.py

Writes live_demo.png (a recognised person: the door opens), live_demo_denied.png (an
enrolled person outside her hours), live_demo_unknown.png (the stranger), door_alarm.png
(the simulated door forced open: the alarm in the status bar), rules_editor.png and
rules_passes.png (the access rules editor), door_settings.png, enrolment.png and logs.png
into this folder. Everything happens in a temporary data folder.
When the product face model is not there yet, point FACEGUARD_EMBEDDER (and
FACEGUARD_EMBEDDER_SHA256) at another embedder and give its threshold with --threshold.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtWidgets import QApplication, QWidget

from faceguard.core.access_admin import AccessAdmin
from faceguard.core.context import AppContext
from faceguard.core.door.simulated import SimulatedDoor
from faceguard.gui.app import application
from faceguard.gui.door_panel import DoorSettingsDialog
from faceguard.gui.enrol import EnrolDialog
from faceguard.gui.logs import LogsDialog
from faceguard.gui.main_window import MainWindow
from faceguard.gui.rules_editor import RulesDialog
from faceguard.gui.tasks import ThreadRunner
from faceguard.kiosk.demo import DEMO_LATE_GROUP, DEMO_PERSON, DEMO_VISITOR, prepare_demo
from faceguard.paths import resources_dir
from faceguard.settings import Settings, load_settings, save_settings
from faceguard.vision.image_io import encode_jpeg, load_image

HERE = Path(__file__).resolve().parent
SIZE = (1280, 800)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Run the Qt event loop until ``condition`` holds (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False


def settle(seconds: float) -> None:
    wait_until(lambda: False, seconds)


def save(widget: QWidget, path: Path, root: bool) -> None:
    """Save a screenshot: the X root window (import) or the widget itself."""
    settle(0.3)
    if root and shutil.which("import"):
        subprocess.run(["import", "-window", "root", str(path)], check=True)
    else:
        widget.grab().save(str(path))
    print(f"wrote {path}")


def photos(folder: Path) -> list[Path]:
    """Enrolment photos: two good ones and four that are rejected for different reasons."""
    demo = resources_dir() / "demo"
    face = load_image(demo / "astronaut.png")
    height, width = face.shape[:2]

    def write(name: str, rgb: np.ndarray) -> Path:
        path = folder / name
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return path

    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 5, 0.9)
    turned = cv2.warpAffine(face, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    pair = np.concatenate([face, face[:, ::-1]], axis=1)
    return [
        demo / "astronaut.png",
        write("eileen_2.jpg", turned),
        write("eileen_blurred.jpg", cv2.GaussianBlur(face, (0, 0), 6)),
        write("eileen_far.jpg", cv2.resize(face, (120, 120))),
        write("two_faces.jpg", pair),
        demo / "camera_profile.png",
    ]


def fake_history(ctx: AppContext, days: int = 4) -> None:
    """A few days of entries before today, so the log and attendance have something to show."""
    library = ctx.library
    person = library.find_person_by_name(DEMO_PERSON)
    assert person is not None
    crop = library.get_template_crop(library.list_templates(person.id)[0].id)
    stranger = encode_jpeg(cv2.resize(load_image(resources_dir() / "demo" / "grace_hopper.jpg")
                                      [106:344, 164:348], (96, 96)))
    kiosk = ctx.settings.kiosk_name
    today = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    rng = np.random.default_rng(3)
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        for hour, kind in ((8.8, "known"), (12.4, "unknown"), (13.1, "known"),
                           (17.6, "known")):
            moment = (day + timedelta(hours=hour + rng.uniform(-0.2, 0.2))).astimezone(UTC)
            if kind == "known":
                library.add_event(moment, kiosk, person.id, float(rng.uniform(0.86, 0.97)),
                                  "known", crop)
            else:
                library.add_event(moment, kiosk, None, float(rng.uniform(0.2, 0.45)),
                                  "unknown", stranger)


def sample_rules(admin: AccessAdmin) -> None:
    """Groups, hours, a holiday and a visitor's pass for the rules editor's screenshots."""
    admin.add_group("Cleaning")
    admin.add_hours("Cleaning", "mon-fri", "05:30", "08:00")
    admin.add_hours("Cleaning", "mon-fri", "18:00", "21:30")
    admin.add_hours("Cleaning", "sat", "07:00", "12:00")
    admin.add_group("Night shift")
    admin.add_hours("Night shift", "mon-fri", "22:00", "06:00")
    admin.add_hours("Night shift", "holiday", "20:00", "08:00")
    people = {p.name: p.id for p in admin.ctx.library.list_people()}
    admin.set_members("Night shift", [people[DEMO_PERSON]])
    year = datetime.now().year
    admin.set_holiday(datetime(year, 12, 25).date(), "Christmas Day")
    admin.set_holiday(datetime(year, 12, 26).date(), "Boxing Day")
    admin.set_holiday(datetime(year + 1, 1, 1).date(), "New Year's Day")
    today = datetime.now().date()
    admin.set_pass(people[DEMO_VISITOR], today - timedelta(days=2), today + timedelta(days=5))


def door_shots(window: MainWindow, ctx: AppContext, out: Path, root: bool) -> None:
    """The door forced open (the alarm in the status bar), the rules editor, door settings."""
    gate = window.pipeline.gate
    assert gate is not None and isinstance(gate.driver, SimulatedDoor)
    door = gate.driver
    wait_until(lambda: gate.status.state == "locked", 10)
    wait_until(lambda: not window.live.banner.isVisible(), 15)  # nobody at the door
    settle(1.2)  # past the relock grace: an opening now is forced
    door.set_contact(True)
    if not wait_until(lambda: window.status_bar.door_label.state == "alarm", 5):
        raise SystemExit("the forced-open alarm did not reach the status bar")
    settle(0.5)
    save(window, out / "door_alarm.png", root)
    door.set_contact(False)

    admin = AccessAdmin(ctx, actor="admin")
    sample_rules(admin)
    rules = RulesDialog(admin, window)
    rules.setGeometry(140, 60, 1000, 680)
    rules.show()
    rules.group_list.setCurrentRow(
        [g.name for g in admin.groups()].index("Night shift"))
    settle(0.5)
    save(rules, out / "rules_editor.png", False)
    rules.group_list.setCurrentRow([g.name for g in admin.groups()].index(DEMO_LATE_GROUP))
    rules.tabs.setCurrentIndex(2)
    rules.pass_table.selectRow([p.name for p in admin.passes()].index(DEMO_VISITOR))
    settle(0.4)
    save(rules, out / "rules_passes.png", False)
    rules.close()

    # "Test door" through the serial driver, to a pseudo-terminal playing the relay board
    master, slave = os.openpty()
    dialog = DoorSettingsDialog(ctx, gate, window.runner, window)
    dialog.setGeometry(300, 40, 640, 660)
    dialog.driver.setCurrentText("serial")
    dialog.serial_port.setText(os.ttyname(slave))
    dialog.pulse.setValue(1.0)
    dialog.serial_input_open.setText("F1 01")
    dialog.serial_input_closed.setText("F1 00")
    dialog.serial_input_exit.setText("F2 01")
    dialog.show()
    dialog.test_door()
    wait_until(lambda: dialog.test_button.isEnabled(), 15)
    settle(0.4)
    save(dialog, out / "door_settings.png", False)
    print(f"  the board received {os.read(master, 64).hex(' ')}")
    dialog.close()
    os.close(master)
    os.close(slave)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--threshold", type=float,
                        help="match threshold for the embedder in use (default: calibrated)")
    parser.add_argument("--root", action="store_true",
                        help="grab the X root window with ImageMagick's import")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="faceguard-shots-"))
    app = application()
    try:
        folder = work / "data"
        save_settings(Settings(kiosk_name="Lobby", source="demo",
                               match_threshold=args.threshold), folder)
        session = prepare_demo(folder)
        runner = ThreadRunner()
        window = MainWindow(session.ctx, runner, source="demo", demo=session,
                            ask_first_pin=False)
        window.setGeometry(0, 0, *SIZE)
        window.show()
        def logged(known: bool) -> bool:
            return any((e.person_id is not None) == known
                       for e in session.ctx.library.query_events())

        def decided(decision: str) -> bool:
            return any(e.decision == decision for e in session.ctx.library.query_events())

        banner = window.live.banner
        if not wait_until(lambda: logged(True), 40):
            raise SystemExit("no recognition within 40 s")
        settle(0.6)
        save(window, args.out / "live_demo.png", args.root)
        if not wait_until(lambda: banner.isVisible()
                          and banner.title.text() == "Access denied", 40):
            raise SystemExit("no refusal within 40 s")
        settle(0.6)
        save(window, args.out / "live_demo_denied.png", args.root)
        if not wait_until(lambda: decided("unknown"), 60):
            raise SystemExit("no stranger within 60 s")
        settle(0.8)
        save(window, args.out / "live_demo_unknown.png", args.root)
        door_shots(window, session.ctx, args.out, args.root)

        fake_history(session.ctx)
        logs = LogsDialog(session.ctx, window)
        logs.setGeometry(150, 60, 980, 680)
        logs.show()
        settle(0.5)
        save(logs, args.out / "logs.png", False)
        logs.tabs.setCurrentIndex(1)
        settle(0.3)
        save(logs, args.out / "logs_attendance.png", False)
        logs.close()
        window.shutdown()
        window.close()

        fresh = work / "fresh"
        save_settings(load_settings(folder).replace(kiosk_name="Lobby"), fresh)
        ctx = AppContext(fresh)
        enrol = EnrolDialog(ctx, ThreadRunner())
        enrol.setGeometry(200, 60, 880, 680)
        enrol.name.setText(DEMO_PERSON)
        enrol.employee_id.setText("NASA-1")
        enrol.department.setText("Flight crew")
        enrol.show()
        enrol.add_files(photos(work))
        wait_until(lambda: enrol.busy == 0, 60)
        settle(0.5)
        save(enrol, args.out / "enrolment.png", False)
        enrol.close()
        ctx.close()
        session.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
