"""One frame through the kiosk: detect, match every face, vote on the largest, maybe log.

The largest face of at least ``min_face`` pixels is the one that counts; other faces are
matched and drawn but never logged, and faces below the minimum size are drawn as "too small"
without being embedded. Events go to the library with a small JPEG crop of the aligned face.

With liveness on (``observe`` or ``enforce``), the counted face is scored by the
:class:`~faceguard.vision.liveness.LivenessChecker` only when the decider says the frame
feeds an undecided visit (:meth:`Decider.liveness_due`); other faces are never scored.

Faces are followed from frame to frame (:mod:`faceguard.kiosk.tracking`): each track fuses the
embeddings of its visit's frames before they are matched, is embedded only until it is
decided (then once a second, to notice a swap of people), and with tracking on is found again
by the detector's later stages instead of a full search. An empty, still scene is not searched.
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
from faceguard.kiosk.decisions import (
    UNKNOWN,
    Candidate,
    Decider,
    DecisionPolicy,
    KioskEvent,
    Outcome,
    Verdict,
)
from faceguard.kiosk.event_log import audit_alert, store_event
from faceguard.kiosk.in_out import LibraryHistory
from faceguard.kiosk.liveness_gate import LivenessAlert, load_liveness
from faceguard.kiosk.tracking import (
    FaceTracks,
    MotionGate,
    Track,
    TrackingPolicy,
    drop_duplicates,
)
from faceguard.library.backup import DailyMaintenance
from faceguard.library.database import FaceLibrary
from faceguard.library.matcher import Matcher
from faceguard.settings import Settings
from faceguard.vision.engine import FaceEngine
from faceguard.vision.liveness import LivenessChecker
from faceguard.vision.mtcnn import Face
from faceguard.vision.selection import rank_faces

log = logging.getLogger(__name__)

PROCESS_MAX_SIDE = 960  # larger frames are searched for faces on a downscaled copy
MAX_FACES = 8  # faces matched and drawn per frame (largest first)


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
    track_id: int | None = None  # the face's track (one per visit)

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
    search: str = "full"  # how faces were found: full (detector), followed (tracking), idle
    embedded: int = 0  # faces embedded on this frame


class KioskPipeline:
    """Frame in, :class:`FrameResult` out; logs the decider's events to the library."""

    def __init__(self, engine: FaceEngine, matcher: Matcher, library: FaceLibrary,
                 decider: Decider, *, min_face: int, clock: Clock = utc_now,
                 recogniser: Recogniser | None = None,
                 process_max_side: int = PROCESS_MAX_SIDE,
                 liveness: LivenessChecker | None = None,
                 tracking: TrackingPolicy | None = None) -> None:
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
        self.tracking = tracking or TrackingPolicy(votes_required=decider.policy.votes_required,
                                                   votes_window=decider.policy.votes_window)
        self.tracks = FaceTracks(self.tracking.votes_window, self.tracking.gap_frames)
        self.motion = MotionGate(self.tracking.motion_threshold)
        self._since_search = 0  # frames followed since the last full search

    @property
    def kiosk_id(self) -> str:
        return self.decider.kiosk_id

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Faces of a frame, largest first, searched on a downscaled copy of big frames."""
        detect_min = min(self.engine.min_face, self.min_face)
        return self.recogniser.find_faces(frame, detect_min, max_side=self.process_max_side)

    def find_faces(self, frame: np.ndarray) -> tuple[list[Face], str]:
        """This frame's faces in the order they count, and how they were found: ``followed``
        (tracks found again near their boxes), ``full`` (the detector) or ``idle`` (an empty,
        still scene: not searched). While a track is missing, every frame gets a full
        detection, which takes it up again when its face is back."""
        tracks = self.tracks.tracks
        policy = self.tracking
        lost = bool(self.tracks.missing)  # a face was lost: look for it everywhere
        if tracks and policy.tracking and not lost:
            boxes = [t.face.box for t in tracks]
            # The periodic search for newcomers is skipped while nothing outside the
            # followed faces has changed (still forced every IDLE_DETECT_FRAMES).
            due = self._since_search >= policy.detect_interval - 1 and \
                self.motion.should_examine(frame, ignore=boxes)
            if not due:
                followed = self.engine.follow(frame, [t.face for t in tracks],
                                              self.process_max_side)
                if all(face is not None for face in followed):
                    self._since_search += 1
                    faces = drop_duplicates([face for face in followed if face is not None])
                    return rank_faces(faces, int(frame.shape[1]), int(frame.shape[0])), \
                        "followed"
        elif not tracks and not lost and not self.motion.should_examine(frame):
            return [], "idle"
        self._since_search = 0
        faces = self.detect(frame)
        self.motion.examined(frame, [face.box for face in faces])
        return faces, "full"

    def process(self, frame: np.ndarray, now: datetime | None = None) -> FrameResult:
        """Run one RGB frame through detection (or tracking), matching and the decider."""
        started = time.perf_counter()
        now = now or self.clock()
        index = self.frames
        self.frames += 1
        faces, search = self.find_faces(frame)
        faces = faces[:MAX_FACES]
        tracks = self.tracks.associate(faces)
        big = [(face, track) for face, track in zip(faces, tracks, strict=True)
               if face.size >= self.min_face]
        embedded = self._identify(frame, big, now)
        infos: list[FaceInfo] = []
        candidate: Candidate | None = None
        counted_track: Track | None = None
        liveness_ms = 0.0
        for position, (face, track) in enumerate(big):
            counted = position == 0
            live: float | None = None
            if counted:
                counted_track = track
                label = track.label
                scored = self.liveness is not None and self.decider.liveness_due(label, now)
                if scored:
                    assert self.liveness is not None
                    tick = time.perf_counter()
                    live = self.liveness.score(frame, face.box)
                    liveness_ms = (time.perf_counter() - tick) * 1000.0
                candidate = Candidate(track.person_id, track.similarity, track.name,
                                      track.crop, live, scored)
                if not scored and self.liveness is not None:
                    live = self.decider.last_liveness(label, now)
            infos.append(_face_info(face, track.person_id, track.name, track.similarity,
                                    counted=counted, liveness=live, track_id=track.track_id))
        infos += [_face_info(f, too_small=True, track_id=t.track_id)
                  for f, t in zip(faces, tracks, strict=True) if f.size < self.min_face]
        outcome = self.decider.update(candidate, now)
        self._settle([track for _, track in big], counted_track, outcome)
        event, error = self._log(outcome)
        if outcome.alert is not None:
            self._alert(outcome.alert)
        latency = (time.perf_counter() - started) * 1000.0
        return FrameResult(index, now, int(frame.shape[1]), int(frame.shape[0]), tuple(infos),
                           outcome.verdict, event, outcome.previous,
                           outcome.previous_direction, latency, error, outcome.liveness,
                           liveness_ms, outcome.alert, search, embedded)

    def _identify(self, frame: np.ndarray, big: list[tuple[Face, Track]],
                  now: datetime) -> int:
        """Embed the faces whose tracks need it (undecided, or due for a re-check) in one
        batch and match them: an undecided track's fused embedding, a decided one's single
        frame. A re-check naming someone else restarts the track as a new visit. Returns how
        many faces were embedded."""
        due = [(face, track) for face, track in big
               if track.embedding_due(now, self.tracking.recheck_s)]
        if not due:
            return 0
        tracks = [track for _, track in due]

        def query(index: int, single: np.ndarray) -> np.ndarray:
            track = tracks[index]
            return single if track.decided else track.fuse(single)

        found = self.recogniser.identify(frame, [face for face, _ in due], query=query)
        for track, identity in zip(tracks, found, strict=True):
            track.checked_at = now
            track.crop = identity.observation.crop
            match = identity.match
            if track.decided:
                label = UNKNOWN if match.person_id is None else match.person_id
                if label == track.label:
                    continue  # still the same person: the decision stands
                log.info("track %d: re-check found someone else; a new visit",
                         track.track_id)
                track.restart(self.tracks.new_id())
                track.fuse(identity.embedding)
            track.identify(match.person_id, float(match.similarity), identity.person)
        return len(due)

    def _settle(self, tracks: list[Track], counted: Track | None, outcome: Outcome) -> None:
        """Mark tracks decided: the counted one when the decider's verdict names it (and its
        liveness is not pending), the others when their own votes agree."""
        required = self.decider.policy.votes_required
        for track in tracks:
            if track.decided or not track.matched or track.agreeing_votes() < required:
                continue
            if track is counted:
                verdict = outcome.verdict
                if verdict is None or outcome.liveness == "pending":
                    continue
                if (UNKNOWN if verdict.person_id is None else verdict.person_id) != track.label:
                    continue
            track.decided = True

    def _alert(self, alert: LivenessAlert) -> None:
        """Repeated suspected attacks: a logged warning, an audit entry, the GUI's hook."""
        audit_alert(self.library, alert)
        if self.on_alert is not None:
            self.on_alert(alert)

    def _log(self, outcome: Outcome) -> tuple[KioskEvent | None, str | None]:
        """The outcome's event stored and carried out at the door (see
        :func:`~faceguard.kiosk.event_log.store_event`), then handed to ``on_logged``."""
        if outcome.event is None:
            return None, None
        logged, error = store_event(self.library, self.gate, outcome.event)
        if logged is not None and self.on_logged is not None:
            self.on_logged(logged)
        return logged, error

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
        self.tracks.clear()  # faces in view are judged again under the new numbers

    def apply_settings(self, settings: Settings) -> None:
        """Saved settings in force at once (the window's settings dialog): the kiosk's name,
        the tracking and the decision numbers (a ModelError as :meth:`set_policy`)."""
        self.decider.kiosk_id = settings.kiosk_name
        self.tracking = TrackingPolicy.from_settings(settings)
        self.tracks.votes_window = self.tracking.votes_window
        self.tracks.gap_frames = self.tracking.gap_frames
        self.motion.threshold = self.tracking.motion_threshold
        self.set_policy(DecisionPolicy.from_settings(settings))

    def person_removed(self, person_id: int) -> None:
        """Forget cached names and decisions about someone removed or renamed."""
        self.recogniser.forget_names()
        self.decider.forget_person(person_id)
        self.tracks.forget_person(person_id)


