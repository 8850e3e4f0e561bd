"""The kiosk's decisions: who is standing in front of it, and when that becomes a logged event.

Voting. Each frame contributes one vote: the largest face's match (a person, or "unknown"), or
no vote when no face of the minimum size is in view. A verdict needs ``votes_required`` of the
last ``votes_window`` frames to agree and the current frame to have a face. The defaults, 3 of
5, come from ``Settings``: at the 8-15 frames per second the kiosk runs at, 5 frames are about
half a second, so a person is accepted after about 0.3 s of steady view. If single frames were
wrong independently with probability p, a wrong verdict would need 3 wrong frames out of 5:
about 10 p^3 (p = 1e-3 per frame gives 1e-8), while a person recognised in 90 % of frames is
accepted within a window 99 % of the time. Requiring all 5 would let one blurred frame in
motion delay an entry; a majority (3) keeps single-frame flukes out.

Visits. A person is logged once per visit: not again while they stay in view (a verdict on
them less than ``visit_gap_s`` ago continues the visit) and not again within
``repeat_window_s`` of their last event at this kiosk. Unknown faces are logged the same way,
once per visit, with at least ``unknown_cooldown_s`` between two unknown events.

Liveness (:class:`LivenessPolicy`). With liveness on, the counted face is scored (the fused
live probability of the two MiniFASNet networks) only while its visit is still undecided, and
only on every ``stride``-th such frame (the cost, see LIVENESS_MODEL_CARD.md). A visit is
live when ``votes_required`` of the last ``votes_window`` scored frames of that face reach the
threshold; an unsure frame (face too small or too near the border) is a vote for "not live",
never for "live". The defaults, 2 of 3 scored frames at stride 4, take frames 1, 5 and 9 of a
visit: a live person is accepted at frame 5 at the earliest (0.33 s at 15 frames per second,
two frames after the recognition vote could accept), an attack is refused at frame 9 (0.6 s).
The stride keeps the cost under 10 % of the frame time: both networks take 18.7 ms per
scored face against 51.6 ms for the rest of a frame's work (medians, same run,
tools/liveness_cost.py, see the model card), so one frame in four costs 4.7 ms a frame
(9.1 %) while a visit is undecided, and nothing once it is decided.
Why 2 of 3: if a live face were scored live with probability q per frame
independently, a visit passes within its window with probability 3q^2 - 2q^3 (q = 0.9 gives
97 %), while an attack scored live with probability p passes with 3p^2 - 2p^3 (p = 0.05 gives
0.7 %); 1 of 1 would let a single lucky frame through, 3 of 3 would refuse a live person for
one blurred frame. Frames of one presentation are not independent (the same print, the same
light), so these are bounds of the idea, not measurements; the measured per-image rates are
in the model card.

- ``observe``: scores are kept with the events and shown, decisions are today's.
- ``enforce``: a known person is accepted only once the face in view is live. A
  *presentation* lasts while a face stays in view; ``PRESENTATION_GAP_FRAMES`` frames in a
  row without a face end it (counted in frames, so a video file read faster than real time
  behaves as it would live), so
  a photo brought in after a real visit is judged afresh even within the visit gap. A full
  window that is not live enough ends the presentation as its own decision ``attack``
  (logged with its crop and score, no IN/OUT, no person attached so attendance never counts
  it; the claimed name is kept in the log and the alert); it stays refused until it ends,
  and each new presentation is a new attempt.
  ``alert_attempts`` attack events within ``alert_window_s`` raise
  a :class:`LivenessAlert`. Unknown faces are logged as unknown, with their score.
- ``off``: nothing is scored; decisions and events are exactly those without liveness.

Attendance. The first known event of a person's local day is IN; every later one that day is
OUT (the last of them is the day's OUT, as in :mod:`faceguard.library.attendance`).

Time comes from the caller (``now``) so tests can drive a fake clock; all times are aware UTC.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Literal, Protocol

import numpy as np

from faceguard.clock import local_day_start, to_local
from faceguard.settings import Settings

UNKNOWN = -1  # vote label of an unknown face
LIVENESS_STRIDE = 4  # score every 4th undecided frame (cost; see the module docstring)
LIVENESS_MEMORY = 32  # scored frames remembered (filtered by face label and visit gap)
PRESENTATION_GAP_FRAMES = 8  # frames without a face that end a presentation (0.5-1 s)
DEFAULT_UNKNOWN_COOLDOWN_S = 60.0
DEFAULT_VISIT_GAP_S = 10.0

Direction = Literal["IN", "OUT"]
LivenessState = Literal["live", "attack", "pending"]
ATTACK_DECISION = "attack"


@dataclass(frozen=True)
class LivenessPolicy:
    """Liveness mode, threshold, N-of-M vote over scored frames, and the alert rule."""

    mode: str = "off"
    threshold: float = 0.5
    votes_required: int = 2
    votes_window: int = 3
    alert_attempts: int = 3
    alert_window_s: float = 300.0
    stride: int = LIVENESS_STRIDE

    def __post_init__(self) -> None:
        if self.mode not in ("off", "observe", "enforce"):
            raise ValueError(f"unknown liveness mode {self.mode!r}")
        if not 1 <= self.votes_required <= self.votes_window:
            raise ValueError("need 1 <= liveness votes_required <= votes_window")
        if self.stride < 1 or self.alert_attempts < 1:
            raise ValueError("liveness stride and alert_attempts must be at least 1")

    @property
    def active(self) -> bool:
        """Whether faces are scored at all."""
        return self.mode != "off"

    @property
    def enforced(self) -> bool:
        """Whether a visit that is not live is refused."""
        return self.mode == "enforce"

    @classmethod
    def from_settings(cls, settings: Settings) -> LivenessPolicy:
        """The liveness policy configured in the settings."""
        return cls(settings.liveness_mode, float(settings.liveness_threshold),
                   settings.liveness_votes_required, settings.liveness_votes_window,
                   settings.liveness_alert_attempts, float(settings.liveness_alert_window_s))


@dataclass(frozen=True)
class DecisionPolicy:
    """The numbers behind the kiosk's decisions (see the module docstring)."""

    votes_required: int = 3
    votes_window: int = 5
    repeat_window_s: float = 300.0
    unknown_cooldown_s: float = DEFAULT_UNKNOWN_COOLDOWN_S
    visit_gap_s: float = DEFAULT_VISIT_GAP_S
    liveness: LivenessPolicy = field(default_factory=LivenessPolicy)

    def __post_init__(self) -> None:
        if not 1 <= self.votes_required <= self.votes_window:
            raise ValueError("need 1 <= votes_required <= votes_window")

    @classmethod
    def from_settings(cls, settings: Settings) -> DecisionPolicy:
        """The policy configured in the settings."""
        return cls(settings.votes_required, settings.votes_window,
                   float(settings.repeat_window_s),
                   liveness=LivenessPolicy.from_settings(settings))


