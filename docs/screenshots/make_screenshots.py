"""Take the README's screenshots of the kiosk window (run under Xvfb, or any X display).

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/make_screenshots.py

Writes live_demo.png (a recognised person), live_demo_unknown.png (the stranger),
enrolment.png and logs.png into this folder. Everything happens in a temporary data folder.
When the product face model is not there yet, point FACEGUARD_EMBEDDER (and
FACEGUARD_EMBEDDER_SHA256) at another embedder and give its threshold with --threshold.
"""

from __future__ import annotations

import argparse
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

from faceguard.core.context import AppContext
from faceguard.gui.app import application
from faceguard.gui.enrol import EnrolDialog
from faceguard.gui.logs import LogsDialog
from faceguard.gui.main_window import MainWindow
from faceguard.gui.tasks import ThreadRunner
from faceguard.kiosk.demo import DEMO_PERSON, prepare_demo
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

        if not wait_until(lambda: logged(True), 40):
            raise SystemExit("no recognition within 40 s")
        settle(1.2)
        save(window, args.out / "live_demo.png", args.root)
        if not wait_until(lambda: logged(False), 40):
            raise SystemExit("no stranger within 40 s")
        settle(0.8)
        save(window, args.out / "live_demo_unknown.png", args.root)

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
