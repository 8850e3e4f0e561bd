"""The admin PIN: a salted scrypt hash kept in the face library, and a lock-out after wrong tries.

Stored form: ``scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>`` (hashlib.scrypt, 16-byte random
salt, 32-byte key). Verification recomputes with the *stored* parameters and compares in
constant time, so hashes made with an older, cheaper cost keep working; after a successful try
:class:`PinGate` re-hashes them with the current cost.

Cost (measured with ``hashlib.scrypt`` on this project's 2-core AMD EPYC machines, r=8, p=1,
best / worst of 3 tries): n=2^14 60 / 78 ms (16 MiB, the old cost), n=2^15 134 / 167 ms,
n=2^16 300 / 367 ms (64 MiB), n=2^17 570 / 743 ms, n=2^18 1.1 / 1.5 s. n=2^16 costs about a
third of a second per try at the kiosk, and puts the 10^6 six-digit PINs at roughly 3.5 days
per core for someone who has copied the hash (the old 4-digit PINs at 2^14: 10 minutes).

Five wrong tries in a row lock the admin screens for ``lock_s`` seconds. The failure count and
the lock's end (wall-clock time, so that it survives a restart) live in a :class:`PinStore`:
the face library in the product (see :mod:`faceguard.core.admin`), memory in tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from faceguard.errors import FaceGuardError, LibraryClosedError

log = logging.getLogger(__name__)

SCRYPT_N = 2**16  # ~0.3 s a try on the kiosk PC (figures in the module docstring)
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PIN_DIGITS = 6  # a PIN made only of digits
MIN_PASSWORD_LEN = 8  # anything with a letter or a sign in it
MIN_PIN_LEN = MIN_PIN_DIGITS
MAX_PIN_LEN = 64
MAX_TRIES = 5
_MAX_COST = 2**20  # refuse stored parameters that would take too long or too much memory
_MAXMEM = 256 * 1024 * 1024

# The most used PINs and passwords (leaked-PIN studies' top entries); sequences, repeats and
# dates are refused by rule, not by list.
COMMON_PINS = frozenset({
    "123456", "654321", "111111", "000000", "121212", "123123", "112233", "696969",
    "159753", "147258", "258369", "102030", "123321", "789456", "456789", "159357",
    "753951", "147852", "123654", "007007", "520520", "101010", "131313", "202020",
    "1234567", "7654321", "12345678", "87654321", "11223344", "123456789", "987654321",
    "1234567890", "0987654321", "1q2w3e4r", "password", "passw0rd", "password1", "faceguard",
    "qwertyui", "qwerty123", "iloveyou", "admin123", "letmein1", "12345678a", "abc12345",
    "asdfghjk", "zxcvbnm1", "welcome1", "changeme", "administrator",
})


class PinError(FaceGuardError):
    """A PIN is not acceptable, or the stored hash is unreadable."""


def _is_sequence(text: str) -> bool:
    """Each character one step up (or down) from the last: 345678, 987654, abcdefgh, 890123."""
    steps = {(ord(b) - ord(a)) % 10 if text.isdigit() else ord(b) - ord(a)
             for a, b in itertools.pairwise(text)}
    return steps in ({1}, {9}, {-1})


def _is_repeated(text: str) -> bool:
    """A short pattern said again (121212, 123123, 100100) or every character doubled (112233)."""
    size = len(text)
    if any(size % part == 0 and text == text[:part] * (size // part)
           for part in range(1, size // 2 + 1)):
        return True
    return size % 2 == 0 and text[0::2] == text[1::2]


def _is_date(digits: str) -> bool:
    """DDMMYY, MMDDYY, YYMMDD (6 digits) or DDMMYYYY, MMDDYYYY, YYYYMMDD (8 digits)."""
    def valid(year: int, month: int, day: int) -> bool:
        try:
            date(year, month, day)
        except ValueError:
            return False
        return True

    if len(digits) == 6:
        a, b, c = int(digits[:2]), int(digits[2:4]), int(digits[4:])
        return valid(2000 + c, b, a) or valid(2000 + c, a, b) or valid(2000 + a, b, c)
    if len(digits) == 8:
        head, tail = int(digits[:4]), int(digits[4:])
        day_month = (int(digits[:2]), int(digits[2:4]))
        return (1900 <= tail <= 2099 and (valid(tail, day_month[1], day_month[0])
                                          or valid(tail, day_month[0], day_month[1]))) or \
            (1900 <= head <= 2099 and valid(head, int(digits[4:6]), int(digits[6:])))
    return False


def pin_problem(pin: str) -> str | None:
    """Why a new PIN is not acceptable (None when it is fine).

    At least 6 digits, or a password of at least 8 characters; not a common one, not a
    sequence, a repeat or (for digits) a date.
    """
    if pin != pin.strip():
        return "the PIN must not start or end with a space"
    if len(pin) > MAX_PIN_LEN:
        return f"the PIN must have at most {MAX_PIN_LEN} characters"
    digits_only = re.fullmatch(r"[0-9]+", pin) is not None
    if digits_only and len(pin) < MIN_PIN_DIGITS:
        return (f"the PIN must have at least {MIN_PIN_DIGITS} digits "
                f"(or be a password of at least {MIN_PASSWORD_LEN} characters)")
    if not digits_only and len(pin) < MIN_PASSWORD_LEN:
        return (f"a password must have at least {MIN_PASSWORD_LEN} characters "
                f"(or use a PIN of at least {MIN_PIN_DIGITS} digits)")
    folded = pin.casefold()
    if folded in COMMON_PINS:
        return "this PIN is one of the most common ones; choose another"
    if _is_repeated(folded):
        return "the PIN must not be a repeated pattern"
    if _is_sequence(folded):
        return "the PIN must not be a sequence"
    if digits_only and _is_date(pin):
        return "the PIN must not look like a date"
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
             p: int = SCRYPT_P, check: bool = True) -> str:
    """The storable salted scrypt hash of a PIN (PinError for an unacceptable PIN).

    ``check=False`` skips the policy (re-hashing a PIN that was accepted under an older one).
    """
    problem = pin_problem(pin) if check else None
    if problem:
        raise PinError(problem)
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES,
                         maxmem=_MAXMEM)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


_DAMAGED = ("the stored admin PIN is damaged; reset it with `faceguard admin reset-pin` "
            "(see README, Admin PIN)")


def hash_parameters(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """``(n, r, p, salt, key)`` of a stored hash (PinError when it is unreadable)."""
    try:
        scheme, n_text, r_text, p_text, salt_text, key_text = stored.split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt = base64.b64decode(salt_text, validate=True)
        key = base64.b64decode(key_text, validate=True)
    except ValueError as error:
        raise PinError(_DAMAGED) from error
    if scheme != "scrypt" or not (2 <= n <= _MAX_COST and n & (n - 1) == 0) or \
            not (1 <= r <= 32 and 1 <= p <= 16) or not salt or not key or \
            128 * n * r > _MAXMEM // 2:
        raise PinError(_DAMAGED)
    return n, r, p, salt, key


def verify_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` matches the stored hash (PinError when the hash is unreadable)."""
    n, r, p, salt, key = hash_parameters(stored)
    candidate = hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(key),
                               maxmem=_MAXMEM)
    return hmac.compare_digest(candidate, key)