@dataclass(frozen=True)
class Candidate:
    """One frame's vote: the largest face's best match (``person_id`` None = unknown)."""

    person_id: int | None
    similarity: float
    name: str | None = None
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)
    liveness: float | None = None  # fused live probability of this frame (None: unsure)
    liveness_scored: bool = False  # whether liveness was computed on this frame

    @property
    def label(self) -> int:
        return UNKNOWN if self.person_id is None else self.person_id


@dataclass(frozen=True)
class Verdict:
    """What the votes agree on now: a person, or an unknown face (``person_id`` None)."""

    person_id: int | None
    name: str | None
    similarity: float
    votes: int

    @property
    def known(self) -> bool:
        return self.person_id is not None


@dataclass(frozen=True)
class KioskEvent:
    """A decision to log (``event_id`` is set once it is in the library)."""

    timestamp: datetime
    kiosk_id: str
    person_id: int | None
    person_name: str | None
    similarity: float
    direction: Direction | None
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)
    event_id: int | None = None
    liveness: float | None = None  # mean fused live probability of the visit's scored frames
    attack: bool = False  # presentation attack suspected (enforce mode)
    claimed_name: str | None = None  # whom an attack event's face was matched to
    alert: LivenessAlert | None = field(default=None, repr=False, compare=False)  # it raised
    door: str | None = None  # "unlocked" or "denied" once the gate has decided (None: no gate,
    # an unknown face or a suspected attack: nothing opens)
    door_reason: str | None = None  # the plain reason ("outside your hours")

    @property
    def decision(self) -> str:
        """The library's decision value: ``known``, ``unknown`` or ``attack``."""
        if self.attack:
            return ATTACK_DECISION
        return "known" if self.person_id is not None else "unknown"

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        """The headless runner's JSON line for this event."""
        return {
            "event_id": self.event_id,
            "timestamp": self.timestamp.astimezone(UTC).isoformat(timespec="milliseconds"),
            "local_time": to_local(self.timestamp, tz).isoformat(timespec="seconds"),
            "kiosk_id": self.kiosk_id,
            "decision": self.decision,
            "person_id": self.person_id,
            "person": self.person_name,
            "direction": self.direction,
            "similarity": round(float(self.similarity), 4),
            "liveness": None if self.liveness is None else round(float(self.liveness), 4),
            "door": self.door,
            "door_reason": self.door_reason,
        }


