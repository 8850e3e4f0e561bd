"""Tracking, once-per-visit recognition and the idle gate, on the demo video with the real
MTCNN, the product embedder and a real library (no mocks)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.clock import ManualClock
from faceguard.core.context import AppContext
from faceguard.core.enrolment import Enroller
from faceguard.kiosk.demo import AttackDemoSource
from faceguard.kiosk.demo_source import DEMO_KNOWN_PHOTO, DEMO_STRANGER_PHOTO, DemoShot, DemoSource
from faceguard.kiosk.pipeline import FrameResult, pipeline_for
from faceguard.kiosk.tracking import (
    IDLE_DETECT_FRAMES,
    TRACK_GAP_FRAMES,
    FaceTracks,
    MotionGate,
)
from faceguard.paths import resources_dir
from faceguard.settings import Settings, save_settings
from faceguard.vision.mtcnn import MtcnnDetector, box_iou

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FPS = 10.0


def demo_frames(script: tuple[DemoShot, ...] | None = None, *, attack: bool = False,
                fps: float = FPS, first: int = 0, last: int | None = None) -> list[np.ndarray]:
    source: DemoSource
    if attack:
        source = AttackDemoSource(loop=False, fps=fps)
    elif script is not None:
        source = DemoSource(loop=False, fps=fps, script=script)
    else:
        source = DemoSource(loop=False, fps=fps)
    source.open()
    return [source.render(index) for index in range(first, last or source.cycle_frames)]


@pytest.fixture()
def kiosk(tmp_path: Path) -> Iterator[object]:
    """Builds an AppContext on the product embedder with Eileen Collins enrolled."""
    contexts: list[AppContext] = []

    def make(**values: object) -> AppContext:
        folder = tmp_path / f"data{len(contexts)}"
        save_settings(Settings(kiosk_name="door", **values), folder)  # type: ignore[arg-type]
        ctx = AppContext(folder)
        contexts.append(ctx)
        person, _ = Enroller(ctx.engine, ctx.library, ctx.matcher, ctx.min_face,
                             actor="test").enroll_files(
            "Eileen Collins", [resources_dir() / "demo" / DEMO_KNOWN_PHOTO])
        assert person is not None
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


def play(ctx: AppContext, frames: list[np.ndarray], fps: float = FPS) -> list[FrameResult]:
    clock = ManualClock(T0)
    pipeline = pipeline_for(ctx, clock=clock)
    try:
        return [pipeline.process(frame, clock.advance(1.0 / fps)) for frame in frames]
    finally:
        pipeline.close()


def decisions(results: list[FrameResult]) -> list[tuple[int, str, str | None, str | None]]:
    return [(r.index, r.event.decision, r.event.person_name, r.event.direction)
            for r in results if r.event is not None]


def test_following_a_face_keeps_box_and_landmarks_of_a_full_detection() -> None:
    detector = MtcnnDetector(min_face=60)
    frames = demo_frames(fps=15.0, first=20, last=50)  # the enrolled person moving, turning, lit
    previous = detector.detect(frames[0])[0]
    for frame in frames[1:]:
        full = detector.detect(frame)[0]
        followed = detector.follow(frame, [previous.box])[0]
        assert followed is not None
        eyes = float(np.linalg.norm(full.landmarks[0] - full.landmarks[1]))
        error = np.linalg.norm(followed.landmarks - full.landmarks, axis=1).mean() / eyes
        assert box_iou(followed.box, full.box) > 0.75 and error < 0.1
        previous = followed
    assert detector.follow(np.full((480, 640, 3), 80, np.uint8), [previous.box]) == [None]
    # a face that moved a quarter of its size since the last frame is still found
    full = detector.detect(frames[-1])[0]
    side = float(full.box[2] - full.box[0])
    for dx, dy in ((0.25, 0.0), (0.0, -0.25), (-0.2, 0.2)):
        moved = full.box + np.array([dx, dy, dx, dy], np.float32) * side
        again = detector.follow(frames[-1], [moved])[0]
        assert again is not None and box_iou(again.box, full.box) > 0.75


def test_kiosk_decides_the_same_on_the_demo_with_tracking_on_and_off(kiosk) -> None:  # type: ignore[no-untyped-def]
    frames = demo_frames(attack=True)  # the person, the stranger, a screen replay of her
    runs = {}
    for tracking in ("off", "on"):
        results = play(kiosk(tracking=tracking, liveness_mode="enforce"), frames)
        runs[tracking] = results
    assert [d[1:] for d in decisions(runs["on"])] == \
        [("known", "Eileen Collins", "IN"), ("unknown", None, None), ("attack", None, None)]
    on, off = decisions(runs["on"]), decisions(runs["off"])
    assert [d[1:] for d in on] == [d[1:] for d in off]
    doors = {tracking: [(r.event.door, r.event.door_reason) for r in results if r.event]
             for tracking, results in runs.items()}
    assert doors["on"] == doors["off"]  # the door did the same for each visit
    assert all(abs(a[0] - b[0]) <= 2 for a, b in zip(on, off, strict=True)), (on, off)
    searches = Counter(r.search for r in runs["on"])
    assert searches["followed"] > 3 * searches["full"], searches
    assert Counter(r.search for r in runs["off"])["followed"] == 0


def swap_script() -> tuple[DemoShot, ...]:
    """She stands still; then, in one frame, the stranger stands exactly where she stood."""
    still = {"scale": (1.0, 1.0), "centre_x": (0.5, 0.5), "centre_y": (0.42, 0.42)}
    return (DemoShot(None, 0.5), DemoShot(DEMO_KNOWN_PHOTO, 4.0, **still),  # type: ignore[arg-type]
            DemoShot(DEMO_STRANGER_PHOTO, 4.0, **still))  # type: ignore[arg-type]


@pytest.mark.parametrize("recheck_s", [1.0, 60.0])
def test_a_decided_face_is_embedded_once_a_second_and_a_swap_is_caught(
        kiosk, recheck_s: float) -> None:  # type: ignore[no-untyped-def]
    frames = demo_frames(swap_script())
    results = play(kiosk(liveness_mode="off", recheck_s=recheck_s), frames)
    her = results[5:45]  # her 4 s at 10 frames/s
    assert all(r.faces and r.faces[0].name == "Eileen Collins" for r in her[3:])
    assert len({r.faces[0].track_id for r in results[5:] if r.faces}) == \
        (2 if recheck_s == 1.0 else 1)  # the swap starts a new visit only when re-checked
    embedded = sum(r.embedded for r in her)
    if recheck_s == 1.0:
        # 3 frames to decide, then one a second: far fewer than her 40 frames
        assert 4 <= embedded <= 8, embedded
        assert [d[1:] for d in decisions(results)] == \
            [("known", "Eileen Collins", "IN"), ("unknown", None, None)]
        stranger = [r for r in results[45:] if r.faces]
        swapped_at = next(i for i, r in enumerate(stranger) if r.faces[0].name is None)
        assert swapped_at <= FPS * recheck_s + 1  # noticed within about a second
    else:
        # without a re-check the tracker keeps her name on the stranger: the check matters
        assert embedded <= 4
        assert [d[1:] for d in decisions(results)] == [("known", "Eileen Collins", "IN")]


def test_an_empty_still_scene_is_not_searched_and_a_newcomer_is(kiosk) -> None:  # type: ignore[no-untyped-def]
    empty = (DemoShot(None, 4.0), DemoShot(DEMO_KNOWN_PHOTO, 1.0))
    frames = demo_frames(empty)
    results = play(kiosk(liveness_mode="off"), frames)
    idle = [r.search for r in results[:40]]
    # the first frame and one every IDLE_DETECT_FRAMES are searched; sensor noise is no motion
    assert idle.count("full") <= 1 + 40 // IDLE_DETECT_FRAMES and idle.count("idle") >= 37
    assert results[40].search == "full" and results[40].faces  # she walks in: found at once
    always = play(kiosk(liveness_mode="off", motion_threshold=0.0), frames[:10])
    assert {r.search for r in always} == {"full"}  # gate off: every empty frame is searched


def test_motion_gate_and_track_association_on_synthetic_frames() -> None:
    rng = np.random.default_rng(3)
    background = np.full((480, 640, 3), 70, np.uint8)

    def noisy(image: np.ndarray) -> np.ndarray:
        return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)

    gate = MotionGate(0.005)
    assert gate.should_examine(noisy(background))  # nothing examined yet
    gate.examined(background)
    assert not any(gate.should_examine(noisy(background)) for _ in range(10))
    moved = background.copy()
    moved[200:260, 300:350] = 200  # a 50x60 px change: about 1% of the picture
    assert gate.should_examine(noisy(moved))

    detector = MtcnnDetector(min_face=60)
    frames = demo_frames(fps=15.0, first=30, last=33)
    tracks = FaceTracks()
    first = tracks.associate(detector.detect(frames[0]))
    second = tracks.associate(detector.detect(frames[1]))
    assert len(first) == 1 and second[0] is first[0]  # the same face keeps its track
    assert tracks.associate([]) == [] and tracks.tracks == [] and tracks.missing == first
    third = tracks.associate(detector.detect(frames[2]))
    assert third[0] is first[0] and tracks.missing == []  # taken up again after one frame
    for _ in range(TRACK_GAP_FRAMES + 1):
        tracks.associate([])
    assert tracks.missing == []
    fourth = tracks.associate(detector.detect(frames[2]))
    assert fourth[0].track_id != first[0].track_id  # after a longer gap it is a new track


def motion_blurred(frame: np.ndarray, length: int = 45) -> np.ndarray:
    """The frame as a fast sideways move smears it: the detector finds no face in it."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    return cv2.filter2D(frame, -1, kernel)


