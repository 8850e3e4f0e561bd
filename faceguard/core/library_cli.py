"""``faceguard admin``, ``faceguard backup`` and ``faceguard restore``: looking after the library.

Registered into the main parser by :func:`register` (``faceguard.cli`` looks it up).

- ``admin reset-pin`` sets a new admin PIN when it is lost (the window asks for this when a
  protected library has no PIN). It needs write access to the data folder, i.e. a shell on the
  kiosk PC as the user who owns it, and is written to the audit log. ``admin status`` says
  whether a PIN is set and whether admin is locked.
- ``backup [--to FILE]`` copies the library (default: ``backups/`` beside it).
- ``restore FILE`` replaces the library with a checked backup, keeping the current one.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from faceguard.console import EXIT_OK
from faceguard.console import print_error as _err
from faceguard.core.admin import CredentialState, credential_state, pin_gate, reset_pin
from faceguard.core.context import AppContext
from faceguard.core.pin import hash_parameters
from faceguard.errors import FaceGuardError
from faceguard.library.backup import backup_library, restore_library


def _read_new_pin(from_stdin: bool) -> str:
    """The new PIN: one line from stdin, or typed twice without echo."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise FaceGuardError("no PIN on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise FaceGuardError("type the PIN at a terminal, or pass it with --pin-stdin")
    first = getpass.getpass("New admin PIN: ")
    if getpass.getpass("Repeat it: ") != first:
        raise FaceGuardError("the two entries differ; the PIN was not changed")
    return first


def cmd_admin(ctx: AppContext, args: argparse.Namespace) -> int:
    """``admin reset-pin`` / ``admin status``."""
    if args.admin_action == "reset-pin":
        reset_pin(ctx, _read_new_pin(args.pin_stdin))
        print(f"admin PIN of {ctx.library_path} reset; any lock-out is lifted "
              "(written to the audit log)")
        return EXIT_OK
    gate = pin_gate(ctx)
    state = credential_state(ctx, gate)
    if state is CredentialState.SET:
        n = hash_parameters(gate.stored_hash or "")[0]
        print(f"admin PIN: set (scrypt n={n})")
    elif state is CredentialState.FIRST_RUN:
        print("admin PIN: not set yet (the window asks for one on first run)")
    else:
        print("admin PIN: missing; run `faceguard admin reset-pin` to set a new one")
    locked = gate.remaining_lock_s()
    print(f"admin locked for {locked:.0f} s" if locked > 0
          else f"admin not locked ({gate.failures} wrong tries in a row)")
    return EXIT_OK


def cmd_backup(ctx: AppContext, args: argparse.Namespace) -> int:
    """Copy the library with SQLite's online backup API."""
    library = ctx.library
    if args.to and Path(args.to).exists():
        raise FaceGuardError(f"{args.to} already exists; choose a new file name")
    if library.damage:
        _err("warning: the library is damaged; the copy is damaged too")
    path = backup_library(library, args.to)
    print(f"backed up {library.path} to {path}")
    return EXIT_OK


def cmd_restore(ctx: AppContext, args: argparse.Namespace) -> int:
    """Replace the library with a checked backup (not while the kiosk runs)."""
    try:
        ctx.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FaceGuardError(f"cannot create the data folder {ctx.data_dir}: "
                             f"{error.strerror}") from error
    kept = restore_library(ctx.library_path, args.file)
    print(f"restored {ctx.library_path} from {args.file}")
    if kept is not None:
        print(f"the previous library is kept as {kept}")
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``admin``, ``backup`` and ``restore`` to the main parser's subcommands."""
    p = commands.add_parser("admin", help="the admin PIN: reset a lost one, show its state")
    actions = p.add_subparsers(dest="admin_action", required=True, metavar="ACTION")
    a = actions.add_parser(
        "reset-pin", help="set a new admin PIN and lift a lock-out (audited)",
        description="Set a new admin PIN for the library in the data folder and lift any "
        "lock-out. Needs write access to the data folder; written to the audit log.")
    a.add_argument("--pin-stdin", action="store_true",
                   help="read the new PIN from one line of standard input")
    a.set_defaults(reads_only=True)  # resets the PIN of an existing library, never makes one
    a = actions.add_parser("status", help="is a PIN set; is admin locked")
    a.set_defaults(reads_only=True)
    p.set_defaults(func=cmd_admin)

    p = commands.add_parser("backup", help="copy the face library (default: into backups/)")
    p.add_argument("--to", metavar="FILE", help="write the copy to FILE")
    p.set_defaults(func=cmd_backup, reads_only=True)

    p = commands.add_parser(
        "restore", help="replace the face library with a backup (keeps the current one)",
        description="Replace the face library with FILE after checking that it is a sound "
        "FaceGuard library; the current library is kept in backups/. Refused while the "
        "kiosk runs on this data folder.")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_restore)
