"""Enrolment: turning photos into face templates, with a reason for every rejected photo.

Identity rules (each refusal names both people and how to resolve it):
- A name already enrolled is refused unless photos are added to that person explicitly
  (:attr:`EnrolMode.ADD`); added photos must look like that person's enrolled photos.
- A face that already matches someone else is refused unless the admin resolves it
  (:class:`LookAlike`: add it to them, replace them, or force it with a reason for the audit).
- A photo file already enrolled for that person (same bytes) is skipped, so an interrupted
  import can be run again without duplicating templates.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceguard.core.photo_checks import PhotoCheck, check_photo, image_files, person_folders
from faceguard.errors import FaceGuardError
from faceguard.library.consent import record_consent
from faceguard.library.database import FaceLibrary, Person, name_key
from faceguard.library.matcher import Matcher
from faceguard.vision.engine import FaceEngine
from faceguard.vision.image_io import encode_jpeg, load_image_with_digest

ALREADY_ENROLLED = "already enrolled for this person (same file)"


class EnrolmentRefused(FaceGuardError):
    """The enrolment as a whole is refused (a name or id clash); the message says why."""


class EnrolMode(enum.StrEnum):
    """Who the photos are for."""

    NEW = "new"  # a new person; a name already enrolled is refused
    ADD = "add"  # more photos of a person already enrolled under this name
    ADD_OR_NEW = "add-or-new"  # folder import: the person of that name, created when missing


class LookAlike(enum.StrEnum):
    """What to do with a photo whose face already matches another enrolled person."""

    REFUSE = "refuse"  # the default: the photo is rejected, naming the other person
    MERGE = "merge"  # it is the other person: add the photo to them instead
    REPLACE = "replace"  # the other person's record is wrong: remove them, enrol this one
    FORCE = "force"  # enrol it anyway (needs a reason; both may be "unknown" at the door)


@dataclass
class PhotoResult:
    """Outcome of enrolling one photo."""

    source: str
    accepted: bool
    reason: str | None = None
    template_id: int | None = None
    warning: str | None = None
    crop: np.ndarray | None = field(default=None, repr=False)
    skipped: bool = False  # already enrolled (same file): neither added nor an error
    conflict: str | None = None  # "lookalike" or "mismatch": refused, the admin may resolve it
    person_name: str | None = None  # whom it was enrolled for (differs after a merge)


@dataclass
class ImportSummary:
    """Outcome of :meth:`Enroller.import_folder`."""

    people: int = 0  # subfolders
    people_enrolled: int = 0  # people who got at least one new photo, or already had them all
    photos: int = 0
    added: int = 0
    skipped: int = 0
    rejected: list[PhotoResult] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (person, why)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (source, warning)

    @property
    def complete(self) -> bool:
        return not self.rejected and not self.refused and self.people_enrolled == self.people


@dataclass
class _Planned:
    check: PhotoCheck
    vector: np.ndarray
    for_person: Person | None  # None: the new person being enrolled
    warning: str | None = None
    audit: dict[str, object] | None = None


@dataclass(frozen=True)
class ConsentGiven:
    """The consent collected before enrolling a new person: who gave it, for which notice."""

    given_by: str
    notice_version: str


class Enroller:
    """Adds people and their photos to the library, keeping the matcher in sync.

    With ``consent_required`` a new person is only created with a ``consent`` (recorded in
    the same transaction as the person); adding photos to someone enrolled needs none.
    """

    def __init__(self, engine: FaceEngine, library: FaceLibrary, matcher: Matcher,
                 min_face: int, actor: str = "admin", *,
                 on_person_removed: Callable[[int], None] | None = None,
                 consent: ConsentGiven | None = None, consent_required: bool = False) -> None:
        self.engine = engine
        self.library = library
        self.matcher = matcher
        self.min_face = min_face
        self.actor = actor
        self.on_person_removed = on_person_removed  # a look-alike "replace" removed someone
        self.consent = consent
        self.consent_required = consent_required

    def check_consent(self, name: str) -> None:
        """Refuse (EnrolmentRefused) a new person without consent where it is required."""
        if self.consent_required and self.consent is None:
            raise EnrolmentRefused(
                f"this site requires consent before enrolment: record who gave it for "
                f"{name} (enroll --consent-by NAME, or the dialog's consent box), or change "
                "the setting consent.required")

    def check_file(self, path: Path) -> PhotoCheck:
        """Load and check one photo file (unreadable files become a rejection reason)."""
        try:
            image, digest = load_image_with_digest(path)
        except FaceGuardError as error:
            return PhotoCheck(str(path), str(error).removeprefix(f"{path}: "))
        check = check_photo(self.engine, image, str(path), self.min_face)
        check.content_sha256 = digest
        return check

    def check_files(self, paths: Sequence[Path], *,
                    progress: Callable[[int, int], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> list[PhotoCheck]:
        """Check photo files in order, reporting ``progress(done, total)``; stops early (with
        the checks so far) once ``cancelled()`` is true."""
        checks = []
        for index, path in enumerate(paths):
            if cancelled is not None and cancelled():
                break
            checks.append(self.check_file(path))
            if progress is not None:
                progress(index + 1, len(paths))
        return checks

    def check_images(self, sources: Sequence[tuple[str, np.ndarray]]) -> list[PhotoCheck]:
        """Check in-memory images (camera captures)."""
        return [check_photo(self.engine, image, name, self.min_face) for name, image in sources]

    def existing(self, name: str) -> Person | None:
        """The active person already enrolled under this name (compared as the library does)."""
        return self.library.find_person_by_name(name)

    def enroll(self, name: str, checks: Iterable[PhotoCheck], *, employee_id: str | None = None,
               department: str | None = None, mode: EnrolMode = EnrolMode.NEW,
               lookalike: LookAlike = LookAlike.REFUSE, reason: str | None = None,
               accept_mismatch: bool = False) -> tuple[Person | None, list[PhotoResult]]:
        """Enrol the accepted photos under ``name`` (see the module's identity rules).

        Nothing is created when no photo is accepted. Raises :class:`EnrolmentRefused` when
        the name or employee id clashes with the person already enrolled.
        """
        checks = list(checks)
        reason = (reason or "").strip() or None
        if lookalike is LookAlike.FORCE and reason is None:
            raise EnrolmentRefused("enrolling a face that matches someone else needs a reason "
                                   "(it is kept in the audit log)")
        target = self._target(name, employee_id, mode)
        results = {c.source: PhotoResult(c.source, False, c.reason) for c in checks if not c.ok}
        fresh = self._skip_known_files(target, [c for c in checks if c.ok], results)
        planned: list[_Planned] = []
        replaced: dict[int, Person] = {}
        if fresh:
            crops = np.stack([c.observation.crop for c in fresh if c.observation is not None])
            vectors = self.engine.embedder.embed(crops)
            for check, vector in zip(fresh, vectors, strict=True):
                plan = self._plan(name, target, check, vector, lookalike, reason,
                                  accept_mismatch, replaced, results)
                if plan is not None:
                    planned.append(plan)
        person = self._apply(name, target, planned, replaced, employee_id, department, reason,
                             results)
        return person, [results[c.source] for c in checks]

    def enroll_files(self, name: str, paths: Sequence[Path], *, employee_id: str | None = None,
                     department: str | None = None, mode: EnrolMode = EnrolMode.NEW,
                     lookalike: LookAlike = LookAlike.REFUSE, reason: str | None = None,
                     accept_mismatch: bool = False,
                     progress: Callable[[int, int], None] | None = None
                     ) -> tuple[Person | None, list[PhotoResult]]:
        """Check and enrol photo files."""
        if mode is not EnrolMode.ADD_OR_NEW:
            self._target(name, employee_id, mode)  # refuse a clash before the slow checks
        checks = []
        for index, path in enumerate(paths):
            checks.append(self.check_file(path))
            if progress:
                progress(index + 1, len(paths))
        return self.enroll(name, checks, employee_id=employee_id, department=department,
                           mode=mode, lookalike=lookalike, reason=reason,
                           accept_mismatch=accept_mismatch)

    def import_folder(self, folder: Path, *,
                      progress: Callable[[int, int], None] | None = None,
                      on_result: Callable[[str, PhotoResult], None] | None = None,
                      cancelled: Callable[[], bool] = lambda: False) -> ImportSummary:
        """Enrol a folder with one subfolder of photos per person (named for the person).

        Idempotent: photos already enrolled for that person are skipped and counted.
        """
        jobs = [(p.name, image_files(p)) for p in person_folders(folder)]
        summary = ImportSummary(people=len(jobs), photos=sum(len(f) for _, f in jobs))
        done = 0
        if progress:
            progress(0, max(summary.photos, 1))
        for name, files in jobs:
            if not files:
                summary.refused.append((name, "no photos"))
                continue
            checks = []
            for path in files:
                if cancelled():
                    return summary
                checks.append(self.check_file(path))
                done += 1
                if progress:
                    progress(done, summary.photos)
            try:
                person, results = self.enroll(name, checks, mode=EnrolMode.ADD_OR_NEW)
            except FaceGuardError as error:
                summary.refused.append((name, str(error)))
                continue
            summary.people_enrolled += person is not None
            for result in results:
                summary.added += result.accepted
                summary.skipped += result.skipped
                if not result.accepted and not result.skipped:
                    summary.rejected.append(result)
                if result.warning:
                    summary.warnings.append((result.source, result.warning))
                if on_result:
                    on_result(name, result)
        return summary

    # -- the identity rules -------------------------------------------------------------------

    def _target(self, name: str, employee_id: str | None, mode: EnrolMode) -> Person | None:
        """The existing person the photos are for (None: a new person), or a refusal."""
        existing = self.existing(name)
        if existing is not None and mode is EnrolMode.NEW:
            who = _describe(existing)
            raise EnrolmentRefused(
                f"{who} is already enrolled; to add these photos to them, add them explicitly "
                "(--add, or 'Add photos to the person already enrolled'); to enrol someone "
                "else, give a different name")
        if existing is None and mode is EnrolMode.ADD:
            raise EnrolmentRefused(f"no one named {name!r} is enrolled to add photos to; "
                                   "enrol them as a new person instead")
        if existing is not None and employee_id is not None and \
                name_key(employee_id) != name_key(existing.employee_id or ""):
            have = f"employee id {existing.employee_id!r}" if existing.employee_id else \
                "no employee id"
            raise EnrolmentRefused(
                f"{existing.name} is enrolled with {have}, not {employee_id!r}; is this "
                "someone else? Give a different name, or leave out the employee id")
        if existing is None:
            self.check_consent(name)  # before the slow photo checks
        return existing

    def _skip_known_files(self, target: Person | None, checks: list[PhotoCheck],
                          results: dict[str, PhotoResult]) -> list[PhotoCheck]:
        known = ({t.content_sha256 for t in self.library.list_templates(target.id)}
                 if target is not None else set())
        fresh = []
        for check in checks:
            digest = check.content_sha256
            if digest is not None and digest in known:
                results[check.source] = PhotoResult(check.source, False, ALREADY_ENROLLED,
                                                    skipped=True)
                continue
            if digest is not None:
                known.add(digest)  # the same file twice in one batch counts once
            fresh.append(check)
        return fresh

    def _plan(self, name: str, target: Person | None, check: PhotoCheck, vector: np.ndarray,
              lookalike: LookAlike, reason: str | None, accept_mismatch: bool,
              replaced: dict[int, Person], results: dict[str, PhotoResult]) -> _Planned | None:
        """Decide where one photo goes, or record why it is rejected (returns None)."""
        threshold = self.matcher.threshold
        plan = _Planned(check, vector, target)
        if target is not None:
            own = self.matcher.person_similarity(target.id, vector)
            if own is not None and own < threshold:
                if not accept_mismatch:
                    results[check.source] = PhotoResult(
                        check.source, False,
                        f"does not look like {target.name}'s enrolled photos (similarity "
                        f"{own:.2f}, {threshold:.2f} needed); check it is them, or confirm "
                        "to add it anyway", conflict="mismatch")
                    return None
                plan.warning = (f"added although it does not look like {target.name}'s "
                                f"other photos (similarity {own:.2f})")
                plan.audit = {"rule": "mismatch_accepted", "similarity": round(own, 4)}
        other, similarity = self._lookalike(target, vector, set(replaced))
        if other is None:
            return plan
        new_name = target.name if target is not None else name
        if lookalike is LookAlike.REFUSE:
            results[check.source] = PhotoResult(
                check.source, False,
                f"this face already matches {other.name} (similarity {similarity:.2f}); "
                f"enrolled as {new_name} too, both would be 'unknown' at the door. Add it "
                f"to {other.name}, replace {other.name}, or enrol it anyway with a reason",
                conflict="lookalike")
            return None
        details = {"rule": f"lookalike_{lookalike.value}", "other_id": other.id,
                   "other_name": other.name, "similarity": round(similarity, 4)}
        plan.audit = {**(plan.audit or {}), **details}
        if lookalike is LookAlike.MERGE:
            plan.for_person = other
            plan.warning = f"added to {other.name}, whom this face matches"
        elif lookalike is LookAlike.REPLACE:
            replaced[other.id] = other
            plan.warning = f"replaces {other.name}, whom this face matched"
        else:
            plan.warning = (f"this face also matches {other.name} (similarity "
                            f"{similarity:.2f}); enrolled anyway: {reason}")
        return plan

    def _lookalike(self, target: Person | None, vector: np.ndarray,
                   ignore: set[int]) -> tuple[Person | None, float]:
        """Another enrolled person this face matches (at the threshold), with the similarity."""
        own_id = target.id if target is not None else None
        for result in self.matcher.search(vector):
            other = result.best_person_id
            if other is None or other == own_id or other in ignore or \
                    result.similarity < self.matcher.threshold:
                continue
            found = self.library.get_person(other)
            if found is not None:
                return found, result.similarity
        return None, 0.0

    def _apply(self, name: str, target: Person | None, planned: list[_Planned],
               replaced: dict[int, Person], employee_id: str | None, department: str | None,
               reason: str | None, results: dict[str, PhotoResult]) -> Person | None:
        """Store the planned photos in one transaction (the new person is created only when
        a photo is kept); the matcher learns them once they are committed."""
        person = target
        added: list[tuple[int, np.ndarray]] = []
        stored: dict[str, PhotoResult] = {}
        with self.library.transaction(f"enrolling {name}"):
            for other in replaced.values():
                self.library.remove_person(other.id, actor=self.actor)
                self.library.audit(self.actor, "replace_person",
                                   {"removed_id": other.id, "removed_name": other.name,
                                    "by_name": name, "reason": reason})
            if person is None and any(p.for_person is None for p in planned):
                self.check_consent(name)
                person = self.library.add_person(name, employee_id, department,
                                                 actor=self.actor)
                if self.consent is not None:
                    record_consent(self.library, person.id, self.consent.given_by,
                                   self.consent.notice_version, actor=self.actor)
            for plan in planned:
                owner = plan.for_person or person
                assert owner is not None and plan.check.observation is not None
                observation = plan.check.observation
                template = self.library.add_template(
                    owner.id, plan.vector, self.engine.model_id, observation.quality.score,
                    encode_jpeg(observation.crop), Path(plan.check.source).name,
                    content_sha256=plan.check.content_sha256, actor=self.actor)
                added.append((owner.id, plan.vector))
                if plan.audit is not None:
                    self.library.audit(self.actor, "enrol_resolved",
                                       {"template_id": template.id, "person_id": owner.id,
                                        "person_name": owner.name, "reason": reason,
                                        **plan.audit})
                stored[plan.check.source] = PhotoResult(
                    plan.check.source, True, None, template.id, plan.warning,
                    observation.crop, person_name=owner.name)
        for other_id in replaced:
            self.matcher.remove_person(other_id)
            if self.on_person_removed is not None:
                self.on_person_removed(other_id)
        for owner_id, vector in added:
            self.matcher.add(owner_id, vector)
        results.update(stored)
        return person


def _describe(person: Person) -> str:
    employee = f" (employee id {person.employee_id})" if person.employee_id else ""
    return f"{person.name}{employee}"
