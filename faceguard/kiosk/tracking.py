"""Faces followed from frame to frame, one recognition per visit, and the idle (motion) gate.

Tracks. Every face in view is a :class:`Track`: the faces of each frame are matched to the
previous frame's by box overlap. A track keeps, for its visit, the sum of its frames'
embeddings (*visit fusion*: the frames are averaged and the mean is matched, so one blurred
frame weighs little) and its identity votes (the label of each fused match).

Once per visit. A track is *decided* when the decider gives a verdict on it (the counted face)
or its own votes agree (the other faces). From then on it is no longer embedded; every
``recheck_s`` (1 s) one frame of it is embedded alone and matched: when that single frame
names someone else than the track, the people in front of the camera have swapped without the
box jumping, and the track starts afresh as a new visit (new id, empty fusion and votes).

Short gaps. A face the detector misses on a frame or two (motion blur, a turn of the head)
keeps its track: a track without a face is *missing* for up to ``gap_frames`` frames (the
setting ``kiosk.track_gap_frames``, 4; counted in frames, like the decider's presentations),
and the next full detection that finds a face overlapping its last box takes it up again,
with its id, fusion, votes and decision (the visit goes on; nothing is counted twice). Later
it ends.

Tracking (:meth:`FaceEngine.follow`): with it on, a decided or undecided face is found in the
next frame by R-Net and O-Net around its last box; the full detector (the P-Net pyramid, most
of a frame's cost) runs every ``detect_interval`` frames to find new faces, and at once when a
track is lost (and on every frame while a track is missing). With it off, every frame gets a
full detection; tracks, short gaps, fusion and once-per-visit work the same.

Idle. :class:`MotionGate` compares a small grey copy of each frame (64x48) with the copy of the
last frame the detector examined. With no track and no change, the detector is skipped; it
still runs every ``IDLE_DETECT_FRAMES`` frames so nobody standing perfectly still is missed.
With faces followed, the same comparison outside those faces (and where they were) decides
whether the periodic search for newcomers is worth running.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from faceguard.kiosk.decisions import UNKNOWN
from faceguard.settings import Settings
from faceguard.settings.schema import DEFAULT_TRACK_GAP_FRAMES
from faceguard.vision.mtcnn import Face, box_iou

TRACK_MATCH_IOU = 0.3  # boxes of one face in consecutive frames overlap at least this much
DUPLICATE_IOU = 0.6  # two followed faces overlapping more are the same face
MOTION_SIZE = (64, 48)  # the motion gate's grey thumbnail (width, height)
MOTION_LEVEL = 12  # grey levels a thumbnail pixel must change by to count as moved
IDLE_DETECT_FRAMES = 30  # an idle scene is still searched this often (2 s at 15 fps)
FACE_MARGIN = 0.25  # share of a face box added on each side when its motion is ignored
TRACK_GAP_FRAMES = DEFAULT_TRACK_GAP_FRAMES  # kiosk.track_gap_frames's default


@dataclass(frozen=True)
class TrackingPolicy:
    """The numbers behind tracking, once-per-visit and the motion gate (``Settings``)."""

    tracking: bool = True
    detect_interval: int = 8
    motion_threshold: float = 0.005
    recheck_s: float = 1.0
    votes_required: int = 3
    votes_window: int = 5
    gap_frames: int = TRACK_GAP_FRAMES

    def __post_init__(self) -> None:
        if self.gap_frames < 0:
            raise ValueError("gap_frames must not be negative")
        if self.detect_interval < 1:
            raise ValueError("detect_interval must be at least 1")
        if not 0.0 <= self.motion_threshold <= 1.0:
            raise ValueError("motion_threshold must be in [0, 1]")
        if self.recheck_s <= 0:
            raise ValueError("recheck_s must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> TrackingPolicy:
        """The policy configured in the settings."""
        return cls(settings.tracking == "on", settings.detect_interval,
                   float(settings.motion_threshold), float(settings.recheck_s),
                   settings.votes_required, settings.votes_window, settings.track_gap_frames)


@dataclass(eq=False)
class Track:
    """One face followed through a visit: its box, fused embedding, votes and identity."""

    track_id: int
    face: Face
    votes_window: int = 5
    person_id: int | None = None
    similarity: float = -1.0
    name: str | None = None
    matched: bool = False  # whether it has been matched at least once
    decided: bool = False
    checked_at: datetime | None = None  # when it was last embedded
    crop: np.ndarray | None = field(default=None, repr=False)
    missed: int = 0  # frames in a row without its face (0: seen on the last frame)
    fused_sum: np.ndarray | None = field(default=None, repr=False)
    fused_frames: int = 0
    votes: deque[int] = field(default_factory=deque)

    @property
    def label(self) -> int:
        return UNKNOWN if self.person_id is None else self.person_id

    def embedding_due(self, now: datetime, recheck_s: float) -> bool:
        """Undecided tracks are embedded every frame, decided ones every ``recheck_s``."""
        if not self.decided or self.checked_at is None:
            return True
        return (now - self.checked_at).total_seconds() >= recheck_s

    def fuse(self, vector: np.ndarray) -> np.ndarray:
        """Add a frame's embedding to the visit; the fused (mean, unit length) vector."""
        vector = np.asarray(vector, dtype=np.float32)
        self.fused_sum = vector.copy() if self.fused_sum is None else self.fused_sum + vector
        self.fused_frames += 1
        fused = self.fused_sum / max(float(np.linalg.norm(self.fused_sum)), 1e-12)
        return fused.astype(np.float32)

    def identify(self, person_id: int | None, similarity: float, name: str | None) -> None:
        """Take a match of the fused embedding as the track's identity and vote."""
        self.person_id, self.similarity, self.name = person_id, float(similarity), name
        self.matched = True
        self.votes.append(self.label)
        while len(self.votes) > self.votes_window:
            self.votes.popleft()

    def agreeing_votes(self) -> int:
        """How many of the track's recent votes name its current identity."""
        return sum(1 for label in self.votes if label == self.label)

    def restart(self, track_id: int) -> None:
        """A new visit in the same box (someone else): forget fusion, votes and identity."""
        self.track_id = track_id
        self.person_id, self.similarity, self.name = None, -1.0, None
        self.matched = self.decided = False
        self.fused_sum, self.fused_frames = None, 0
        self.votes.clear()
        self.crop = None


