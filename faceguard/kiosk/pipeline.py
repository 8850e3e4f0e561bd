"""One frame through the kiosk: detect, match every face, vote on the largest, maybe log.

The largest face of at least ``min_face`` pixels is the one that counts; other faces are
matched and drawn but never logged, and faces below the minimum size are drawn as "too small"
without being embedded. Events go to the library with a small JPEG crop of the aligned face.

With liveness on (``observe`` or ``enforce``), the counted face is scored by the
:class:`~faceguard.vision.liveness.LivenessChecker` only when the decider says the frame
feeds an undecided visit (:meth:`Decider.liveness_due`); other faces are never scored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from faceguard.clock import Clock, utc_now
from faceguard.core.context import AppContext
from faceguard.core.gate import Gate
from faceguard.core.recognition import Recogniser
from faceguard.errors import FaceGuardError
from faceguard.kiosk.decisions import (
    UNKNOWN,
    Candidate,
    Decider,
    DecisionPolicy,
    KioskEvent,
    LivenessAlert,
    LivenessPolicy,
    Outcome,
    Verdict,
)
from faceguard.library.backup import DailyMaintenance
from faceguard.library.database import FaceLibrary
from faceguard.library.matcher import Matcher
from faceguard.vision.engine import FaceEngine
from faceguard.vision.image_io import encode_jpeg
from faceguard.vision.liveness import LivenessChecker, checker_for_mode
from faceguard.vision.mtcnn import Face

log = logging.getLogger(__name__)

PROCESS_MAX_SIDE = 960  # larger frames are searched for faces on a downscaled copy
MAX_FACES = 8  # faces matched and drawn per frame (largest first)
EVENT_CROP_QUALITY = 85


@dataclass(frozen=True)
class FaceInfo:
    """One face as drawn over the video (frame pixel coordinates)."""

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    size: float
    person_id: int | None = None
    name: str | None = None
    similarity: float | None = None
    counted: bool = False  # the largest face, the one the kiosk decides on
    too_small: bool = False
    liveness: float | None = None  # the counted face's newest live probability (None: none)

    @property
    def known(self) -> bool:
        return self.person_id is not None


@dataclass(frozen=True)
class FrameResult:
    """Everything the window or a script needs about one processed frame."""

    index: int
    timestamp: datetime
    width: int
    height: int
    faces: tuple[FaceInfo, ...] = ()
    verdict: Verdict | None = None
    event: KioskEvent | None = None
    previous: datetime | None = None  # earlier event time when a repeat was suppressed
    previous_direction: str | None = None
    latency_ms: float = 0.0
    error: str | None = field(default=None)
    liveness: str | None = None  # the visit's liveness state: live / attack / pending / None
    liveness_ms: float = 0.0  # time spent scoring liveness on this frame (0: not scored)
    alert: LivenessAlert | None = None


class LibraryHistory:
    """The decider's view of past events, read from the face library."""

    def __init__(self, library: FaceLibrary) -> None:
        self.library = library

    def last_known(self, person_id: int, kiosk_id: str) -> datetime | None:
        events = self.library.query_events(person=person_id, decision="known", limit=1,
                                           kiosk_id=kiosk_id, newest_first=True)
        return events[0].timestamp if events else None

    def has_known_between(self, person_id: int, start: datetime, end: datetime) -> bool:
        return self.library.count_events(start, end, person_id, "known") > 0