def needs_rehash(stored: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> bool:
    """True when the stored hash is cheaper than the given cost (re-hash after a good try)."""
    stored_n, stored_r, stored_p, _, _ = hash_parameters(stored)
    return stored_n * stored_r * stored_p < n * r * p


def tries_text(count: int) -> str:
    """'1 try', '4 tries'."""
    return f"{count} try" if count == 1 else f"{count} tries"


@dataclass(frozen=True)
class PinCheck:
    """The answer to one PIN try."""

    ok: bool
    locked: bool = False
    tries_left: int = MAX_TRIES
    retry_in_s: float = 0.0

    def message(self) -> str:
        """What to tell the person at the screen."""
        if self.ok:
            return "PIN accepted"
        if self.locked:
            return f"Too many wrong tries. Admin is locked for {self.retry_in_s:.0f} s."
        return f"Wrong PIN. {tries_text(self.tries_left)} left."


@dataclass(frozen=True)
class PinState:
    """What a :class:`PinStore` keeps: the hash, wrong tries in a row, the lock's end."""

    pin_hash: str | None = None
    failures: int = 0
    locked_until: float | None = None  # seconds since the epoch (wall clock)


class PinStore(Protocol):
    """Where the PIN hash and the lock-out state are kept (the face library in the product)."""

    def load_pin_state(self) -> PinState:
        """The current state."""
        ...

    def save_pin_lock(self, failures: int, locked_until: float | None) -> None:
        """Record wrong tries in a row and the lock's end (None: not locked)."""
        ...

    def save_pin_hash(self, pin_hash: str) -> None:
        """Store a new hash (and clear the lock)."""
        ...


class MemoryPinStore:
    """A :class:`PinStore` in memory: the state is gone when the process ends."""

    def __init__(self, pin_hash: str | None = None) -> None:
        self.state = PinState(pin_hash)

    def load_pin_state(self) -> PinState:
        return self.state

    def save_pin_lock(self, failures: int, locked_until: float | None) -> None:
        self.state = PinState(self.state.pin_hash, failures, locked_until)

    def save_pin_hash(self, pin_hash: str) -> None:
        self.state = PinState(pin_hash)


class PinGate:
    """Checks PIN tries against the stored hash with a lock-out.

    The state is read from ``store`` before each try and written after it, so a restart (or
    a second window on the same library) sees the same count and lock. ``stored_hash`` alone
    makes an in-memory store. ``clock`` gives wall-clock seconds (injectable for tests).
    """

    def __init__(self, stored_hash: str | None = None, *, store: PinStore | None = None,
                 lock_s: float = 60.0, max_tries: int = MAX_TRIES,
                 clock: Callable[[], float] = time.time,
                 cost: tuple[int, int, int] = (SCRYPT_N, SCRYPT_R, SCRYPT_P)) -> None:
        self.store: PinStore = store if store is not None else MemoryPinStore(stored_hash)
        self.lock_s = lock_s
        self.max_tries = max_tries
        self.clock = clock
        self.cost = cost
        self._state = PinState(stored_hash)
        self._refresh()

    def _refresh(self) -> PinState:
        try:
            self._state = self.store.load_pin_state()
        except LibraryClosedError:
            raise  # a caller that outlived the library: refused, not answered from memory
        except FaceGuardError as error:  # keep the last state seen
            log.warning("admin PIN state not read: %s", error)
        return self._state

    def _save_lock(self, failures: int, locked_until: float | None) -> None:
        self._state = PinState(self._state.pin_hash, failures, locked_until)
        try:
            self.store.save_pin_lock(failures, locked_until)
        except LibraryClosedError:
            raise
        except FaceGuardError as error:  # e.g. a read-only library: the lock stays in memory
            log.warning("admin lock-out state not saved: %s", error)

    @property
    def stored_hash(self) -> str | None:
        return self._refresh().pin_hash

    @property
    def failures(self) -> int:
        return self._state.failures

    @property
    def has_pin(self) -> bool:
        return bool(self.stored_hash)

    def remaining_lock_s(self) -> float:
        """Seconds until admin unlocks again (0 when not locked)."""
        state = self._refresh()
        if state.locked_until is None:
            return 0.0
        now = self.clock()
        left = state.locked_until - now
        if left <= 0:
            self._save_lock(0, None)
            return 0.0
        if left > self.lock_s:  # the clock was set back: never lock longer than lock_s
            self._save_lock(state.failures, now + self.lock_s)
            return self.lock_s
        return left

    def attempt(self, pin: str) -> PinCheck:
        """Check one try. While locked, no try is checked at all."""
        left = self.remaining_lock_s()
        stored = self._state.pin_hash
        if not stored:
            raise PinError("no admin PIN has been set")
        if left > 0:
            return PinCheck(False, True, 0, left)
        if verify_pin(pin, stored):
            if self._state.failures:
                self._save_lock(0, None)
            n, r, p = self.cost
            if needs_rehash(stored, n=n, r=r, p=p):
                self._save_hash(hash_pin(pin, n=n, r=r, p=p, check=False))
            return PinCheck(True, tries_left=self.max_tries)
        failures = self._state.failures + 1
        if failures >= self.max_tries:
            self._save_lock(failures, self.clock() + self.lock_s)
            return PinCheck(False, True, 0, self.lock_s)
        self._save_lock(failures, None)
        return PinCheck(False, False, self.max_tries - failures)

    def _save_hash(self, pin_hash: str) -> None:
        try:
            self.store.save_pin_hash(pin_hash)
        except LibraryClosedError:
            raise
        except FaceGuardError as error:
            log.warning("admin PIN not re-hashed: %s", error)
            return
        self._state = PinState(pin_hash)

    def set_pin(self, pin: str) -> str:
        """Set a new PIN (PinError when it breaks the policy); returns the stored hash."""
        n, r, p = self.cost
        pin_hash = hash_pin(pin, n=n, r=r, p=p)
        self.store.save_pin_hash(pin_hash)
        self._state = PinState(pin_hash)
        return pin_hash