def _face_info(face: Face, person_id: int | None = None, name: str | None = None,
               similarity: float | None = None, *, counted: bool = False,
               too_small: bool = False, liveness: float | None = None,
               track_id: int | None = None) -> FaceInfo:
    box = tuple(float(v) for v in face.box)
    marks = tuple((float(x), float(y)) for x, y in face.landmarks)
    return FaceInfo((box[0], box[1], box[2], box[3]), marks, float(face.size), person_id, name,
                    similarity, counted, too_small, liveness, track_id)


def pipeline_for(ctx: AppContext, *, clock: Clock = utc_now) -> KioskPipeline:
    """The kiosk pipeline over a context's engine, matcher, library and settings."""
    settings = ctx.settings
    policy = DecisionPolicy.from_settings(settings)
    checker, live_policy = load_liveness(policy.liveness)
    decider = Decider(replace(policy, liveness=live_policy), settings.kiosk_name,
                      history=LibraryHistory(ctx.library))
    pipeline = KioskPipeline(ctx.engine, ctx.matcher, ctx.library, decider,
                             min_face=ctx.min_face, clock=clock, liveness=checker,
                             tracking=TrackingPolicy.from_settings(settings))
    ctx.hold_kiosk_lock()  # no restore while the kiosk runs
    pipeline.housekeeping = DailyMaintenance(ctx.library, ctx.settings.backups_keep)
    pipeline.gate = Gate(ctx.library, settings)
    return pipeline
