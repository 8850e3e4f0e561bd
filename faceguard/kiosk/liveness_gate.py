"""Liveness at the kiosk: when the counted face is scored, and when a visit is live or refused.

With liveness on, the counted face is scored (the fused live probability of the two MiniFASNet
networks) only while its visit is still undecided, and only on every ``stride``-th such frame
(the cost, see LIVENESS_MODEL_CARD.md). A visit is live when ``votes_required`` of the last
``votes_window`` scored frames of that face reach the threshold; an unsure frame (face too
small or too near the border) is a vote for "not live", never for "live". The defaults, 2 of 3
scored frames at stride 4, take frames 1, 5 and 9 of a visit: a live person is accepted at
frame 5 at the earliest (0.33 s at 15 frames per second, two frames after the recognition vote
could accept), an attack is refused at frame 9 (0.6 s).
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

The :class:`~faceguard.kiosk.decisions.Decider` asks a :class:`LivenessGate` and builds the
events; the pipeline loads the networks with :func:`load_liveness`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

import numpy as np

from faceguard.settings import Settings
from faceguard.vision.liveness import LivenessChecker, checker_for_mode

LIVENESS_STRIDE = 4  # score every 4th undecided frame (cost; see the module docstring)
LIVENESS_MEMORY = 32  # scored frames remembered (filtered by face label and visit gap)
PRESENTATION_GAP_FRAMES = 8  # frames without a face that end a presentation (0.5-1 s)

LivenessState = Literal["live", "attack", "pending"]


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


class LivenessGate:
    """The scored frames, the presentations judged live or refused, and the attack alert.

    Faces are named by their vote label (a person id, or the decider's unknown label);
    ``memory_s`` is the visit gap: older scores no longer count.
    """

    def __init__(self, policy: LivenessPolicy, memory_s: float) -> None:
        self.policy = policy
        self.memory_s = memory_s
        self._scores: deque[tuple[datetime, int, float | None]] = deque(maxlen=LIVENESS_MEMORY)
        self._since_scored = LIVENESS_STRIDE * 100  # frames since the last scored one
        self._refused: set[int] = set()  # labels whose presentation was refused
        self._accepted: set[int] = set()  # labels whose presentation was judged live
        self._attacks: deque[tuple[datetime, str | None]] = deque()  # for the alert
        self._absent_frames = 0  # frames in a row without a face

    def configure(self, policy: LivenessPolicy, memory_s: float) -> None:
        """New numbers (the settings dialog); what was scored so far is kept."""
        self.policy, self.memory_s = policy, memory_s

    def reset(self) -> None:
        """Forget the scored frames (the source changed)."""
        self._scores.clear()

    def forget(self, label: int) -> None:
        """Drop the presentation state of a removed person."""
        self._refused.discard(label)
        self._accepted.discard(label)

    def due(self, label: int, *, known: bool, visit_open: bool) -> bool:
        """Whether this frame's counted face (its label, whether it is a known person, and
        whether its visit is still open) should be scored: only while liveness is on, the
        face's visit is undecided, and every ``stride``-th such frame."""
        live = self.policy
        if not live.active:
            return False
        if live.enforced and known:
            decided = label in self._accepted or label in self._refused
        else:
            decided = visit_open
        return not decided and self._since_scored >= live.stride - 1

    def observe(self, label: int | None, score: float | None, scored: bool,
                now: datetime) -> None:
        """This frame's counted face (label None: no face), with its score when scored."""
        self._track_absence(label is not None)
        if label is not None and scored:
            self._scores.append((now, label, score))
            self._since_scored = 0
        elif label is not None:
            self._since_scored += 1

    def _track_absence(self, face: bool) -> None:
        """End presentations after ``PRESENTATION_GAP_FRAMES`` frames without a face."""
        if not face:
            self._absent_frames += 1
            return
        if self._absent_frames >= PRESENTATION_GAP_FRAMES:
            self._scores.clear()  # the next presentation is scored afresh
            self._refused.clear()
            self._accepted.clear()
        self._absent_frames = 0

    def scores(self, label: int, now: datetime) -> list[float | None]:
        """The last ``votes_window`` scores of this face within the visit gap, oldest first."""
        scores = [score for when, who, score in self._scores
                  if who == label and (now - when).total_seconds() < self.memory_s]
        return scores[-self.policy.votes_window:]

    def last(self, label: int, now: datetime) -> float | None:
        """The newest known score of this face (for the admin's view), or None."""
        known = [s for s in self.scores(label, now) if s is not None]
        return known[-1] if known else None

    def state(self, label: int, now: datetime) -> tuple[LivenessState, float | None]:
        """live / attack / pending for a face, and the mean of its known scores."""
        live = self.policy
        scores = self.scores(label, now)
        known = [s for s in scores if s is not None]
        mean = float(np.mean(known)) if known else None
        votes = sum(1 for s in known if s >= live.threshold)  # unsure is never a live vote
        if votes >= live.votes_required:
            return "live", mean
        if len(scores) >= live.votes_window:
            return "attack", mean
        return "pending", mean

    def refused(self, label: int) -> bool:
        """Whether this face's presentation was refused (until it ends)."""
        return label in self._refused

    def accepted(self, label: int) -> bool:
        """Whether this face's presentation was judged live."""
        return label in self._accepted

    def accept(self, label: int) -> None:
        self._accepted.add(label)

    def refuse(self, label: int, name: str | None, now: datetime,
               kiosk_id: str) -> LivenessAlert | None:
        """Refuse this presentation (an attack event, claiming ``name``); the alert when
        ``alert_attempts`` attacks fell within ``alert_window_s``."""
        self._refused.add(label)
        live = self.policy
        self._attacks.append((now, name))
        while self._attacks and \
                (now - self._attacks[0][0]).total_seconds() > live.alert_window_s:
            self._attacks.popleft()
        if len(self._attacks) < live.alert_attempts:
            return None
        names = tuple(sorted({n for _, n in self._attacks if n}))
        alert = LivenessAlert(now, kiosk_id, len(self._attacks), live.alert_window_s, names)
        self._attacks.clear()  # the next alert needs as many new attempts
        return alert


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
