"""Everything one FaceGuard process works with: data folder, settings, library, engine, matcher."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceguard.core.enrolment import ConsentGiven, Enroller
from faceguard.core.face_data_encryption import FaceDataEncryption
from faceguard.core.library_access import LIBRARY_FILE, open_library
from faceguard.core.listeners import Listeners
from faceguard.core.model_calibration import model_calibration
from faceguard.core.notice import notice_version
from faceguard.core.operating_point import (
    OperatingPoint,
    calibrated_thresholds,
    embedder_location,
    operating_point,
)
from faceguard.core.pin import hash_pin
from faceguard.core.roles import Permission, may
from faceguard.errors import LibraryClosedError, LibraryError
from faceguard.fleet.config import FleetConfig
from faceguard.fleet.engine import SyncEngine
from faceguard.fleet.status import FleetStatus, SyncReport
from faceguard.fleet.sync_loop import SyncLoop
from faceguard.library import accounts, audit_chain
from faceguard.library.accounts import Account
from faceguard.library.audit_chain import ChainReport
from faceguard.library.backup import KioskLock, hold_kiosk_lock
from faceguard.library.consent import clean_who, consent_required
from faceguard.library.database import FaceLibrary, Person
from faceguard.library.matcher import Matcher
from faceguard.library.person_export import ExportSummary, export_person
from faceguard.library.template_index import Fusion
from faceguard.paths import data_dir
from faceguard.settings import OPTIONS, Settings, load_settings, save_settings
from faceguard.vision.engine import FaceEngine

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from faceguard.core.admin import SignIn


class AppContext(FaceDataEncryption):
    """Lazily opens what a command needs; one per process (CLI run, GUI session). Its
    encryption verbs are :class:`~faceguard.core.face_data_encryption.FaceDataEncryption`'s."""

    def __init__(self, data_folder: str | os.PathLike[str] | None = None, *,
                 min_face: int | None = None, settings: Settings | None = None,
                 create: bool = True,
                 passphrase_file: str | os.PathLike[str] | None = None) -> None:
        self.data_dir = data_dir(data_folder)
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise LibraryError(f"the data folder {self.data_dir} is a file, not a folder; point "
                               "--data-dir or $FACEGUARD_DATA_DIR at a folder")
        self.create = create
        self._kiosk_lock: KioskLock | None = None
        self._sync_loop: SyncLoop | None = None
        self._person_listeners: Listeners[int] = Listeners()
        self.closed = False  # set by close(): the library is never opened again
        self.settings = settings or load_settings(self.data_dir)
        self.min_face = int(min_face or self.settings.min_face_px)
        self.signed_in: Account | None = None  # the admin account of the window's session
        self.passphrase_file = passphrase_file  # else $FACEGUARD_PASSPHRASE (encryption)

    @property
    def library_path(self) -> Path:
        return self.data_dir / LIBRARY_FILE

    @cached_property
    def library(self) -> FaceLibrary:
        """The face library; the data folder is created on first use.

        With ``create=False`` (commands that only read) neither the folder nor the database
        is ever created: a missing one is a LibraryError that says where it was looked for.
        An encrypted library gets its key (:mod:`faceguard.core.library_access`).
        LibraryClosedError after :meth:`close`.
        """
        if self.closed:
            raise LibraryClosedError("The face library is not opened again: FaceGuard has "
                                     "closed this context.")
        return open_library(self.data_dir, self.library_path, create=self.create,
                            passphrase_file=self.passphrase_file)

    @cached_property
    def engine(self) -> FaceEngine:
        path, sha = embedder_location(self.settings)
        return FaceEngine.load(min_face=self.min_face, embedder_path=path, embedder_sha256=sha,
                               mirror=model_calibration(path).mirror)

    @cached_property
    def operating_point(self) -> OperatingPoint:
        path, _ = embedder_location(self.settings)
        return operating_point(self.settings, path)

    def calibrated_thresholds(self) -> dict[str, float]:
        """The model's calibrated threshold at each strictness level it was calibrated for
        (what each level of ``recognition.strictness`` means), whatever the settings say."""
        path, _ = embedder_location(self.settings)
        return calibrated_thresholds(path)

    @cached_property
    def fusion(self) -> Fusion:
        """The template-fusion rule the model's threshold was calibrated with (its manifest
        entry's ``fusion``; best template alone when it names none)."""
        return model_calibration(embedder_location(self.settings)[0]).fusion

    @cached_property
    def matcher(self) -> Matcher:
        """Matcher over the library, re-embedding templates of an older model first."""
        self.sync_templates()
        point = self.operating_point
        return Matcher.from_library(self.library, self.engine.model_id, point.threshold,
                                    point.margin, self.fusion)

    def apply_settings(self, new: Settings, *, actor: str) -> dict[str, list[object]]:
        """Make ``new`` the settings in force: save them (SettingsError leaves everything as
        it was), audit what changed, recompute the operating point and hand it to the matcher.

        Returns the changed dotted keys with ``[old, new]`` values.
        """
        old = self.settings
        changes: dict[str, list[object]] = {
            option.key: [option.shown(getattr(old, option.name)) if option.secret
                         else getattr(old, option.name),
                         option.shown(getattr(new, option.name)) if option.secret
                         else getattr(new, option.name)]
            for option in OPTIONS if getattr(old, option.name) != getattr(new, option.name)}
        operating_point(new, embedder_location(new)[0])  # a level never calibrated: refused
        save_settings(new, self.data_dir)
        self.settings = new
        self.__dict__.pop("operating_point", None)  # recomputed from the new settings
        if "matcher" in self.__dict__:
            point = self.operating_point
            self.matcher.threshold, self.matcher.margin = point.threshold, point.margin
        if changes and (self.create or self.library_path.is_file()):
            self.library.audit(actor, "settings_changed", changes)
        return changes

    # -- the product's verbs on people: the library, the matcher and every listener in step --

    def on_person_changed(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Call ``listener(person_id)`` after a person is renamed, edited or removed (the
        kiosk drops its cached names and votes about them); returns what removes it again
        (a window that closes or moves to another context)."""
        return self._person_listeners.add(listener)

    def enroller(self, actor: str, *, consent: ConsentGiven | None = None) -> Enroller:
        """The enrolment verbs (enrol, add photos, import a folder) for ``actor``; a new
        person gets ``consent`` recorded with them, and needs it when the site requires
        consent (:meth:`consent_required`)."""
        return Enroller(self.engine, self.library, self.matcher, self.min_face, actor=actor,
                        on_person_removed=self._person_listeners.notify, consent=consent,
                        consent_required=self.consent_required())

    def person_named(self, name: str, *, include_inactive: bool = True) -> Person:
        """The person with this name (case-insensitive; an active one first, then, with
        ``include_inactive``, the newest inactive one); LibraryError when there is none."""
        person = self.library.find_person_by_name(name, include_inactive=include_inactive)
        if person is None:
            raise LibraryError(f"no person named {name!r}")
        return person

    def update_person(self, person_id: int, *, actor: str, **changes: Any) -> Person:
        """Rename or edit a person (LibraryError with the reason when refused)."""
        person = self.library.update_person(person_id, actor=actor, **changes)
        self._person_listeners.notify(person_id)
        return person

    def remove_person(self, person_id: int, *, actor: str,
                      forget_event_crops: bool = False) -> None:
        """Delete a person and their templates and drop them from live matching."""
        self.library.remove_person(person_id, forget_event_crops=forget_event_crops,
                                   actor=actor)
        if "matcher" in self.__dict__:
            self.matcher.remove_person(person_id)
        self._person_listeners.notify(person_id)

    def sync_templates(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed templates made by another model from their stored crops; returns count.

        Each batch is committed on its own, so an upgrade stopped part-way (even by kill -9)
        keeps what it did and the next call resumes with the rest; ``progress(done, total)``
        follows it batch by batch.
        """
        stale = self.library.templates_needing_reembed(self.engine.model_id)
        if not stale:
            return 0
        embedder = self.engine.embedder
        result = self.library.reembed(embedder.model_id, lambda crops: embedder.embed(
            np.stack(crops)), actor="system", progress=progress, commit_each_batch=True)
        return result.updated

    # -- admin accounts (roles: faceguard.core.roles), consent, the audit chain --------------

    @property
    def actor(self) -> str:
        """Who the audit names for an admin action now: the signed-in account, else
        ``admin`` (first run, before any account exists)."""
        return self.signed_in.name if self.signed_in is not None else "admin"

    def sign_in(self, account: str, pin: str, *, purpose: str = "",
                clock: Callable[[], float] | None = None) -> SignIn:
        """Check an account's PIN (its lock-out, audited under its name); on success it
        is the signed-in account until :meth:`sign_out`."""
        from faceguard.core.admin import sign_in  # admin builds on this module

        result = sign_in(self, account, pin, purpose=purpose, clock=clock)
        if result.ok:
            self.signed_in = result.account
        return result

    def sign_out(self) -> None:
        """Nobody is signed in any more."""
        self.signed_in = None

    def may(self, permission: Permission) -> bool:
        """Whether the signed-in account's role allows ``permission``."""
        return self.signed_in is not None and may(self.signed_in.role, permission)

    def list_accounts(self) -> list[Account]:
        """The admin accounts, by name."""
        return accounts.list_accounts(self.library)

    def add_account(self, name: str, role: str, pin: str, *, actor: str) -> Account:
        """Add an admin account with its own PIN (PinError when the PIN breaks the policy,
        LibraryError when the name is taken or the role unknown); audited under ``actor``."""
        accounts.check_role(role)
        return accounts.add_account(self.library, name, role, hash_pin(pin), actor=actor)

    def remove_account(self, name: str, *, actor: str) -> None:
        """Remove an admin account (never the last administrator); audited."""
        accounts.remove_account(self.library, name, actor=actor)

    def change_account_pin(self, name: str, pin: str, *, actor: str) -> None:
        """Give an account a new PIN and lift its lock-out; audited."""
        accounts.set_pin_hash(self.library, name, hash_pin(pin), actor=actor)

    def set_account_role(self, name: str, role: str, *, actor: str) -> None:
        """Change an account's role (the last administrator stays one); audited."""
        accounts.set_role(self.library, name, role, actor=actor)

    def consent_required(self) -> bool:
        """Whether enrolling a new person needs a consent record (``consent.required``)."""
        return consent_required(self.library, self.settings.consent_required)

    def notice_version(self) -> str:
        """The version of the retention notice the settings make (consent refers to it)."""
        return notice_version(self.settings)

    def consent_for(self, given_by: str | None) -> ConsentGiven | None:
        """The consent an enrolment records: None when no one is named, else who gave it
        and the notice version in force (LibraryError for a bad name)."""
        if given_by is None:
            return None
        return ConsentGiven(clean_who(given_by), self.notice_version())

    def verify_audit(self, expect_head: str | None = None) -> ChainReport:
        """Walk the audit chain (see :mod:`faceguard.library.audit_chain`)."""
        with self.library.reading("checking the audit log") as conn:
            return audit_chain.verify(conn, expect_head=expect_head)

    def export_person(self, person_id: int, out: str | os.PathLike[str], *,
                      actor: str) -> ExportSummary:
        """Write everything held about a person to a ZIP file; audited (without the path's
        folder, which may name the person)."""
        summary = export_person(self.library, person_id, out)
        try:
            self.library.audit(actor, "export_person", {"person_id": person_id,
                                                        "templates": summary.templates,
                                                        "events": summary.events})
        except LibraryError as error:
            if not self.library.read_only:
                raise
            log.warning("the export is not in the audit log: %s", error)
        return summary

    # -- the fleet: one library shared by many doors through a server (faceguard.fleet) ----

    def fleet_status(self) -> FleetStatus:
        """"synced", "offline since 10:42, 37 entries waiting", last sync (no network)."""
        from faceguard.fleet.status import FleetStatus, fleet_status

        if not (self.data_dir / "fleet.json").is_file():
            return FleetStatus(joined=False)
        return fleet_status(self.library, self.data_dir)

    def join_fleet(self, dsn: str, name: str, *, ca_file: str | None = None,
                   actor: str) -> FleetConfig:
        """Register this data folder as kiosk ``name`` on the server (``dsn``: an admin role,
        used once, never stored); the kiosk's name in the log becomes ``name``; audited."""
        from faceguard.fleet import local
        from faceguard.fleet.config import join

        config = join(self.data_dir, dsn, name, ca_file=ca_file)
        if self.settings.kiosk_name != config.kiosk_name:
            self.apply_settings(self.settings.replace(kiosk_name=config.kiosk_name),
                                actor=actor)
        queued = local.mark_joined(self.library, config.kiosk_id, config.kiosk_name)
        self.library.audit(actor, "fleet_joined", {"kiosk": config.kiosk_name,
                                                   "server": config.where(),
                                                   "queued": queued})
        return config

    @cached_property
    def sync_engine(self) -> SyncEngine:
        """The sync rounds of this joined kiosk (ServerError when it has not joined); the
        server's changes reach the matcher and every person listener."""
        from faceguard import __version__
        from faceguard.fleet.engine import SyncEngine

        engine = SyncEngine.for_data_dir(self.library, self.data_dir,
                                         software=f"faceguard {__version__}")
        engine.on_changed = self._fleet_changed
        return engine

    def _fleet_changed(self, person_ids: set[int]) -> None:
        if "matcher" in self.__dict__:
            from faceguard.fleet.local import kept_change_counts

            if self.library.templates_needing_reembed(self.engine.model_id):
                with kept_change_counts(self.library):  # made by another model: re-embedded
                    self.sync_templates()  # here, from their crops, and not sent back
            self.matcher.reload()
        for person_id in sorted(person_ids):
            self._person_listeners.notify(person_id)

    def door_names(self) -> list[str]:
        """The kiosks (doors) whose entries this library holds, by name."""
        from faceguard.fleet.local import kiosk_names

        return kiosk_names(self.library)

    def sync_now(self) -> SyncReport:
        """One sync round (up, then down); ServerError when the server cannot be reached."""
        return self.sync_engine.sync_once()

    def start_sync(self, on_status: Callable[[FleetStatus], None] | None = None
                   ) -> SyncLoop | None:
        """The background sync of a joined kiosk (None when it has not joined), stopped by
        :meth:`close`; never blocks the caller."""
        from faceguard.fleet.sync_loop import SyncLoop

        if not (self.data_dir / "fleet.json").is_file():
            return None
        if self._sync_loop is None:
            settings = self.settings
            self._sync_loop = SyncLoop(self.sync_engine, self.data_dir,
                                       interval_s=settings.fleet_interval_s,
                                       backoff_s=(1.0, settings.fleet_backoff_max_s),
                                       on_status=on_status).start()
        return self._sync_loop

    def hold_kiosk_lock(self) -> None:
        """Mark the data folder as used by a running kiosk until :meth:`close` (a restore
        refuses meanwhile); see :class:`faceguard.library.backup.KioskLock`."""
        if getattr(self, "_kiosk_lock", None) is None and self.data_dir.is_dir():
            self._kiosk_lock = hold_kiosk_lock(self.data_dir)

    def close(self) -> None:
        """Stop the sync, close the library, release the kiosk lock; later calls that need
        the library raise :class:`LibraryClosedError`."""
        self.closed = True
        self._person_listeners.clear()
        loop, self._sync_loop = getattr(self, "_sync_loop", None), None
        if loop is not None:
            loop.stop()
        if "sync_engine" in self.__dict__:
            self.sync_engine.close()
        if "library" in self.__dict__:
            self.library.close()
        lock = getattr(self, "_kiosk_lock", None)
        if lock is not None:
            lock.release()
            self._kiosk_lock = None
