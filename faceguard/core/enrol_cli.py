"""``faceguard enroll`` and ``faceguard import``: people into the library from photos.

Both go through :meth:`AppContext.enroller` (:mod:`faceguard.core.enrolment`); this module only
turns its results into the lines and exit codes scripts read.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faceguard.console import EXIT_OK, EXIT_PARTIAL, CommandError, Progress
from faceguard.console import print_error as _err
from faceguard.core.context import AppContext
from faceguard.core.enrolment import EnrolMode, LookAlike, PhotoResult
from faceguard.wording import one_line, plural


def _print_results(results: Sequence[PhotoResult]) -> None:
    for result in results:
        source = one_line(result.source)
        if result.accepted:
            print(f"enrolled  {source}")
            if result.warning:
                _err(f"warning: {source}: {result.warning}")
        elif result.skipped:
            print(f"skipped   {source}: {result.reason}")
        else:
            print(f"rejected  {source}: {one_line(result.reason or '')}")


def cmd_enroll(ctx: AppContext, args: argparse.Namespace) -> int:
    """Enrol one person (or add photos to them); exit 3 when some photos were rejected."""
    enroller = ctx.enroller(actor="cli", consent=ctx.consent_for(args.consent_by))
    paths = [Path(p) for p in args.images]
    person, results = enroller.enroll_files(
        args.name, paths, employee_id=args.employee_id, department=args.department,
        mode=EnrolMode.ADD if args.add else EnrolMode.NEW,
        lookalike=LookAlike(args.if_lookalike), reason=args.reason,
        accept_mismatch=args.accept_mismatch)
    _print_results(results)
    accepted = sum(r.accepted for r in results)
    skipped = sum(r.skipped for r in results)
    rejected = len(results) - accepted - skipped
    owners = sorted({r.person_name for r in results if r.accepted and r.person_name})
    if not accepted:
        if skipped and not rejected:
            print(f"{args.name}: nothing new ({plural(skipped, 'photo')} already enrolled)")
            return EXIT_OK
        raise CommandError(f"no photo of {args.name} could be enrolled "
                           f"({rejected} rejected)")
    who = ", ".join(owners) or (person.name if person is not None else args.name)
    extra = f", {skipped} already enrolled" if skipped else ""
    print(f"{who}: {accepted} of {len(results)} photos enrolled{extra}")
    if rejected:
        _err(f"{rejected} of {len(results)} photos rejected")
        return EXIT_PARTIAL
    return EXIT_OK


def cmd_import(ctx: AppContext, args: argparse.Namespace) -> int:
    """Enrol a folder of people (one subfolder each); exit 3 unless all of it went in."""
    enroller = ctx.enroller(actor="cli", consent=ctx.consent_for(args.consent_by))
    progress = Progress(0, "importing")
    summary = enroller.import_folder(Path(args.folder), progress=progress)
    for source, warning in summary.warnings:
        _err(f"warning: {source}: {warning}")
    for name, why in summary.refused:
        _err(f"warning: {name}: {why}")
    for result in summary.rejected:
        print(f"rejected  {one_line(result.source)}: {one_line(result.reason or '')}")
    skipped = f", {summary.skipped} already enrolled" if summary.skipped else ""
    print(f"imported {summary.people_enrolled} of {plural(summary.people, 'person', 'people')}, "
          f"{summary.added} of {summary.photos} photos; "
          f"{plural(len(summary.rejected), 'photo')} rejected{skipped}")
    return EXIT_OK if summary.complete else EXIT_PARTIAL



def register(commands: Any) -> None:
    """Add ``enroll`` and ``import`` to the main parser's subcommands."""
    p = commands.add_parser("enroll", help="enrol a person from photos")
    p.add_argument("name")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--employee-id")
    p.add_argument("--department")
    p.add_argument("--add", action="store_true",
                   help="add the photos to the person already enrolled under this name (they "
                   "must look like that person's photos)")
    p.add_argument("--if-lookalike", choices=[m.value for m in LookAlike], default="refuse",
                   help="when a face already matches someone else: refuse (default), merge "
                   "(add it to them), replace (remove them, enrol this person) or force "
                   "(enrol anyway; needs --reason)")
    p.add_argument("--reason", help="why a conflict was resolved this way (kept in the audit)")
    p.add_argument("--accept-mismatch", action="store_true",
                   help="with --add: keep photos that do not look like the person's others")
    p.add_argument("--consent-by", metavar="NAME",
                   help="who gave consent to this enrolment (recorded with the notice "
                   "version; required when the setting consent.required is on)")
    p.set_defaults(func=cmd_enroll)

    p = commands.add_parser("import", help="enrol a folder of people (one subfolder each)")
    p.add_argument("folder")
    p.add_argument("--consent-by", metavar="NAME",
                   help="who collected the consent of every person in the folder (recorded "
                   "for each new person; required when consent.required is on)")
    p.set_defaults(func=cmd_import)