class KioskPipeline:
    """Frame in, :class:`FrameResult` out; logs the decider's events to the library."""

    def __init__(self, engine: FaceEngine, matcher: Matcher, library: FaceLibrary,
                 decider: Decider, *, min_face: int, clock: Clock = utc_now,
                 recogniser: Recogniser | None = None,
                 process_max_side: int = PROCESS_MAX_SIDE,
                 liveness: LivenessChecker | None = None) -> None:
        self.engine = engine
        self.matcher = matcher
        self.library = library
        self.decider = decider
        self.min_face = int(min_face)
        self.clock = clock
        self.recogniser = recogniser or Recogniser(engine, matcher, library)
        self.process_max_side = process_max_side
        self.frames = 0
        self.liveness = liveness
        if liveness is None and decider.policy.liveness.active:
            raise ValueError("liveness is on in the policy but no LivenessChecker was given")
        self.on_logged: Callable[[KioskEvent], None] | None = None
        self.on_alert: Callable[[LivenessAlert], None] | None = None  # the GUI shows it
        self.housekeeping: Callable[[], object] | None = None  # run now and then by the loop
        self.gate: Gate | None = None  # access rules and the door: opens for allowed visits

    @property
    def kiosk_id(self) -> str:
        return self.decider.kiosk_id

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Faces of a frame, largest first, searched on a downscaled copy of big frames."""
        detect_min = min(self.engine.min_face, self.min_face)
        return self.engine.detect(frame, detect_min, max_side=self.process_max_side)

    def process(self, frame: np.ndarray, now: datetime | None = None) -> FrameResult:
        """Run one RGB frame through detection, matching and the decider."""
        started = time.perf_counter()
        now = now or self.clock()
        index = self.frames
        self.frames += 1
        faces = self.detect(frame)[:MAX_FACES]
        big = [f for f in faces if f.size >= self.min_face]
        observations = self.engine.observe(frame, big) if big else []
        matches = []
        if observations:
            vectors = np.stack([o.embedding for o in observations if o.embedding is not None])
            matches = self.matcher.search(vectors)
        infos: list[FaceInfo] = []
        candidate: Candidate | None = None
        liveness_ms = 0.0
        for position, (observation, match) in enumerate(zip(observations, matches,
                                                            strict=True)):
            name = None
            if match.person_id is not None:
                name = self.recogniser.person_name(match.person_id)
            counted = position == 0
            live: float | None = None
            if counted:
                label = UNKNOWN if match.person_id is None else match.person_id
                scored = self.liveness is not None and self.decider.liveness_due(label, now)
                if scored:
                    assert self.liveness is not None
                    tick = time.perf_counter()
                    live = self.liveness.score(frame, observation.face.box)
                    liveness_ms = (time.perf_counter() - tick) * 1000.0
                candidate = Candidate(match.person_id, float(match.similarity), name,
                                      observation.crop, live, scored)
                if not scored and self.liveness is not None:
                    live = self.decider.last_liveness(label, now)
            infos.append(_face_info(observation.face, match.person_id, name,
                                    float(match.similarity), counted=counted, liveness=live))
        infos += [_face_info(f, too_small=True) for f in faces if f.size < self.min_face]
        outcome = self.decider.update(candidate, now)
        event, error = self._log(outcome)
        if outcome.alert is not None:
            self._alert(outcome.alert)
        latency = (time.perf_counter() - started) * 1000.0
        return FrameResult(index, now, int(frame.shape[1]), int(frame.shape[0]), tuple(infos),
                           outcome.verdict, event, outcome.previous,
                           outcome.previous_direction, latency, error, outcome.liveness,
                           liveness_ms, outcome.alert)

    def _alert(self, alert: LivenessAlert) -> None:
        """Repeated suspected attacks: a logged warning, an audit entry, the GUI's hook."""
        log.warning("liveness alert: %s", alert.message())
        try:
            self.library.audit("kiosk", "liveness_alert",
                               {"kiosk_id": alert.kiosk_id, "attempts": alert.attempts,
                                "window_s": alert.window_s, "matched_to": list(alert.claimed)})
        except FaceGuardError as error:
            log.warning("liveness alert not audited: %s", error)
        if self.on_alert is not None:
            self.on_alert(alert)

    def _log(self, outcome: Outcome) -> tuple[KioskEvent | None, str | None]:
        event = outcome.event
        if event is None:
            return None, None
        crop = None
        if event.crop is not None:
            try:
                crop = encode_jpeg(event.crop, EVENT_CROP_QUALITY)
            except FaceGuardError:
                crop = None
        try:
            stored = self.library.add_event(event.timestamp, event.kiosk_id, event.person_id,
                                            event.similarity, event.decision, crop,
                                            event.liveness)
        except FaceGuardError as error:
            log.warning("event not logged: %s", error)
            return None, f"event not logged: {error}"
        logged = self._at_door(replace(event, event_id=stored.id,
                                       person_name=stored.person_name or event.person_name))
        if logged.attack:
            score = "unsure" if logged.liveness is None else f"{logged.liveness:.3f}"
            log.warning("presentation attack suspected at kiosk %s (matched to %s, liveness "
                        "%s); event %s", logged.kiosk_id, logged.claimed_name or "?", score,
                        logged.event_id)
        if self.on_logged is not None:
            self.on_logged(logged)
        return logged, None

    def _at_door(self, event: KioskEvent) -> KioskEvent:
        """A recognised, live visit asks the gate: unlock, or "Access denied" with the reason.
        Unknown faces and suspected attacks never reach it: the door stays shut."""
        if self.gate is None or event.person_id is None or event.attack:
            return event
        try:
            decision, result = self.gate.at_door(
                event.person_id, event.person_name or "", event.timestamp,
                direction=event.direction, event_id=f"{self.kiosk_id}-{event.event_id}")
        except FaceGuardError as error:
            log.warning("door not operated for event %s: %s", event.event_id, error)
            return replace(event, door_reason=f"door fault: {error}")
        if not decision.allowed:
            return replace(event, door="denied", door_reason=decision.reason)
        if not (result.done or result.queued):
            log.warning("door did not open for event %s: %s", event.event_id, result.message)
            return replace(event, door_reason=f"door fault: {result.message}")
        return replace(event, door="unlocked", door_reason=decision.reason)

    def close(self) -> None:
        """Release the door (a local relay is de-energised)."""
        if self.gate is not None:
            self.gate.close()

    def set_policy(self, policy: DecisionPolicy) -> None:
        """New decision numbers (the settings dialog); loads the liveness networks when
        liveness is switched on (a ModelError in enforce mode, see :func:`load_liveness`)."""
        live = policy.liveness
        if live.active and self.liveness is None:
            self.liveness, live = load_liveness(live)
        self.decider.set_policy(replace(policy, liveness=live))

    def person_removed(self, person_id: int) -> None:
        """Forget cached names and decisions about someone removed or renamed."""
        self.recogniser.forget_names()
        self.decider.forget_person(person_id)