@dataclass(frozen=True)
class LivenessAlert:
    """Repeated suspected attacks at this kiosk: an admin should look (audit + warning)."""

    timestamp: datetime
    kiosk_id: str
    attempts: int
    window_s: float
    claimed: tuple[str, ...] = ()

    def message(self) -> str:
        """One line for the log, the audit trail and the admin's screen."""
        who = f" (matched to {', '.join(self.claimed)})" if self.claimed else ""
        return (f"{self.attempts} suspected presentation attacks within "
                f"{self.window_s:.0f} s at kiosk {self.kiosk_id}{who}")


@dataclass(frozen=True)
class Outcome:
    """The result of one frame's vote: the verdict, and the event to log if there is one.

    ``previous`` is the time of the person's earlier event when a repeat was suppressed (the
    banner can say "already recorded at 08:59").
    """

    verdict: Verdict | None
    event: KioskEvent | None = None
    previous: datetime | None = None
    previous_direction: Direction | None = None
    liveness: LivenessState | None = None  # the visit's liveness state (None: off / no face)
    alert: LivenessAlert | None = None


class EventHistory(Protocol):
    """What the decider needs to know about events logged before it started."""

    def last_known(self, person_id: int, kiosk_id: str) -> datetime | None:
        """Time of the person's latest known event at this kiosk."""

    def has_known_between(self, person_id: int, start: datetime, end: datetime) -> bool:
        """Whether the person has a known event with ``start <= time < end`` (any kiosk)."""


class NoHistory:
    """An empty history (tests, or a kiosk without a library)."""

    def last_known(self, person_id: int, kiosk_id: str) -> datetime | None:
        return None

    def has_known_between(self, person_id: int, start: datetime, end: datetime) -> bool:
        return False


