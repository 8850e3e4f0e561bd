"""``faceguard people list|rename|remove|erase|export``: the enrolled people.

``erase`` and ``export`` are the privacy verbs of :mod:`faceguard.core.privacy_cli`; the
rest goes through :meth:`AppContext.update_person` and :meth:`AppContext.remove_person`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from faceguard.console import EXIT_OK
from faceguard.core.context import AppContext
from faceguard.core.privacy_cli import cmd_erase, cmd_export
from faceguard.library.export import format_timestamp
from faceguard.wording import plural


def cmd_people(ctx: AppContext, args: argparse.Namespace) -> int:
    """List, rename, remove, erase or export people."""
    library = ctx.library
    if args.action == "list":
        people = library.list_people(include_inactive=args.all)
        if args.json:
            for p in people:
                print(json.dumps({"id": p.id, "name": p.name, "employee_id": p.employee_id,
                                  "department": p.department, "active": p.active,
                                  "templates": p.template_count,
                                  "created": format_timestamp(p.created)}))
        else:
            for p in people:
                extra = ", ".join(x for x in (p.employee_id, p.department) if x)
                state = "" if p.active else " [inactive]"
                print(f"{p.name}{f' ({extra})' if extra else ''}: "
                      f"{plural(p.template_count, 'photo')}{state}")
            print(plural(len(people), "person", "people"))
    elif args.action == "rename":
        person = ctx.person_named(args.name)
        ctx.update_person(person.id, name=args.new_name, actor="cli")
        print(f"renamed {person.name} to {args.new_name}")
    elif args.action == "remove":
        person = ctx.person_named(args.name)
        ctx.remove_person(person.id, forget_event_crops=args.forget_crops, actor="cli")
        print(f"removed {person.name} and {person.template_count} face templates")
    elif args.action == "erase":
        return cmd_erase(ctx, args)
    elif args.action == "export":
        return cmd_export(ctx, args)
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``people`` to the main parser's subcommands."""
    p = commands.add_parser("people", help="list, rename or remove people")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("list", help="list enrolled people")
    a.add_argument("--all", action="store_true", help="include inactive people")
    a.add_argument("--json", action="store_true")
    a.set_defaults(reads_only=True)  # never creates the data folder or a library
    a = actions.add_parser("rename", help="rename a person")
    a.add_argument("name")
    a.add_argument("new_name")
    a = actions.add_parser("remove", help="remove a person and their face templates")
    a.add_argument("name")
    a.add_argument("--forget-crops", action="store_true",
                   help="also erase the face images stored with their past events")
    a = actions.add_parser("erase", help="erase a person for good: templates and face images "
                           "deleted and overwritten, past events pseudonymised")
    a.add_argument("name")
    a = actions.add_parser("export", help="write everything held about a person to a ZIP "
                           "file (record, consent, templates, crops, events, audit entries; "
                           "README.txt inside explains the format)")
    a.add_argument("name")
    a.add_argument("--out", required=True, metavar="FILE.zip")
    a.set_defaults(reads_only=True)
    p.set_defaults(func=cmd_people)
