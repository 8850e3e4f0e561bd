"""``faceguard purge``, ``faceguard notice`` and ``faceguard people erase``: retention and erasure.

- ``purge [--dry-run]`` applies the ``retention.*`` settings now (the kiosk does it daily):
  old events, old unknown-face crops and old audit entries, audited with the counts.
- ``notice [--out FILE.html]`` writes the printable retention notice for the wall.
- ``people export NAME --out FILE.zip`` writes everything held about a person
  (:mod:`faceguard.library.person_export`).
- ``people erase NAME`` (wired into ``people`` by :mod:`faceguard.core.people_cli`) erases a
  person so that their face data is gone from the library file; refused while a kiosk runs on
  the data folder (its memory still holds the person's templates).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from faceguard.console import EXIT_OK
from faceguard.console import print_error as _err
from faceguard.core.cli_checks import kiosk_stopped, warn_about_backups
from faceguard.core.context import AppContext
from faceguard.core.notice import retention_notice_html
from faceguard.errors import FaceGuardError
from faceguard.library.retention import Retention, compact, erase_person, purge
from faceguard.paths import write_file_atomically
from faceguard.wording import plural


def cmd_purge(ctx: AppContext, args: argparse.Namespace) -> int:
    """Delete (or, with --dry-run, count) what the retention settings no longer allow."""
    retention = Retention.from_settings(ctx.settings)
    result = purge(ctx.library, retention, actor="cli", dry_run=args.dry_run)
    verb = "would delete" if result.dry_run else "deleted"
    print(f"{verb} {plural(result.events, 'event')} older than "
          f"{_kept(retention.events_days, 'day')}, "
          f"{plural(result.unknown_crops, 'unknown-face crop')} older than "
          f"{_kept(retention.unknown_crops_hours, 'hour')}, "
          f"{plural(result.audit, 'audit entry', 'audit entries')} older than "
          f"{_kept(retention.audit_days, 'day')}")
    if args.compact and not result.dry_run:
        seconds, vacuumed, checkpointed = compact(ctx.library)
        if not vacuumed:
            raise FaceGuardError("the records were purged, but the library file could not be "
                                 "rewritten (is the disk full?)")
        print(f"rewrote {ctx.library.path} in {seconds:.1f} s"
              + ("" if checkpointed else " (its -wal is still in use by another program)"))
    return EXIT_OK


def _kept(amount: int, unit: str) -> str:
    return plural(amount, unit) if amount else "forever (kept)"


def cmd_notice(ctx: AppContext, args: argparse.Namespace) -> int:
    """Write the retention notice to --out (atomically) or print it."""
    page = retention_notice_html(ctx.settings)
    if not args.out:
        print(page, end="")
        return EXIT_OK
    out = Path(args.out).expanduser()
    if not out.parent.is_dir():
        raise FaceGuardError(f"folder {out.parent} does not exist")
    try:
        write_file_atomically(out, page, prefix=".notice-")
    except OSError as error:
        raise FaceGuardError(f"cannot write {out}: {error.strerror or error}") from error
    print(f"wrote the retention notice for {ctx.settings.kiosk_name} to {out}")
    return EXIT_OK


def cmd_erase(ctx: AppContext, args: argparse.Namespace) -> int:
    """``people erase NAME``: erase a person's face data and pseudonymise their events."""
    person = ctx.person_named(args.name)
    with kiosk_stopped(ctx, then=f"erase {person.name}"):
        result = erase_person(ctx.library, person.id, actor="cli")
    print(f"erased {person.name}: {plural(result.templates, 'face template')}, "
          f"{plural(result.event_crops, 'event crop')} deleted; "
          f"{plural(result.events, 'event')} now logged as {result.pseudonym}")
    if not result.vacuumed:
        _err("warning: the library file could not be rewritten (is the disk full?), so parts "
             "of the deleted face images may remain in freed space; free some disk space, "
             "then run `faceguard purge --compact`")
    if not result.checkpointed:
        _err("warning: another program is reading the library; its write-ahead log keeps "
             "the old pages until that program closes")
    warn_about_backups(ctx, still="still hold this person's data")
    return EXIT_OK


def cmd_export(ctx: AppContext, args: argparse.Namespace) -> int:
    """``people export NAME --out FILE.zip``: everything held about a person (audited)."""
    person = ctx.person_named(args.name)
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".zip":
        raise FaceGuardError("--out must name a .zip file")
    summary = ctx.export_person(person.id, out, actor="cli")
    consent = "with" if summary.has_consent else "no"
    print(f"wrote {out}: {person.name}, {plural(summary.templates, 'face template')}, "
          f"{plural(summary.events, 'event')} ({summary.event_crops} with a face crop), "
          f"{plural(summary.audit_entries, 'audit entry', 'audit entries')}, {consent} "
          "consent record")
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``purge`` and ``notice`` to the main parser's subcommands."""
    p = commands.add_parser(
        "purge", help="delete events, unknown-face crops and audit entries older than the "
        "retention settings (audited)",
        description="Apply the retention settings (retention.events_days, "
        "retention.unknown_crops_hours, retention.audit_days; 0 keeps forever) now. The "
        "kiosk does this once a day.")
    p.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    p.add_argument("--compact", action="store_true",
                   help="then rewrite the library file (VACUUM), so no freed page keeps old "
                   "bytes (about 25 ms a MB)")
    p.set_defaults(func=cmd_purge, reads_only=True)  # never creates a library

    p = commands.add_parser("notice", help="write the printable retention notice (HTML)")
    p.add_argument("--out", metavar="FILE.html", help="write to FILE (default: print it)")
    p.set_defaults(func=cmd_notice, reads_only=True)
