"""The admin PIN: a salted scrypt hash in the settings, and a lock-out after wrong tries.

Stored form: ``scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>`` (hashlib.scrypt, 16-byte random
salt, 32-byte key). Verification recomputes with the stored parameters and compares in constant
time. Five wrong tries in a row lock the admin screens for ``lock_s`` seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from faceguard.errors import FaceGuardError

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PIN_LEN = 4
MAX_PIN_LEN = 64
MAX_TRIES = 5
_MAX_COST = 2**20  # refuse stored parameters that would take too long or too much memory


class PinError(FaceGuardError):
    """A PIN is not acceptable, or the stored hash is unreadable."""


def pin_problem(pin: str) -> str | None:
    """Why a new PIN is not acceptable (None when it is fine)."""
    if len(pin) < MIN_PIN_LEN:
        return f"the PIN must have at least {MIN_PIN_LEN} characters"
    if len(pin) > MAX_PIN_LEN:
        return f"the PIN must have at most {MAX_PIN_LEN} characters"
    if pin != pin.strip():
        return "the PIN must not start or end with a space"
    if len(set(pin)) == 1:
        return "the PIN must not be one character repeated"
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
             p: int = SCRYPT_P) -> str:
    """The storable salted scrypt hash of a PIN (PinError for an unacceptable PIN)."""
    problem = pin_problem(pin)
    if problem:
        raise PinError(problem)
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` matches the stored hash (PinError when the hash is unreadable)."""
    try:
        scheme, n_text, r_text, p_text, salt_text, key_text = stored.split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt = base64.b64decode(salt_text, validate=True)
        key = base64.b64decode(key_text, validate=True)
    except ValueError as error:
        raise PinError("the stored admin PIN is damaged; reset it in settings.json") from error
    if scheme != "scrypt" or not (2 <= n <= _MAX_COST and n & (n - 1) == 0) or \
            not (1 <= r <= 32 and 1 <= p <= 16) or not salt or not key:
        raise PinError("the stored admin PIN is damaged; reset it in settings.json")
    candidate = hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(key),
                               maxmem=256 * 1024 * 1024)
    return hmac.compare_digest(candidate, key)


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
        return f"Wrong PIN. {self.tries_left} tries left."


class PinGate:
    """Checks PIN tries against a stored hash with a lock-out; ``clock`` is injectable."""

    def __init__(self, stored_hash: str | None, *, lock_s: float = 60.0,
                 max_tries: int = MAX_TRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stored_hash = stored_hash
        self.lock_s = lock_s
        self.max_tries = max_tries
        self.clock = clock
        self.failures = 0
        self.locked_until: float | None = None

    @property
    def has_pin(self) -> bool:
        return bool(self.stored_hash)

    def remaining_lock_s(self) -> float:
        """Seconds until admin unlocks again (0 when not locked)."""
        if self.locked_until is None:
            return 0.0
        left = self.locked_until - self.clock()
        if left <= 0:
            self.locked_until = None
            self.failures = 0
            return 0.0
        return left

    def attempt(self, pin: str) -> PinCheck:
        """Check one try. While locked, no try is checked at all."""
        if not self.stored_hash:
            raise PinError("no admin PIN has been set")
        left = self.remaining_lock_s()
        if left > 0:
            return PinCheck(False, True, 0, left)
        if verify_pin(pin, self.stored_hash):
            self.failures = 0
            return PinCheck(True, tries_left=self.max_tries)
        self.failures += 1
        if self.failures >= self.max_tries:
            self.locked_until = self.clock() + self.lock_s
            return PinCheck(False, True, 0, self.lock_s)
        return PinCheck(False, False, self.max_tries - self.failures)

    def set_pin(self, pin: str) -> str:
        """Set a new PIN; returns the hash to store in the settings."""
        self.stored_hash = hash_pin(pin)
        self.failures = 0
        self.locked_until = None
        return self.stored_hash