@pytest.mark.parametrize("tracking", ["on", "off"])
def test_a_face_missed_for_a_few_frames_keeps_its_track_and_its_visit(
        kiosk, tracking: str) -> None:  # type: ignore[no-untyped-def]
    frames = demo_frames()  # she walks in at frame 10 and stays 6 s
    short = list(frames)
    short[30:32] = [motion_blurred(frame) for frame in frames[30:32]]
    results = play(kiosk(tracking=tracking, liveness_mode="off"), short)
    assert not results[30].faces and not results[31].faces  # two frames the detector misses
    her = [r for r in results[10:70] if r.faces]
    assert len({r.faces[0].track_id for r in her}) == 1  # one track through the gap
    assert all(r.faces[0].name == "Eileen Collins" for r in her[3:])
    # taken up decided: at most its once-a-second re-check is embedded (a new track would be
    # embedded on each frame until its votes agree, 3 at least)
    assert sum(r.embedded for r in results[32:36]) <= 1
    assert [d[1:] for d in decisions(results)] == \
        [("known", "Eileen Collins", "IN"), ("unknown", None, None)]
    # A gap longer than TRACK_GAP_FRAMES ends the track: the face comes back as a new track,
    # and the decider still counts one visit.
    long = list(frames)
    gap = range(30, 31 + TRACK_GAP_FRAMES)
    long[gap.start:gap.stop] = [motion_blurred(frames[i]) for i in gap]
    results = play(kiosk(tracking=tracking, liveness_mode="off"), long)
    assert not any(results[i].faces for i in gap)
    assert len({r.faces[0].track_id for r in results[10:70] if r.faces}) == 2
    assert [d[1:] for d in decisions(results)] == \
        [("known", "Eileen Collins", "IN"), ("unknown", None, None)]


