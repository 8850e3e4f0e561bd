"""The kiosk core without Qt: sources, voting decisions, the PIN, the loop's watchdog, and
`faceguard run --headless` end to end on a video file (real detector, tiny test embedder)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.cli import EXIT_ERROR, EXIT_OK, main
from faceguard.clock import ManualClock
from faceguard.core.pin import PinCheck, PinError, PinGate, hash_pin, verify_pin
from faceguard.kiosk.decisions import Candidate, Decider, DecisionPolicy
from faceguard.kiosk.demo import write_demo_video
from faceguard.kiosk.demo_source import DemoSource
from faceguard.kiosk.folder_source import FolderSource
from faceguard.kiosk.loop import KioskLoop, LoopHooks, SourceStatus
from faceguard.kiosk.pipeline import FrameResult
from faceguard.kiosk.sources import (
    FrameSource,
    SourceEnded,
    SourceError,
    SourceSpec,
    make_source,
)
from tests.conftest import TEST_THRESHOLD, make_data_dir

T0 = datetime(2026, 3, 2, 8, 59, tzinfo=UTC)


# -- sources -----------------------------------------------------------------------------------

def test_source_spec_parse(tmp_path: Path) -> None:
    assert SourceSpec.parse("0") == SourceSpec("camera", "0")
    assert SourceSpec.parse(" demo ").kind == "demo"
    assert SourceSpec.parse("rtsp://u:secret@cam/1").kind == "url"
    assert "secret" not in SourceSpec.parse("rtsp://u:secret@cam/1").describe()
    assert SourceSpec.parse(str(tmp_path)).kind == "folder"
    assert SourceSpec.parse(str(tmp_path / "x.mp4")).kind == "file"
    assert SourceSpec("camera", "0").live and not SourceSpec("file", "x").live
    with pytest.raises(SourceError):
        SourceSpec.parse("  ")


def test_missing_file_and_empty_folder_say_why(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        make_source(str(tmp_path / "none.avi")).open()
    with pytest.raises(SourceError, match="has no images"):
        make_source(str(tmp_path)).open()
    (tmp_path / "bad.avi").write_bytes(b"not a video")
    with pytest.raises(SourceError):
        source = make_source(str(tmp_path / "bad.avi"))
        source.open()
        source.read()


def test_folder_source_repeats_each_image_and_skips_unreadable(tmp_path: Path) -> None:
    for index in range(2):
        cv2.imwrite(str(tmp_path / f"{index}.png"), np.full((20, 30, 3), index * 100, np.uint8))
    (tmp_path / "2.jpg").write_bytes(b"broken")
    source = FolderSource(SourceSpec("folder", str(tmp_path)), frames_per_image=2)
    with source:
        frames = [source.read() for _ in range(4)]
        with pytest.raises(SourceEnded):
            source.read()
    assert [int(f[0, 0, 0]) for f in frames] == [0, 0, 100, 100]
    assert frames[0].shape == (20, 30, 3)


def test_demo_source_is_reproducible_and_ends_without_loop() -> None:
    source = DemoSource(loop=False, fps=2.0, size=(160, 120))
    with source:
        frames = []
        while True:
            try:
                frames.append(source.read())
            except SourceEnded:
                break
    assert len(frames) == source.cycle_frames
    assert frames[0].shape == (120, 160, 3)
    assert np.array_equal(source.render(5), DemoSource(fps=2.0, size=(160, 120)).render(5))
    shots = [source.shot_at(i)[0].photo for i in range(source.cycle_frames)]
    assert shots[0] is None and "astronaut.png" in shots and "grace_hopper.jpg" in shots


def test_video_file_source_reads_rgb_frames(tmp_path: Path) -> None:
    path = tmp_path / "demo.avi"
    count = write_demo_video(path, fps=2.0, size=(160, 120))
    source = make_source(str(path))
    with source:
        assert source.fps == pytest.approx(2.0)
        frames = 0
        while True:
            try:
                frame = source.read()
            except SourceEnded:
                break
            frames += 1
            assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    assert frames == count


# -- decisions ---------------------------------------------------------------------------------

def _vote(person: int | None, similarity: float = 0.9) -> Candidate:
    return Candidate(person, similarity, None if person is None else f"P{person}")


def test_n_of_m_votes_and_one_event_per_visit() -> None:
    decider = Decider(DecisionPolicy(3, 5, repeat_window_s=300), "k1")
    clock = ManualClock(T0)
    votes = [_vote(1), _vote(2), _vote(1), None, _vote(1), _vote(1), _vote(1)]
    outcomes = [decider.update(v, clock.advance(0.1)) for v in votes]
    assert [o.verdict.person_id if o.verdict else None for o in outcomes] == \
        [None, None, None, None, 1, 1, 1]
    events = [o.event for o in outcomes if o.event]
    assert len(events) == 1 and events[0].person_id == 1 and events[0].direction == "IN"
    assert outcomes[5].previous == events[0].timestamp
    # Standing there for ten minutes is still the same visit.
    for _ in range(120):
        assert decider.update(_vote(1), clock.advance(5)).event is None


def test_repeat_window_then_out() -> None:
    decider = Decider(DecisionPolicy(2, 3, repeat_window_s=300, visit_gap_s=5), "k1")
    clock = ManualClock(T0)

    def visit() -> list[str | None]:
        found = []
        for _ in range(3):
            outcome = decider.update(_vote(7), clock.advance(0.2))
            if outcome.event:
                found.append(outcome.event.direction)
        for _ in range(3):
            decider.update(None, clock.advance(0.2))
        return found

    assert visit() == ["IN"]
    clock.advance(60)  # back within the repeat window: suppressed
    assert visit() == []
    clock.advance(300)
    assert visit() == ["OUT"]


def test_unknown_logged_once_per_visit_with_cooldown() -> None:
    decider = Decider(DecisionPolicy(3, 5, unknown_cooldown_s=60, visit_gap_s=5), "k1")
    clock = ManualClock(T0)
    logged = [decider.update(_vote(None, 0.3), clock.advance(0.1)).event for _ in range(100)]
    unknown = [e for e in logged if e is not None]
    assert len(unknown) == 1 and unknown[0].decision == "unknown"
    assert unknown[0].person_id is None and unknown[0].direction is None
    for _ in range(5):
        decider.update(None, clock.advance(2))
    assert all(decider.update(_vote(None), clock.advance(0.1)).event is None for _ in range(5))
    for _ in range(5):
        decider.update(None, clock.advance(20))
    assert any(decider.update(_vote(None), clock.advance(0.1)).event for _ in range(5))


def test_in_out_follow_the_local_day_across_midnight() -> None:
    new_york = timezone(timedelta(hours=-5))
    decider = Decider(DecisionPolicy(1, 1, repeat_window_s=60, visit_gap_s=1), "k1",
                      tz=new_york)
    # 22:00 and 23:50 local (03:00 and 04:50 UTC next day), then 00:10 local the next day.
    times = [datetime(2026, 3, 3, 3, 0, tzinfo=UTC), datetime(2026, 3, 3, 4, 50, tzinfo=UTC),
             datetime(2026, 3, 3, 5, 10, tzinfo=UTC)]
    directions = []
    for moment in times:
        event = decider.update(_vote(3), moment).event
        assert event is not None
        directions.append(event.direction)
        decider.update(None, moment + timedelta(seconds=1))
    assert directions == ["IN", "OUT", "IN"]


def test_history_seeds_repeat_window_and_direction() -> None:
    class History:
        def last_known(self, person_id: int, kiosk_id: str) -> datetime | None:
            return T0 - timedelta(minutes=2)

        def has_known_between(self, person_id: int, start: datetime, end: datetime) -> bool:
            return True

    decider = Decider(DecisionPolicy(1, 1, repeat_window_s=300), "k1", history=History())
    assert decider.update(_vote(4), T0).event is None  # logged 2 min ago, before a restart
    decider.update(None, T0 + timedelta(minutes=1))
    event = decider.update(_vote(4), T0 + timedelta(minutes=4)).event
    assert event is not None and event.direction == "OUT"


# -- PIN ---------------------------------------------------------------------------------------

def test_pin_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_pin("482913", n=2**10), hash_pin("482913", n=2**10)
    assert first.startswith("scrypt$1024$8$1$") and first != second
    assert verify_pin("482913", first) and not verify_pin("482914", first)
    with pytest.raises(PinError):
        hash_pin("12")
    with pytest.raises(PinError):
        verify_pin("2468", "scrypt$not$valid")


def test_five_wrong_tries_lock_for_the_lock_time() -> None:
    now = [100.0]
    gate = PinGate(hash_pin("731904", n=2**10), lock_s=60, clock=lambda: now[0],
                   cost=(2**10, 8, 1))
    results = [gate.attempt("0000") for _ in range(5)]
    assert [r.tries_left for r in results[:4]] == [4, 3, 2, 1]
    assert results[0].message() == "Wrong PIN. 4 tries left."
    assert results[3].message() == "Wrong PIN. 1 try left."
    assert results[4].locked and results[4].retry_in_s == 60
    now[0] += 30
    check = gate.attempt("731904")  # the right PIN is not even checked while locked
    assert check == PinCheck(False, True, 0, 30.0)
    assert "locked" in check.message()
    now[0] += 31
    assert gate.attempt("731904").ok
    assert gate.attempt("0000").tries_left == 4


# -- the loop: watchdog, back-off, dropping --------------------------------------------------

class ScriptedSource(FrameSource):
    """Live test source: delivers ``frames`` distinct frames, then hangs (or freezes)."""

    def __init__(self, frames: int, *, freeze: bool = False) -> None:
        super().__init__(SourceSpec("camera", "9"))
        self.frames, self.freeze, self.sent = frames, freeze, 0
        self.release = threading.Event()

    def open(self) -> None:
        self.sent = 0

    def read(self) -> np.ndarray:
        time.sleep(0.01)
        if self.sent >= self.frames:
            if not self.freeze:
                self.release.wait(5)  # a hung camera: read() does not return
                raise SourceError("gone")
            return np.zeros((8, 8, 3), np.uint8)
        self.sent += 1
        return np.full((8, 8, 3), self.sent % 250, np.uint8)

    def close(self) -> None:
        self.release.set()


class CountingProcessor:
    def __init__(self, delay: float = 0.0) -> None:
        self.count, self.delay = 0, delay

    def process(self, frame: np.ndarray) -> FrameResult:
        time.sleep(self.delay)
        self.count += 1
        return FrameResult(self.count, datetime.now(UTC), frame.shape[1], frame.shape[0])


@pytest.mark.parametrize("freeze", [False, True])
def test_watchdog_detects_a_stalled_source_and_reopens_it(freeze: bool) -> None:
    statuses: list[tuple[float, SourceStatus]] = []
    opened: list[ScriptedSource] = []

    def open_source() -> ScriptedSource:
        opened.append(ScriptedSource(5, freeze=freeze))
        return opened[-1]

    loop = KioskLoop(open_source, CountingProcessor(),
                     LoopHooks(status=lambda s: statuses.append((time.monotonic(), s))),
                     stale_after_s=0.3, backoff_start_s=0.05)
    thread = threading.Thread(target=loop.run)
    thread.start()
    deadline = time.monotonic() + 10
    while len(opened) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert len(opened) >= 3
    states = [s.state for _, s in statuses]
    assert states[:3] == ["opening", "live", "reconnecting"]
    live_at = next(t for t, s in statuses if s.state == "live")
    fault_at = next(t for t, s in statuses if s.state == "reconnecting")
    assert fault_at - live_at < 2.0  # noticed well within the 2 s budget (0.3 s here)
    reason = next(s.message for _, s in statuses if s.state == "reconnecting")
    assert ("frozen" if freeze else "stopped delivering") in reason


def test_live_frames_are_dropped_not_queued_when_processing_is_slow() -> None:
    processor = CountingProcessor(delay=0.05)
    loop = KioskLoop(lambda: ScriptedSource(60), processor, stale_after_s=0.5)
    thread = threading.Thread(target=loop.run)
    thread.start()
    time.sleep(1.2)
    loop.stop()
    thread.join(5)
    assert loop.summary.dropped > 0
    assert processor.count < 60


def test_unreadable_file_fails_without_retrying(tmp_path: Path) -> None:
    statuses: list[SourceStatus] = []
    loop = KioskLoop(lambda: make_source(str(tmp_path / "missing.avi")), CountingProcessor(),
                     LoopHooks(status=statuses.append))
    summary = loop.run()
    assert summary.error and "does not exist" in summary.error
    assert statuses[-1].state == "failed"


# -- headless end to end -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "demo.avi"
    write_demo_video(path, fps=4.0, size=(480, 360))
    return path


@pytest.fixture()
def data_dir(tmp_path: Path, test_embedder_env: tuple[Path, str]) -> Path:
    return make_data_dir(tmp_path, kiosk_name="door")


def test_headless_run_on_a_video_file_prints_events(
        data_dir: Path, demo_video: Path, capsys: pytest.CaptureFixture[str]) -> None:
    astronaut = Path(__file__).resolve().parents[1] / "resources" / "demo" / "astronaut.png"
    assert main(["--data-dir", str(data_dir), "enroll", "Eileen Collins",
                 str(astronaut)]) == EXIT_OK
    capsys.readouterr()
    code = main(["--data-dir", str(data_dir), "run", "--source", str(demo_video),
                 "--headless"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    events = [json.loads(line) for line in out.splitlines()]
    known = [e for e in events if e["decision"] == "known"]
    assert [(e["person"], e["direction"], e["kiosk_id"]) for e in known] == \
        [("Eileen Collins", "IN", "door")]
    assert known[0]["similarity"] >= TEST_THRESHOLD
    assert [e["decision"] for e in events] == ["known", "unknown"]
    assert "2 events (1 known, 1 unknown)" in err
    # The events are in the library, with face crops.
    assert main(["--data-dir", str(data_dir), "log"]) == EXIT_OK
    assert "2 events" in capsys.readouterr().out


def test_headless_run_needs_a_readable_source(data_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--data-dir", str(data_dir), "run", "--source", str(tmp_path / "x.avi"),
                 "--headless"])
    assert code == EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err
    assert main(["--data-dir", str(data_dir), "run", "--source", "demo"]) == EXIT_ERROR
    assert "--headless" in capsys.readouterr().err


def test_headless_demo_keeps_its_library_out_of_the_real_one(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FACEGUARD_DATA_DIR", str(data_dir))
    created: list[Path] = []
    import faceguard.kiosk.demo as demo_module

    real_mkdtemp = demo_module.tempfile.mkdtemp

    def spy(**kwargs: str) -> str:
        created.append(Path(real_mkdtemp(**kwargs)))
        return str(created[-1])

    monkeypatch.setattr(demo_module.tempfile, "mkdtemp", spy)
    assert main(["run", "--demo", "--headless", "--max-frames", "30"]) == EXIT_OK
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["person"], e["direction"], e["kiosk_id"]) for e in events] == \
        [("Eileen Collins", "IN", "demo")]
    assert "30 frames from built-in demo" in err
    assert created and not created[0].exists()  # the throw-away folder is gone
    assert not (data_dir / "faceguard.db").exists()  # the real library was never opened
