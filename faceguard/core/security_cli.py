"""``faceguard audit verify|list``: the tamper-evident audit trail.

- ``audit verify [--expect HASH] [--json]`` walks the hash chain
  (:mod:`faceguard.library.audit_chain`) and names each edited, deleted, inserted or moved
  row; exit 1 when it is broken. It prints the head hash: note it somewhere else (a ticket,
  paper) and pass it later as ``--expect`` to find a chain that was recomputed since.
- ``audit list [--limit N] [--json]`` prints the newest entries.
- ``encryption enable [--keyring] [--passphrase-file FILE]`` encrypts the face data in place
  (:mod:`faceguard.library.encryption`; resumable: run it again after an interruption);
  ``encryption status [--json]`` says whether it is on, with what key, and how many face
  blobs are sealed. The passphrase comes from ``--passphrase-file`` (the global option) or
  ``$FACEGUARD_PASSPHRASE``. Refused while a kiosk runs on the data folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from faceguard.console import EXIT_ERROR, EXIT_OK
from faceguard.console import print_error as _err
from faceguard.core.cli_checks import kiosk_stopped, warn_about_backups
from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.library import crypto, encryption
from faceguard.wording import one_line, plural


def cmd_audit(ctx: AppContext, args: argparse.Namespace) -> int:
    """``audit verify`` / ``audit list``."""
    if args.audit_action == "list":
        for entry in ctx.library.list_audit(limit=args.limit):
            if args.json:
                print(json.dumps({"id": entry.id, "timestamp": entry.timestamp.isoformat(),
                                  "actor": entry.actor, "action": entry.action,
                                  "details": entry.details}))
            else:
                print(f"{entry.timestamp.isoformat(timespec='seconds')}  {entry.actor:<16} "
                      f"{entry.action:<22} {one_line(entry.details)}")
        return EXIT_OK
    report = ctx.verify_audit(expect_head=args.expect)
    if args.json:
        print(json.dumps({"ok": report.ok, "rows": report.rows, "head": report.head_hash,
                          "anchor_id": report.anchor_id, "problems": report.problems}))
    else:
        for problem in report.problems:
            _err(problem)
        verdict = "intact" if report.ok else f"BROKEN ({plural(len(report.problems), 'problem')})"
        since = f" after the purge of rows up to {report.anchor_id}" if report.anchor_id else ""
        print(f"audit log {verdict}: {plural(report.rows, 'entry', 'entries')}{since}; "
              f"head {report.head_hash}")
    return EXIT_OK if report.ok else EXIT_ERROR


NO_PROTECTION = ("the face templates and face images are stored unencrypted: anyone who "
                 "copies faceguard.db (or a backup) can read them")


def _progress(done: int, total: int) -> None:
    """``encrypting: done/total`` on stderr, about every tenth of the way."""
    step = max(1, total // 10)
    if done >= total or done % step < 200:  # batches are 200 rows
        sys.stderr.write(f"encrypting: {done}/{total}\n")


def cmd_encryption(ctx: AppContext, args: argparse.Namespace) -> int:
    """``encryption enable`` / ``encryption status``."""
    library = ctx.library
    if args.encryption_action == "status":
        current = encryption.state(library)
        record = encryption.key_record(library)
        found = encryption.counts(library)
        keyring_here = crypto.keyring_backend() is not None
        if args.json:
            print(json.dumps({"state": current, "kek": record.kek if record else None,
                              "key_id": record.key_id if record else None,
                              "sealed": found.sealed, "plain": found.plain,
                              "keyring_available": keyring_here}))
            return EXIT_OK
        if record is None:
            print(f"encryption: off; {NO_PROTECTION}")
            print("to turn it on: faceguard encryption enable " +
                  ("--keyring" if keyring_here else "--passphrase-file FILE (no operating-"
                   "system keyring here: the passphrase is then needed at every start, from "
                   f"${crypto.PASSPHRASE_ENV} or --passphrase-file)"))
            return EXIT_OK
        how = "a key in the operating system's keyring" if record.kek == "keyring" else \
            "a passphrase (scrypt)"
        print(f"encryption: {current} (AES-256-GCM, data key {record.key_id} wrapped by {how}); "
              f"{found.sealed} face blobs sealed, {found.plain} still plain"
              + ("; run `faceguard encryption enable` again to finish" if found.plain or
                 current != "on" else ""))
        return EXIT_OK
    with kiosk_stopped(ctx, then="enable encryption"):
        passphrase = crypto.read_passphrase(ctx.passphrase_file)
        if encryption.key_record(library) is None and not args.keyring and passphrase is None:
            raise FaceGuardError("give a passphrase with --passphrase-file FILE or "
                                 f"${crypto.PASSPHRASE_ENV}, or use --keyring")
        result = encryption.enable(library, passphrase=passphrase, use_keyring=args.keyring,
                                   actor="cli", progress=_progress)
    resumed = f" ({result.already} were sealed by an earlier run)" if result.already else ""
    print(f"encryption on: sealed {plural(result.sealed, 'face blob')}{resumed} in "
          f"{result.seconds:.1f} s; key wrapped by "
          + ("the operating system's keyring" if result.kek == "keyring" else "the passphrase"))
    if result.kek == "passphrase":
        _err(f"warning: without the passphrase the face data cannot be read; the kiosk needs "
             f"it at every start (${crypto.PASSPHRASE_ENV} or --passphrase-file)")
    if not result.vacuumed:
        _err("warning: the library file could not be rewritten (is the disk full?); freed "
             "pages may still hold unencrypted face data: run `faceguard purge --compact`")
    warn_about_backups(ctx, still="hold the face data unencrypted")
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``audit`` to the main parser's subcommands."""
    p = commands.add_parser("audit", help="the admin audit log: verify its hash chain, list it")
    actions = p.add_subparsers(dest="audit_action", required=True, metavar="ACTION")
    a = actions.add_parser(
        "verify", help="check that no audit entry was edited, deleted, inserted or moved",
        description="Walk the audit log's hash chain. Exit 0 when it is intact, 1 when not "
        "(each break is named on stderr).")
    a.add_argument("--expect", metavar="HASH",
                   help="a head hash printed earlier: it must still be in the chain")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("list", help="the newest audit entries")
    a.add_argument("--limit", type=int, default=50)
    a.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit, reads_only=True)

    p = commands.add_parser("encryption", help="encryption at rest of the face data: enable, "
                            "status")
    actions = p.add_subparsers(dest="encryption_action", required=True, metavar="ACTION")
    a = actions.add_parser(
        "enable", help="encrypt the face templates and images in place (resumable)",
        description="Encrypt the face templates and face images with AES-256-GCM. The data "
        "key is wrapped by a key in the operating system's keyring (--keyring) or by a "
        "passphrase (the global --passphrase-file FILE, or $FACEGUARD_PASSPHRASE). "
        "Interrupted, it carries on when run again.")
    a.add_argument("--keyring", action="store_true",
                   help="keep the key-encryption key in the operating system's keyring")
    a = actions.add_parser("status", help="is the face data encrypted; with what key")
    a.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_encryption, reads_only=True)