def test_the_track_gap_setting_decides_how_long_a_hidden_face_keeps_its_track(
        kiosk) -> None:  # type: ignore[no-untyped-def]
    frames = demo_frames()
    hidden = list(frames)
    gap = range(30, 31 + TRACK_GAP_FRAMES)  # one frame longer than the default allows
    hidden[gap.start:gap.stop] = [motion_blurred(frames[i]) for i in gap]

    def tracks_of_her(**values: object) -> int:
        results = play(kiosk(tracking="off", liveness_mode="off", **values), hidden)
        assert not any(results[i].faces for i in gap)
        return len({r.faces[0].track_id for r in results[10:70] if r.faces})

    assert tracks_of_her() == 2  # the default (4 frames): the track ended in the gap
    assert tracks_of_her(track_gap_frames=TRACK_GAP_FRAMES + 1) == 1  # kept through it


def test_the_visit_gap_and_unknown_cooldown_settings_decide_when_a_stranger_is_logged_again(
        kiosk) -> None:  # type: ignore[no-untyped-def]
    frames = demo_frames()  # the stranger is in view from 8.5 s to 14.5 s (frames 85-145)
    away = list(frames)
    away[105:125] = [frames[5]] * 20  # she steps out of view for 2 s, then comes back

    def unknown_events(**values: object) -> list[int]:
        results = play(kiosk(liveness_mode="off", **values), away)
        return [index for index, decision, _, _ in decisions(results) if decision == "unknown"]

    assert len(unknown_events()) == 1  # defaults: a 10 s visit gap, 60 s between unknowns
    again = unknown_events(visit_gap_s=1.0, unknown_cooldown_s=0)
    assert len(again) == 2 and again[1] > 125  # a new visit after the 2 s away
    assert len(unknown_events(visit_gap_s=1.0)) == 1  # a new visit, but within the cooldown
