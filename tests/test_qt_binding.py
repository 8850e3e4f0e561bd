"""The crash after ~35 s of live video: PySide6 6.12.0 on CPython 3.11 lowers None's reference
count on every void Qt call until the interpreter frees None and aborts. These tests paint
through the real live view and run the real window with its worker, and check that None's
count stays put on the interpreters where it can move (before 3.12, None is not immortal)."""

from __future__ import annotations

import argparse
import io
import json
import sys
from contextlib import redirect_stdout
from datetime import UTC, datetime

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from faceguard.core.context import AppContext
from faceguard.gui import soak as soak_module
from faceguard.gui.app import run_gui
from faceguard.gui.live_view import LiveView
from faceguard.gui.qt_binding import binding_problem, none_references_lost
from faceguard.gui.worker import to_qimage
from faceguard.kiosk.decisions import Verdict
from faceguard.kiosk.pipeline import FaceInfo, FrameResult

MORTAL_NONE = sys.version_info < (3, 12)


def test_the_installed_qt_binding_keeps_none_alive() -> None:
    assert binding_problem() is None
    assert none_references_lost() <= 2


def _frame_result(index: int) -> FrameResult:
    faces = (
        FaceInfo(box=(40, 30, 140, 150), landmarks=((70, 80), (110, 80), (90, 100), (75, 125),
                                                     (105, 125)),
                 size=110, person_id=1, name="Eileen Collins", similarity=0.91, counted=True),
        FaceInfo(box=(200, 40, 240, 90), landmarks=(), size=45, too_small=True),
    )
    verdict = Verdict(person_id=1 if index % 2 else None, name="Eileen Collins",
                      similarity=0.91, votes=3) if index % 3 else None
    return FrameResult(index, datetime.now(UTC), 320, 240, faces, verdict=verdict,
                       latency_ms=12.0)


def test_painting_thousands_of_frames_leaves_none_untouched(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = LiveView()
    qtbot.addWidget(view)
    view.resize(640, 480)
    rng = np.random.default_rng(0)
    image = to_qimage(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    view.set_frame(image, _frame_result(0))
    view.grab()  # warm-up: the first paint fills the binding's caches
    start = sys.getrefcount(None)
    for index in range(1, 2001):
        view.set_frame(image, _frame_result(index))
        view.grab()
        if MORTAL_NONE and index % 100 == 0:
            lost = start - sys.getrefcount(None)
            # Stop before None is freed (that would abort the whole test run).
            assert lost < 500, f"{lost} references to None lost after {index} frames"
    assert view.frames_shown == 2001


def test_soak_runs_the_window_and_worker_and_reports_a_healthy_interpreter(
        ctx: AppContext) -> None:
    out = io.StringIO()
    args = argparse.Namespace(demo=False, data_dir=None, min_face=None, source=None,
                              kiosk=False, soak_minutes=0.2, soak_every=2.0)
    with redirect_stdout(out):
        code = run_gui(ctx, args)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    samples, summary = lines[:-1], lines[-1]
    assert code == 0, summary
    assert summary["summary"] and summary["healthy"]
    assert len(samples) >= 5
    assert summary["frames_processed"] >= 40 and summary["frames_painted"] >= 40
    assert summary["events"] >= 1  # the demo's enrolled person is greeted
    assert summary["rss_peak_mb"] >= summary["rss_first_mb"] > 50
    if MORTAL_NONE:
        assert summary["none_refcount_largest_drop"] < soak_module.NONE_DROP_LIMIT
    assert not (ctx.data_dir / "faceguard.db").exists()  # the soak used a throw-away library


def test_memory_slope_uses_the_second_half() -> None:
    samples = [soak_module.SoakSample(t, 0, 0, 0, rss, 0.0, 0)
               for t, rss in [(0, 100), (60, 150), (120, 150), (180, 151), (240, 152)]]
    slope = soak_module.memory_slope_mb_per_hour(samples)
    assert slope == pytest.approx(60.0, abs=1e-6)  # +1 MB a minute after the warm-up


@pytest.fixture()
def ctx(tmp_path, test_embedder_env):  # type: ignore[no-untyped-def]
    from tests.conftest import make_data_dir

    context = AppContext(make_data_dir(tmp_path))
    yield context
    context.close()
