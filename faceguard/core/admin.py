"""The admin credential, kept in the face library it protects.

The PIN hash and the lock-out state (wrong tries in a row, the end of a lock) live in the
library's ``admin`` table, so deleting or damaging settings.json neither resets the PIN nor
lifts a lock, and restarting the app does not unlock it. A ``pin_hash`` left in settings.json by
an older FaceGuard is moved into the library once and dropped from the settings.

A library that has been protected by a PIN (or that already held people or events when it was
upgraded, its PIN then being in settings.json) and has no credential is never set up afresh:
the window asks for recovery, which is ``faceguard admin reset-pin`` run by someone with access
to the data folder (it is audited).

Since migration 011 the credential is a set of admin accounts (:mod:`faceguard.library.accounts`),
each with a role (:mod:`faceguard.core.roles`), its own PIN and its own lock-out; the old single
PIN became the administrator account ``admin``. :class:`AccountPinStore` is the
:class:`~faceguard.core.pin.PinStore` of one account and :func:`sign_in` checks a try for a
named account, auditing it under that name.
"""

from __future__ import annotations

import enum
import getpass
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from faceguard.core.context import AppContext
from faceguard.core.pin import (
    MAX_TRIES,
    MemoryPinStore,
    PinCheck,
    PinError,
    PinGate,
    PinState,
    PinStore,
    hash_parameters,
    hash_pin,
    verify_pin,
)
from faceguard.errors import LibraryError
from faceguard.library.accounts import (
    FIRST_ACCOUNT,
    Account,
    add_account,
    find_account,
    list_accounts,
    set_lock,
    set_pin_hash,
)
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


class AccountPinStore:
    """A :class:`~faceguard.core.pin.PinStore` over one admin account in the library.

    Storing a hash for an account that does not exist yet creates it as an administrator
    (the first-run PIN, a legacy PIN moved out of settings.json).
    """

    def __init__(self, library: FaceLibrary, account: str = FIRST_ACCOUNT) -> None:
        self.library = library
        self.account = account

    def load_pin_state(self) -> PinState:
        found = find_account(self.library, self.account)
        if found is None:
            return PinState()
        until = None if found.locked_until is None else found.locked_until.timestamp()
        return PinState(found.pin_hash, found.failures, until)

    def save_pin_lock(self, failures: int, locked_until: float | None) -> None:
        until = None if locked_until is None else datetime.fromtimestamp(locked_until, UTC)
        set_lock(self.library, self.account, failures, until)

    def save_pin_hash(self, pin_hash: str) -> None:
        if find_account(self.library, self.account) is None:
            add_account(self.library, self.account, "administrator", pin_hash, actor="system")
        else:  # the caller writes the audit entry
            set_pin_hash(self.library, self.account, pin_hash, actor=None)


LibraryPinStore = AccountPinStore  # the name before accounts (one PIN: the account "admin")


def default_account(library: FaceLibrary) -> str:
    """The account a PIN dialog offers first: the only one, else the first administrator,
    else ``admin`` (first run)."""
    accounts = list_accounts(library)
    if len(accounts) == 1:
        return accounts[0].name
    for account in accounts:
        if account.role == "administrator":
            return account.name
    return accounts[0].name if accounts else FIRST_ACCOUNT


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
        if not list_accounts(ctx.library):
            add_account(ctx.library, FIRST_ACCOUNT, "administrator", legacy, actor="system")
            ctx.library.audit("system", "pin_moved_to_library",
                              {"from": "settings.json", "account": FIRST_ACCOUNT})
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


def pin_gate(ctx: AppContext, *, clock: Callable[[], float] | None = None,
             account: str | None = None) -> PinGate:
    """The PIN gate of one account (default: :func:`default_account`): its state in the
    library (in memory only when the library cannot hold it yet)."""
    legacy = adopt_settings_pin(ctx)
    store: PinStore = MemoryPinStore(legacy) if legacy else AccountPinStore(
        ctx.library, account or default_account(ctx.library))
    return PinGate(store=store, lock_s=float(ctx.settings.admin_lock_s),
                   clock=clock or time.time)