def _face_info(face: Face, person_id: int | None = None, name: str | None = None,
               similarity: float | None = None, *, counted: bool = False,
               too_small: bool = False, liveness: float | None = None) -> FaceInfo:
    box = tuple(float(v) for v in face.box)
    marks = tuple((float(x), float(y)) for x, y in face.landmarks)
    return FaceInfo((box[0], box[1], box[2], box[3]), marks, float(face.size), person_id, name,
                    similarity, counted, too_small, liveness)


def load_liveness(policy: LivenessPolicy) -> tuple[LivenessChecker | None, LivenessPolicy]:
    """The liveness networks for a policy, and the policy that can actually run.

    Off: nothing is loaded. A missing or damaged model is a start-up error in enforce mode
    (:class:`ModelError` saying so) and a logged warning in observe mode, which then runs
    without liveness.
    """
    checker = checker_for_mode(policy.mode)
    if checker is None and policy.active:
        return None, replace(policy, mode="off")
    return checker, policy


def pipeline_for(ctx: AppContext, *, clock: Clock = utc_now) -> KioskPipeline:
    """The kiosk pipeline over a context's engine, matcher, library and settings."""
    settings = ctx.settings
    policy = DecisionPolicy.from_settings(settings)
    checker, live_policy = load_liveness(policy.liveness)
    decider = Decider(replace(policy, liveness=live_policy), settings.kiosk_name,
                      history=LibraryHistory(ctx.library))
    pipeline = KioskPipeline(ctx.engine, ctx.matcher, ctx.library, decider,
                             min_face=ctx.min_face, clock=clock, liveness=checker)
    ctx.hold_kiosk_lock()  # no restore while the kiosk runs
    pipeline.housekeeping = DailyMaintenance(ctx.library, ctx.settings.backups_keep)
    pipeline.gate = Gate(ctx.library, settings)
    return pipeline
