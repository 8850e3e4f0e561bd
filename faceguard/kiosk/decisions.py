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

Liveness (:mod:`faceguard.kiosk.liveness_gate`): with it on, a known person's visit may also
have to be live; a refused one is its own decision, ``attack``. Attendance
(:mod:`faceguard.kiosk.in_out`): each known event is the person's IN or OUT of the day.

Time comes from the caller (``now``) so tests can drive a fake clock; all times are aware UTC.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import numpy as np

from faceguard.clock import to_local
from faceguard.kiosk.in_out import Direction, EventHistory, InOut, NoHistory
from faceguard.kiosk.liveness_gate import (
    LivenessAlert,
    LivenessGate,
    LivenessPolicy,
    LivenessState,
)
from faceguard.settings import Settings
from faceguard.settings.schema import DEFAULT_UNKNOWN_COOLDOWN_S, DEFAULT_VISIT_GAP_S

UNKNOWN = -1  # vote label of an unknown face
ATTACK_DECISION = "attack"


@dataclass(frozen=True)
class DecisionPolicy:
    """The numbers behind the kiosk's decisions (see the module docstring)."""

    votes_required: int = 3
    votes_window: int = 5
    repeat_window_s: float = 300.0
    unknown_cooldown_s: float = float(DEFAULT_UNKNOWN_COOLDOWN_S)
    visit_gap_s: float = DEFAULT_VISIT_GAP_S
    liveness: LivenessPolicy = field(default_factory=LivenessPolicy)

    def __post_init__(self) -> None:
        if not 1 <= self.votes_required <= self.votes_window:
            raise ValueError("need 1 <= votes_required <= votes_window")

    @classmethod
    def from_settings(cls, settings: Settings) -> DecisionPolicy:
        """The policy configured in the settings."""
        return cls(settings.votes_required, settings.votes_window,
                   float(settings.repeat_window_s), float(settings.unknown_cooldown_s),
                   float(settings.visit_gap_s), LivenessPolicy.from_settings(settings))


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


class Decider:
    """N-of-M voting over frames, visits and the repeat window (see module docstring), with
    the liveness gate and IN/OUT."""

    def __init__(self, policy: DecisionPolicy, kiosk_id: str, *,
                 history: EventHistory | None = None, tz: tzinfo | None = None) -> None:
        self.policy = policy
        self.kiosk_id = kiosk_id
        self.history = history or NoHistory()
        self.in_out = InOut(self.history, tz)
        self.liveness = LivenessGate(policy.liveness, policy.visit_gap_s)
        self._votes: deque[Candidate | None] = deque(maxlen=policy.votes_window)
        self._last_logged: dict[int, tuple[datetime, Direction | None]] = {}
        self._last_seen: dict[int, datetime] = {}  # last verdict per label (visit tracking)
        self._seeded: set[int] = set()

    def set_policy(self, policy: DecisionPolicy) -> None:
        """Change the numbers (from the settings dialog); votes so far are kept if they fit."""
        self.policy = policy
        self.liveness.configure(policy.liveness, policy.visit_gap_s)
        self._votes = deque(list(self._votes)[-policy.votes_window:],
                            maxlen=policy.votes_window)

    def reset(self) -> None:
        """Forget the current votes (the source changed); events logged so far still count."""
        self._votes.clear()
        self.liveness.reset()

    def forget_person(self, person_id: int) -> None:
        """Drop what is remembered about a removed person."""
        self._last_logged.pop(person_id, None)
        self._last_seen.pop(person_id, None)
        self._seeded.discard(person_id)
        self.in_out.forget_person(person_id)
        self.liveness.forget(person_id)

    def _visit_open(self, label: int, now: datetime) -> bool:
        """Whether a verdict on this label less than ``visit_gap_s`` ago continues a visit."""
        last_seen = self._last_seen.get(label)
        return last_seen is not None and \
            (now - last_seen).total_seconds() < self.policy.visit_gap_s

    def liveness_due(self, label: int, now: datetime) -> bool:
        """Whether the pipeline should score this frame's counted face (label of its match):
        only while liveness is on, the face's visit is undecided, and every ``stride``-th
        such frame (:meth:`LivenessGate.due`)."""
        return self.liveness.due(label, known=label != UNKNOWN,
                                 visit_open=self._visit_open(label, now))

    def last_liveness(self, label: int, now: datetime) -> float | None:
        """The newest known score of this face (for the admin's view), or None."""
        return self.liveness.last(label, now)

    def update(self, candidate: Candidate | None, now: datetime) -> Outcome:
        """Add this frame's vote (None: no face to count) and decide."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self._votes.append(candidate)
        if candidate is None:
            self.liveness.observe(None, None, False, now)
        else:
            self.liveness.observe(candidate.label, candidate.liveness,
                                  candidate.liveness_scored, now)
        verdict, best = self._verdict(candidate)
        if verdict is None:
            return Outcome(None)
        label = UNKNOWN if verdict.person_id is None else verdict.person_id
        same_visit = self._visit_open(label, now)
        live = self.policy.liveness
        gate = self.liveness
        state: LivenessState | None = None
        score: float | None = None
        if live.active:
            state, score = gate.state(label, now)
        if live.enforced and verdict.person_id is not None:
            if gate.refused(label):
                return Outcome(verdict, liveness="attack")  # this presentation was refused
            if gate.accepted(label):
                state = "live"
            elif state == "pending":
                return Outcome(verdict, liveness="pending")  # not decided yet
            elif state == "attack":
                return self._attack(verdict, best, now, score)
            else:
                gate.accept(label)
        self._last_seen[label] = now
        if verdict.person_id is None:
            outcome = self._unknown(verdict, best, now, same_visit)
        else:
            outcome = self._known(verdict, best, now, same_visit)
        if outcome.event is not None:
            outcome = replace(outcome, event=replace(outcome.event, liveness=score))
        return replace(outcome, liveness=state)

    def _attack(self, verdict: Verdict, best: Candidate | None, now: datetime,
                score: float | None) -> Outcome:
        """A known face whose visit is not live enough: an ``attack`` event, maybe an alert."""
        assert verdict.person_id is not None
        event = KioskEvent(now, self.kiosk_id, None, None, verdict.similarity, None,
                           best.crop if best else None, liveness=score, attack=True,
                           claimed_name=verdict.name)
        alert = self.liveness.refuse(verdict.person_id, verdict.name, now, self.kiosk_id)
        if alert is not None:
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
        direction = self.in_out.direction(person_id, now)
        self._last_logged[person_id] = (now, direction)
        event = KioskEvent(now, self.kiosk_id, person_id, verdict.name, verdict.similarity,
                           direction, best.crop if best else None)
        return Outcome(verdict, event)

    def day_of(self, moment: datetime) -> date:
        """The local calendar day of a moment (the decider's time zone)."""
        return self.in_out.day_of(moment)
