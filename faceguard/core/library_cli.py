"""``faceguard admin``, ``faceguard backup`` and ``faceguard restore``: looking after the library.

Registered into the main parser by :func:`register` (``faceguard.cli`` looks it up).

- ``admin reset-pin`` sets a new admin PIN when it is lost (the window asks for this when a
  protected library has no PIN). It needs write access to the data folder, i.e. a shell on the
  kiosk PC as the user who owns it, and is written to the audit log. ``admin status`` says
  whether a PIN is set and whether admin is locked.
- ``admin add NAME --role ROLE``, ``admin list``, ``admin remove NAME``, ``admin passwd NAME``,
  ``admin role NAME ROLE``: the admin accounts (roles in :mod:`faceguard.core.roles`). The
  command line runs as the user who owns the data folder, so it may do all of this; each
  change is audited under ``cli``.
- ``backup [--to FILE]`` copies the library (default: ``backups/`` beside it).
- ``restore FILE`` replaces the library with a checked backup, keeping the current one.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faceguard.console import EXIT_OK
from faceguard.console import print_error as _err
from faceguard.core.admin import CredentialState, credential_state, pin_gate, reset_pin
from faceguard.core.context import AppContext
from faceguard.core.pin import hash_parameters
from faceguard.errors import FaceGuardError
from faceguard.library.accounts import ROLES
from faceguard.library.backup import backup_library, restore_library
from faceguard.wording import plural


def _read_new_pin(from_stdin: bool, account: str = "admin") -> str:
    """The new PIN: one line from stdin, or typed twice without echo."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise FaceGuardError("no PIN on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise FaceGuardError("type the PIN at a terminal, or pass it with --pin-stdin")
    first = getpass.getpass(f"New PIN for {account}: ")
    if getpass.getpass("Repeat it: ") != first:
        raise FaceGuardError("the two entries differ; the PIN was not changed")
    return first


def cmd_admin(ctx: AppContext, args: argparse.Namespace) -> int:
    """``admin reset-pin|status|add|list|remove|passwd|role``."""
    action = args.admin_action
    if action == "reset-pin":
        name = reset_pin(ctx, _read_new_pin(args.pin_stdin), account=args.account)
        print(f"PIN of admin account {name} in {ctx.library_path} reset; its lock-out is "
              "lifted (written to the audit log)")
        return EXIT_OK
    if action == "add":
        account = ctx.add_account(args.name, args.role,
                                  _read_new_pin(args.pin_stdin, args.name), actor="cli")
        print(f"added admin account {account.name} ({account.role})")
        return EXIT_OK
    if action == "remove":
        ctx.remove_account(args.name, actor="cli")
        print(f"removed admin account {args.name}")
        return EXIT_OK
    if action == "passwd":
        ctx.change_account_pin(args.name, _read_new_pin(args.pin_stdin, args.name), actor="cli")
        print(f"changed the PIN of admin account {args.name}; its lock-out is lifted")
        return EXIT_OK
    if action == "role":
        ctx.set_account_role(args.name, args.role, actor="cli")
        print(f"admin account {args.name} is now a {args.role}")
        return EXIT_OK
    if action == "list":
        accounts = ctx.list_accounts()
        now = datetime.now(UTC)
        for account in accounts:
            is_locked = account.locked_until is not None and account.locked_until > now
            state = "locked" if is_locked else (f"{account.failures} wrong tries"
                                                if account.failures else "ok")
            if args.json:
                print(json.dumps({"name": account.name, "role": account.role,
                                  "failures": account.failures, "locked": is_locked,
                                  "created": account.created.isoformat()}))
            else:
                print(f"{account.name:<24} {account.role:<14} {state}")
        if not args.json:
            print(plural(len(accounts), "admin account"))
        return EXIT_OK
    gate = pin_gate(ctx)
    credential = credential_state(ctx, gate)
    if credential is CredentialState.SET:
        n = hash_parameters(gate.stored_hash or "")[0]
        print(f"admin PIN: set (scrypt n={n}); {plural(len(ctx.list_accounts()), 'account')}")
    elif credential is CredentialState.FIRST_RUN:
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
    p = commands.add_parser("admin", help="admin accounts and their PINs: add, list, remove, "
                            "passwd, role, reset a lost PIN, show the state")
    actions = p.add_subparsers(dest="admin_action", required=True, metavar="ACTION")
    a = actions.add_parser(
        "reset-pin", help="set a new admin PIN and lift a lock-out (audited)",
        description="Set a new PIN for an admin account (default: the first administrator) of "
        "the library in the data folder and lift its lock-out. Needs write access to the data "
        "folder; written to the audit log.")
    a.add_argument("--account", help="the account (default: the first administrator)")
    a.add_argument("--pin-stdin", action="store_true",
                   help="read the new PIN from one line of standard input")
    a.set_defaults(reads_only=True)  # resets the PIN of an existing library, never makes one
    a = actions.add_parser("status", help="is a PIN set; is admin locked")
    a.set_defaults(reads_only=True)
    a = actions.add_parser("list", help="the admin accounts, their roles and lock-outs")
    a.add_argument("--json", action="store_true")
    a.set_defaults(reads_only=True)
    a = actions.add_parser("add", help="add an admin account with its own PIN (audited)")
    a.add_argument("name")
    a.add_argument("--role", choices=ROLES, required=True,
                   help="administrator: everything; manager: logs, reports and people; "
                   "viewer: logs only")
    a.add_argument("--pin-stdin", action="store_true",
                   help="read the PIN from one line of standard input")
    a = actions.add_parser("remove", help="remove an admin account (audited; the last "
                           "administrator stays)")
    a.add_argument("name")
    a.set_defaults(reads_only=True)
    a = actions.add_parser("passwd", help="set a new PIN for an account and lift its lock")
    a.add_argument("name")
    a.add_argument("--pin-stdin", action="store_true",
                   help="read the PIN from one line of standard input")
    a.set_defaults(reads_only=True)
    a = actions.add_parser("role", help="change an account's role (audited)")
    a.add_argument("name")
    a.add_argument("role", choices=ROLES)
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