class FaceTracks:
    """The tracks in view and the missing ones; :meth:`associate` hands each new face its
    track."""

    def __init__(self, votes_window: int = 5, gap_frames: int = TRACK_GAP_FRAMES) -> None:
        self.votes_window = votes_window
        self.gap_frames = gap_frames
        self.tracks: list[Track] = []  # with a face on the last frame, in that frame's order
        self.missing: list[Track] = []  # without one for 1..gap_frames frames
        self._next_id = 1

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def associate(self, faces: list[Face]) -> list[Track]:
        """The track of each face (same order): the track whose last face it overlaps most
        (greedy, at least :data:`TRACK_MATCH_IOU`), seen on the last frame or missing for a
        few, or a new track. A track with no face in this frame goes missing, and ends after
        ``gap_frames`` such frames."""
        known = self.tracks + self.missing
        pairs = sorted(((box_iou(face.box, track.face.box), track.missed == 0, fi, ti)
                        for fi, face in enumerate(faces)
                        for ti, track in enumerate(known)), reverse=True)
        owner: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, _, fi, ti in pairs:
            if overlap < TRACK_MATCH_IOU:
                break
            if fi in owner or ti in used:
                continue
            owner[fi] = known[ti]
            used.add(ti)
        result = []
        for fi, face in enumerate(faces):
            track = owner.get(fi) or Track(self.new_id(), face, self.votes_window)
            track.face, track.missed = face, 0
            result.append(track)
        missing = [track for ti, track in enumerate(known) if ti not in used]
        for track in missing:
            track.missed += 1
        self.tracks = result
        self.missing = [track for track in missing if track.missed <= self.gap_frames]
        return result

    def forget_person(self, person_id: int) -> None:
        """Tracks recognised as a removed or renamed person are judged afresh."""
        for track in self.tracks + self.missing:
            if track.person_id == person_id:
                track.restart(self.new_id())

    def clear(self) -> None:
        self.tracks, self.missing = [], []