class Decider:
    """N-of-M voting over frames, visits, repeat window and IN/OUT (see module docstring)."""

    def __init__(self, policy: DecisionPolicy, kiosk_id: str, *,
                 history: EventHistory | None = None, tz: tzinfo | None = None) -> None:
        self.policy = policy
        self.kiosk_id = kiosk_id
        self.history = history or NoHistory()
        self.tz = tz
        self._votes: deque[Candidate | None] = deque(maxlen=policy.votes_window)
        self._last_logged: dict[int, tuple[datetime, Direction | None]] = {}
        self._last_seen: dict[int, datetime] = {}  # last verdict per label (visit tracking)
        self._seeded: set[int] = set()
        self._days_with_in: set[tuple[int, date]] = set()
        self._live: deque[tuple[datetime, int, float | None]] = deque(maxlen=LIVENESS_MEMORY)
        self._since_scored = LIVENESS_STRIDE * 100  # frames since the last scored one
        self._attack_visits: set[int] = set()  # labels whose presentation was refused
        self._live_ok: set[int] = set()  # labels whose presentation was judged live
        self._attacks: deque[tuple[datetime, str | None]] = deque()  # for the alert
        self._absent_frames = 0  # frames in a row without a face

    def set_policy(self, policy: DecisionPolicy) -> None:
        """Change the numbers (from the settings dialog); votes so far are kept if they fit."""
        self.policy = policy
        self._votes = deque(list(self._votes)[-policy.votes_window:],
                            maxlen=policy.votes_window)

    def reset(self) -> None:
        """Forget the current votes (the source changed); events logged so far still count."""
        self._votes.clear()
        self._live.clear()

    def forget_person(self, person_id: int) -> None:
        """Drop what is remembered about a removed person."""
        self._last_logged.pop(person_id, None)
        self._last_seen.pop(person_id, None)
        self._seeded.discard(person_id)
        self._days_with_in = {key for key in self._days_with_in if key[0] != person_id}
        self._attack_visits.discard(person_id)
        self._live_ok.discard(person_id)

    # -- liveness --------------------------------------------------------------------------

    def _visit_open(self, label: int, now: datetime) -> bool:
        """Whether a verdict on this label less than ``visit_gap_s`` ago continues a visit."""
        last_seen = self._last_seen.get(label)
        return last_seen is not None and \
            (now - last_seen).total_seconds() < self.policy.visit_gap_s

    def liveness_due(self, label: int, now: datetime) -> bool:
        """Whether the pipeline should score this frame's counted face (label of its match).

        Only while liveness is on, the face's visit is undecided, and every ``stride``-th
        such frame.
        """
        live = self.policy.liveness
        if not live.active:
            return False
        if live.enforced and label != UNKNOWN:
            decided = label in self._live_ok or label in self._attack_visits
        else:
            decided = self._visit_open(label, now)
        return not decided and self._since_scored >= live.stride - 1

    def liveness_scores(self, label: int, now: datetime) -> list[float | None]:
        """The last ``votes_window`` scores of this face within the visit gap, oldest first."""
        gap = self.policy.visit_gap_s
        scores = [score for when, who, score in self._live
                  if who == label and (now - when).total_seconds() < gap]
        return scores[-self.policy.liveness.votes_window:]

    def last_liveness(self, label: int, now: datetime) -> float | None:
        """The newest known score of this face (for the admin's view), or None."""
        known = [s for s in self.liveness_scores(label, now) if s is not None]
        return known[-1] if known else None

    def _liveness_state(self, label: int, now: datetime) -> tuple[LivenessState, float | None]:
        """live / attack / pending for a face, and the mean of its known scores."""
        live = self.policy.liveness
        scores = self.liveness_scores(label, now)
        known = [s for s in scores if s is not None]
        mean = float(np.mean(known)) if known else None
        votes = sum(1 for s in known if s >= live.threshold)  # unsure is never a live vote
        if votes >= live.votes_required:
            return "live", mean
        if len(scores) >= live.votes_window:
            return "attack", mean
        return "pending", mean

    def update(self, candidate: Candidate | None, now: datetime) -> Outcome:
        """Add this frame's vote (None: no face to count) and decide."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self._votes.append(candidate)
        self._track_absence(candidate)
        if candidate is not None and candidate.liveness_scored:
            self._live.append((now, candidate.label, candidate.liveness))
            self._since_scored = 0
        elif candidate is not None:
            self._since_scored += 1
        verdict, best = self._verdict(candidate)
        if verdict is None:
            return Outcome(None)
        label = UNKNOWN if verdict.person_id is None else verdict.person_id
        same_visit = self._visit_open(label, now)
        live = self.policy.liveness
        state: LivenessState | None = None
        score: float | None = None
        if live.active:
            state, score = self._liveness_state(label, now)
        if live.enforced and verdict.person_id is not None:
            if label in self._attack_visits:
                return Outcome(verdict, liveness="attack")  # this presentation was refused
            if label in self._live_ok:
                state = "live"
            elif state == "pending":
                return Outcome(verdict, liveness="pending")  # not decided yet
            elif state == "attack":
                self._attack_visits.add(label)
                return self._attack(verdict, best, now, score)
            else:
                self._live_ok.add(label)
        self._last_seen[label] = now
        if verdict.person_id is None:
            outcome = self._unknown(verdict, best, now, same_visit)
        else:
            outcome = self._known(verdict, best, now, same_visit)
        if outcome.event is not None:
            outcome = replace(outcome, event=replace(outcome.event, liveness=score))
        return replace(outcome, liveness=state)

    def _track_absence(self, candidate: Candidate | None) -> None:
        """End presentations after ``PRESENTATION_GAP_FRAMES`` frames without a face."""
        if candidate is None:
            self._absent_frames += 1
            return
        if self._absent_frames >= PRESENTATION_GAP_FRAMES:
            self._live.clear()  # the next presentation is scored afresh
            self._attack_visits.clear()
            self._live_ok.clear()
        self._absent_frames = 0

    def _attack(self, verdict: Verdict, best: Candidate | None, now: datetime,
                score: float | None) -> Outcome:
        """A known face whose visit is not live enough: an ``attack`` event, maybe an alert."""
        event = KioskEvent(now, self.kiosk_id, None, None, verdict.similarity, None,
                           best.crop if best else None, liveness=score, attack=True,
                           claimed_name=verdict.name)
        live = self.policy.liveness
        self._attacks.append((now, verdict.name))
        while self._attacks and \
                (now - self._attacks[0][0]).total_seconds() > live.alert_window_s:
            self._attacks.popleft()
        alert = None
        if len(self._attacks) >= live.alert_attempts:
            names = tuple(sorted({n for _, n in self._attacks if n}))
            alert = LivenessAlert(now, self.kiosk_id, len(self._attacks), live.alert_window_s,
                                  names)
            self._attacks.clear()  # the next alert needs as many new attempts
            event = replace(event, alert=alert)  # events always reach the window; frames may not
        return Outcome(verdict, event, liveness="attack", alert=alert)

    def _verdict(self, current: Candidate | None
                 ) -> tuple[Verdict | None, Candidate | None]:
        if current is None:
            return None, None
        votes = [v for v in self._votes if v is not None]
        counts = Counter(v.label for v in votes)
        if not counts:
            return None, None
        # The most agreed label; on a tie the current frame's label wins.
        label, count = max(counts.items(),
                           key=lambda item: (item[1], item[0] == current.label))
        if count < self.policy.votes_required:
            return None, None
        agreeing = [v for v in votes if v.label == label]
        similarity = float(np.mean([v.similarity for v in agreeing]))
        best = max(agreeing, key=lambda v: v.similarity) if label != UNKNOWN else agreeing[-1]
        person_id = None if label == UNKNOWN else label
        name = next((v.name for v in reversed(agreeing) if v.name), None)
        return Verdict(person_id, name, similarity, count), best

    def _unknown(self, verdict: Verdict, best: Candidate | None, now: datetime,
                 same_visit: bool) -> Outcome:
        last = self._last_logged.get(UNKNOWN)
        cooling = last is not None and \
            (now - last[0]).total_seconds() < self.policy.unknown_cooldown_s
        if same_visit or cooling:
            return Outcome(verdict, None, last[0] if last else None)
        self._last_logged[UNKNOWN] = (now, None)
        event = KioskEvent(now, self.kiosk_id, None, None, verdict.similarity, None,
                           best.crop if best else None)
        return Outcome(verdict, event)

    def _known(self, verdict: Verdict, best: Candidate | None, now: datetime,
               same_visit: bool) -> Outcome:
        assert verdict.person_id is not None
        person_id = verdict.person_id
        if person_id not in self._seeded:
            self._seeded.add(person_id)
            earlier = self.history.last_known(person_id, self.kiosk_id)
            if earlier is not None and person_id not in self._last_logged:
                self._last_logged[person_id] = (earlier, None)
        last = self._last_logged.get(person_id)
        recent = last is not None and \
            (now - last[0]).total_seconds() < self.policy.repeat_window_s
        if same_visit or recent:
            return Outcome(verdict, None, last[0] if last else None, last[1] if last else None)
        direction = self._direction(person_id, now)
        self._last_logged[person_id] = (now, direction)
        event = KioskEvent(now, self.kiosk_id, person_id, verdict.name, verdict.similarity,
                           direction, best.crop if best else None)
        return Outcome(verdict, event)

    def _direction(self, person_id: int, now: datetime) -> Direction:
        """IN for the person's first known event of the local day, OUT after that."""
        day = to_local(now, self.tz).date()
        key = (person_id, day)
        if key in self._days_with_in:
            return "OUT"
        self._days_with_in.add(key)
        start = local_day_start(day, self.tz)
        if self.history.has_known_between(person_id, start, now):
            return "OUT"
        return "IN"

    def day_of(self, moment: datetime) -> date:
        """The local calendar day of a moment (the decider's time zone)."""
        return to_local(moment, self.tz).date()


