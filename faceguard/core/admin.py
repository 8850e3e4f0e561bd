"""The admin credential, kept in the face library it protects.

The PIN hash and the lock-out state (wrong tries in a row, the end of a lock) live in the
library's ``admin`` table, so deleting or damaging settings.json neither resets the PIN nor
lifts a lock, and restarting the app does not unlock it. A ``pin_hash`` left in settings.json by
an older FaceGuard is moved into the library once and dropped from the settings.

A library that has been protected by a PIN (or that already held people or events when it was
upgraded, its PIN then being in settings.json) and has no credential is never set up afresh:
the window asks for recovery, which is ``faceguard admin reset-pin`` run by someone with access
to the data folder (it is audited).
"""

from __future__ import annotations

import enum
import getpass
import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

from faceguard.core.context import AppContext
from faceguard.core.pin import (
    MemoryPinStore,
    PinError,
    PinGate,
    PinState,
    PinStore,
    hash_parameters,
    hash_pin,
)
from faceguard.errors import LibraryError
from faceguard.library.database import FaceLibrary
from faceguard.settings import SettingsError, save_settings

log = logging.getLogger(__name__)

RECOVERY_COMMAND = "faceguard --data-dir DATA_FOLDER admin reset-pin"


class CredentialState(enum.Enum):
    """Whether the admin PIN is there, may be chosen now, or must be recovered."""

    SET = "set"
    FIRST_RUN = "first_run"
    RECOVERY = "recovery"


def recovery_message(ctx: AppContext) -> str:
    """What to tell an admin when the library's PIN is missing."""
    return (f"The admin PIN of the face library in {ctx.data_dir} is missing, and the library "
            "is in use (it was protected by a PIN, or holds people or events), so FaceGuard "
            "does not start afresh. To choose a new PIN, someone with access to the data folder "
            f"runs `faceguard --data-dir {ctx.data_dir} admin reset-pin` (it is written to the "
            "audit log); then reopen FaceGuard.")


class LibraryPinStore:
    """A :class:`~faceguard.core.pin.PinStore` over the library's ``admin`` row."""

    def __init__(self, library: FaceLibrary) -> None:
        self.library = library

    def load_pin_state(self) -> PinState:
        state = self.library.admin_state()
        until = None if state.locked_until is None else state.locked_until.timestamp()
        return PinState(state.pin_hash, state.failures, until)

    def save_pin_lock(self, failures: int, locked_until: float | None) -> None:
        until = None if locked_until is None else datetime.fromtimestamp(locked_until, UTC)
        self.library.set_admin_lock(failures, until)

    def save_pin_hash(self, pin_hash: str) -> None:
        self.library.set_admin_pin(pin_hash, actor=None)  # the caller writes the audit entry


def adopt_settings_pin(ctx: AppContext) -> str | None:
    """Move a ``pin_hash`` from settings.json into the library (once) and drop it there.

    Returns the legacy hash when it could not be stored (a read-only or damaged library):
    it is then used from memory for this session. A library that already has a PIN keeps it.
    """
    legacy = ctx.settings.pin_hash
    if not legacy:
        return None
    try:
        hash_parameters(legacy)
    except PinError:
        log.warning("the pin_hash in settings.json is damaged; ignored")
        return None
    try:
        if not ctx.library.admin_state().pin_hash:
            ctx.library.set_admin_pin(legacy, actor="system", action="pin_moved_to_library",
                                      details={"from": "settings.json"})
    except LibraryError as error:
        log.warning("the admin PIN stays in settings.json for now: %s", error)
        return legacy
    settings = ctx.settings.replace(pin_hash=None)
    try:
        save_settings(settings, ctx.data_dir)
    except SettingsError as error:  # the library has it now; the stale copy is harmless
        log.warning("the old PIN hash could not be removed from settings.json: %s", error)
    ctx.settings = settings
    return None


def pin_gate(ctx: AppContext, *, clock: Callable[[], float] | None = None) -> PinGate:
    """The PIN gate for a context: its state in the library (in memory only when the library
    cannot hold it yet)."""
    legacy = adopt_settings_pin(ctx)
    store: PinStore = MemoryPinStore(legacy) if legacy else LibraryPinStore(ctx.library)
    return PinGate(store=store, lock_s=float(ctx.settings.admin_lock_s),
                   clock=clock or time.time)


def credential_state(ctx: AppContext, gate: PinGate) -> CredentialState:
    """SET when a PIN exists; FIRST_RUN for a library never protected; else RECOVERY."""
    if gate.has_pin:
        return CredentialState.SET
    if not isinstance(gate.store, LibraryPinStore):
        return CredentialState.FIRST_RUN
    try:
        protected = ctx.library.admin_state().protected
    except LibraryError:
        protected = True  # cannot tell: never start afresh on a library we cannot read
    return CredentialState.RECOVERY if protected else CredentialState.FIRST_RUN


def reset_pin(ctx: AppContext, pin: str, *, actor: str = "cli") -> None:
    """Set a new admin PIN from the command line and lift any lock (audited as reset_pin).

    Needs write access to the library; the PIN must meet the policy (PinError otherwise).
    """
    library = ctx.library
    if library.read_only:
        raise LibraryError(f"the face library {library.path} is read-only; run this as the user "
                           "who owns the data folder")
    pin_hash = hash_pin(pin)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    library.set_admin_pin(pin_hash, actor=actor, action="reset_pin",
                          details={"user": user, "host": socket.gethostname()})
    if ctx.settings.pin_hash:
        adopt_settings_pin(ctx)  # drops the stale hash from settings.json

