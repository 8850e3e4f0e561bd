"""Row types of the face library and the value rules every store shares (UTC timestamps as
text, name keys, cleaned names and fields, L2-normalised float32 vectors)."""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from faceguard.clock import utc_now as utc_now  # the stores take the time from here
from faceguard.errors import LibraryError

MAX_NAME_LEN = 100
MAX_FIELD_LEN = 200



@dataclass(frozen=True)
class Person:
    """A person in the library."""

    id: int
    name: str
    employee_id: str | None
    department: str | None
    active: bool
    created: datetime
    template_count: int = 0


@dataclass(frozen=True)
class Template:
    """A stored face template (without its vector and crop; see ``templates_matrix``)."""

    id: int
    person_id: int
    model_id: str
    dim: int
    quality: float
    source: str | None
    created: datetime
    content_sha256: str | None = None  # of the photo file it came from (None: a capture)


@dataclass(frozen=True)
class Event:
    """A recognition event. ``person_name`` is the person's current name, or the name they had
    when the event was logged if they have since been removed (then ``person_id`` is None)."""

    id: int
    timestamp: datetime
    kiosk_id: str
    person_id: int | None
    person_name: str | None
    similarity: float | None
    decision: str
    has_crop: bool
    crop_jpeg: bytes | None = field(default=None, repr=False)
    liveness: float | None = None  # fused live probability (None: off, unsure, older event)
    # what the door's access rules decided: "allowed" / "denied" with the plain reason; None
    # where no rule was asked (an unknown face, a suspected attack, no door, an older event)
    access: str | None = None
    access_reason: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One line of the admin audit trail."""

    id: int
    timestamp: datetime
    actor: str
    action: str
    details: str


@dataclass(frozen=True)
class AdminState:
    """The admin credential and lock-out kept in the library (see ``_m006_admin``)."""

    pin_hash: str | None = field(default=None, repr=False)
    protected: bool = False  # a PIN has guarded this library (losing it needs recovery)
    failures: int = 0
    locked_until: datetime | None = None


@dataclass(frozen=True)
class ReembedResult:
    """Outcome of :meth:`FaceLibrary.reembed`."""

    updated: int
    failed: list[int]  # template ids whose crop could not be decoded or embedded


class _Unset(enum.Enum):
    UNSET = 0


UNSET = _Unset.UNSET

EmbedFn = Callable[[list[np.ndarray]], np.ndarray]


def to_db_time(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware datetimes")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def name_key(name: str) -> str:
    """Comparison key for names: Unicode NFC, spaces collapsed, case-folded."""
    return unicodedata.normalize("NFC", " ".join(name.split())).casefold()


def normalised_label(value: object, what: str, limit: int) -> str:
    """``value`` in Unicode NFC with its spaces collapsed; LibraryError (starting with
    ``what``) when it is not text, is empty or is longer than ``limit``."""
    if not isinstance(value, str):
        raise LibraryError(f"{what} must be text.")
    cleaned = unicodedata.normalize("NFC", " ".join(value.split()))
    if not cleaned:
        raise LibraryError(f"{what} must not be empty.")
    if len(cleaned) > limit:
        raise LibraryError(f"{what} must be at most {limit} characters.")
    return cleaned


def clean_name(name: str) -> str:
    cleaned = normalised_label(name, "A person's name", MAX_NAME_LEN)
    if any(unicodedata.category(ch) == "Cc" for ch in cleaned):
        raise LibraryError("A person's name must not contain control characters.")
    refuse_hidden(cleaned, "A person's name")
    return cleaned


def refuse_hidden(text: str, what: str) -> None:
    """Refuse bidirectional overrides and zero-width characters (they make look-alikes)."""
    hidden = sorted({f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) == "Cf"})
    if hidden:
        raise LibraryError(
            f"{what} must not contain invisible formatting characters (bidirectional "
            f"overrides, zero-width characters): found {', '.join(hidden)}.")


def clean_optional(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise LibraryError(f"The {what} must be text.")
    cleaned = unicodedata.normalize("NFC", " ".join(value.split()))
    if len(cleaned) > MAX_FIELD_LEN:
        raise LibraryError(f"The {what} must be at most {MAX_FIELD_LEN} characters.")
    refuse_hidden(cleaned, f"The {what}")
    return cleaned or None


def vector_blob(embedding: np.ndarray) -> tuple[bytes, int]:
    """Validate and L2-normalise one embedding; return its little-endian float32 bytes and D."""
    vec = np.asarray(embedding, dtype=np.float32)
    if vec.ndim != 1 or vec.size == 0:
        raise ValueError(f"an embedding must be a 1-D vector, got shape {vec.shape}")
    if not np.all(np.isfinite(vec)):
        raise ValueError("an embedding must contain only finite numbers")
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:
        raise ValueError("an embedding must not be all zeros")
    return (vec / norm).astype("<f4").tobytes(), int(vec.size)



def sql_name_key(value: str | None) -> str | None:
    return None if value is None else name_key(value)