def drop_duplicates(faces: list[Face]) -> list[Face]:
    """Followed faces that ran onto the same face: keep the first (the older track)."""
    kept: list[Face] = []
    for face in faces:
        if all(box_iou(face.box, other.box) <= DUPLICATE_IOU for other in kept):
            kept.append(face)
    return kept


class MotionGate:
    """Whether a frame differs from the last frame the detector examined (see module doc).

    ``threshold`` is the share of the 64x48 grey thumbnail that must change by more than
    :data:`MOTION_LEVEL` grey levels; 0 turns the gate off (every frame is examined).
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self._reference: np.ndarray | None = None
        self._reference_boxes: list[np.ndarray] = []  # faces found in the reference frame
        self._skipped = 0

    @staticmethod
    def thumbnail(frame: np.ndarray) -> np.ndarray:
        """The small grey copy the gate compares (int16, so differences do not wrap)."""
        grey = cv2.cvtColor(cv2.resize(frame, MOTION_SIZE, interpolation=cv2.INTER_AREA),
                            cv2.COLOR_RGB2GRAY)
        return grey.astype(np.int16)

    def changed_share(self, frame: np.ndarray, ignore: Sequence[np.ndarray] = ()) -> float:
        """Share of the thumbnail that changed since the last examined frame (1.0: none
        examined yet), not counting the ``ignore`` boxes (frame pixels) nor the faces found
        in the examined frame, each with a :data:`FACE_MARGIN` margin."""
        latest = self.thumbnail(frame)
        if self._reference is None or self._reference.shape != latest.shape:
            return 1.0
        moved = np.abs(latest - self._reference) > MOTION_LEVEL
        if ignore:
            height, width = frame.shape[:2]
            scale_x, scale_y = MOTION_SIZE[0] / width, MOTION_SIZE[1] / height
            for box in [*ignore, *self._reference_boxes]:
                x1, y1, x2, y2 = (float(v) for v in box[:4])
                pad_x, pad_y = (x2 - x1) * FACE_MARGIN, (y2 - y1) * FACE_MARGIN
                left = max(0, int((x1 - pad_x) * scale_x))
                top = max(0, int((y1 - pad_y) * scale_y))
                right = int(np.ceil((x2 + pad_x) * scale_x))
                bottom = int(np.ceil((y2 + pad_y) * scale_y))
                moved[top:max(top, bottom), left:max(left, right)] = False
        return float(np.count_nonzero(moved)) / moved.size

    def should_examine(self, frame: np.ndarray, ignore: Sequence[np.ndarray] = ()) -> bool:
        """Whether a frame is worth a full search: it changed (outside ``ignore``, the faces
        already followed) since the last examined frame, or a search is due anyway."""
        if self.threshold <= 0:
            return True
        changed = self.changed_share(frame, ignore) >= self.threshold
        self._skipped = 0 if changed else self._skipped + 1
        return changed or self._skipped >= IDLE_DETECT_FRAMES

    def examined(self, frame: np.ndarray, faces: Sequence[np.ndarray] = ()) -> None:
        """The detector looked at this frame and found ``faces`` (boxes): later frames are
        compared with it."""
        if self.threshold <= 0:
            return
        self._reference = self.thumbnail(frame)
        self._reference_boxes = [np.asarray(box, dtype=np.float32) for box in faces]
        self._skipped = 0