def credential_state(ctx: AppContext, gate: PinGate) -> CredentialState:
    """SET when an account exists; FIRST_RUN for a library never protected; else RECOVERY."""
    if not isinstance(gate.store, AccountPinStore):
        return CredentialState.SET if gate.has_pin else CredentialState.FIRST_RUN
    try:
        if list_accounts(ctx.library):
            return CredentialState.SET
        protected = ctx.library.admin_state().protected
    except LibraryError:
        protected = True  # cannot tell: never start afresh on a library we cannot read
    return CredentialState.RECOVERY if protected else CredentialState.FIRST_RUN


def reset_pin(ctx: AppContext, pin: str, *, actor: str = "cli",
              account: str | None = None) -> str:
    """Set a new PIN for an account (default: the first administrator; ``admin`` is created
    when no account is left) from the command line and lift its lock (audited as reset_pin).

    Needs write access to the library; the PIN must meet the policy (PinError otherwise).
    Returns the account's name.
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
    details = {"user": user, "host": socket.gethostname()}
    name = account or default_account(library)
    found = find_account(library, name)
    if found is None and account is not None and list_accounts(library):
        raise LibraryError(f"there is no admin account named {account!r}")
    if found is None:
        add_account(library, name, "administrator", pin_hash, actor=actor)
        library.audit(actor, "reset_pin", {"account": name, **details})
    else:
        set_pin_hash(library, found.name, pin_hash, actor=actor, action="reset_pin",
                     details=details)
        name = found.name
    if ctx.settings.pin_hash:
        adopt_settings_pin(ctx)  # drops the stale hash from settings.json
    return name


@dataclass(frozen=True)
class SignIn:
    """The answer to one sign-in try: the account (on success) and the PIN check."""

    check: PinCheck
    account: Account | None = None

    @property
    def ok(self) -> bool:
        """True when the PIN was right for that account."""
        return self.check.ok and self.account is not None


_UNKNOWN_ACCOUNT_HASH = hash_pin("not-an-account-9f3b", n=2**10, check=False)


def sign_in(ctx: AppContext, account: str, pin: str, *, purpose: str = "",
            clock: Callable[[], float] | None = None) -> SignIn:
    """Check ``pin`` for ``account`` with that account's lock-out, auditing the try under
    the account's name (``admin_unlock``, ``admin_pin_wrong``, ``admin_locked``).

    An unknown account name costs a hash too and reads like a wrong PIN.
    """
    found = find_account(ctx.library, account) if account.strip() else None
    details: dict[str, object] = {"purpose": purpose} if purpose else {}
    if found is None:
        verify_pin(pin, _UNKNOWN_ACCOUNT_HASH)
        # The name typed is not kept: it may be a PIN typed into the wrong field.
        _audit(ctx, "unknown", "admin_pin_wrong", {"account": "unknown", **details})
        return SignIn(PinCheck(False, tries_left=MAX_TRIES))
    gate = PinGate(store=AccountPinStore(ctx.library, found.name),
                   lock_s=float(ctx.settings.admin_lock_s), clock=clock or time.time)
    check = gate.attempt(pin)
    if check.ok:
        _audit(ctx, found.name, "admin_unlock", details)
        return SignIn(check, find_account(ctx.library, found.name) or found)
    _audit(ctx, found.name, "admin_locked" if check.locked else "admin_pin_wrong", details)
    return SignIn(check)


def _audit(ctx: AppContext, actor: str, action: str, details: dict[str, object]) -> None:
    try:
        ctx.library.audit(actor, action, details)
    except LibraryError as error:  # a read-only library: the try still counts in memory
        log.warning("audit entry %s not written: %s", action, error)
