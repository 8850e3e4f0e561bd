"""``faceguard door test``, ``faceguard rules ...`` and ``faceguard groups ...``.

- ``door test``: one unlock pulse through the configured driver, and what happened;
- ``groups list|add|remove|members``: access groups and who is in them;
- ``rules list|add|remove``: each group's time windows (``rules add Staff mon-fri
  07:00-19:00``, ``holiday`` as the day for holiday hours), ``rules holiday DATE [NAME]`` /
  ``rules unholiday DATE``, and ``rules pass PERSON --from/--until/--disable/--enable/--clear``
  (a visitor's validity). Every change is audited (actor ``cli``).
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, time, timedelta
from typing import Any

from faceguard.console import EXIT_OK
from faceguard.core.access import DAY_NAMES, AccessError, format_minutes, local_zone, parse_window
from faceguard.core.context import AppContext
from faceguard.core.door import DoorError, make_driver
from faceguard.errors import FaceGuardError
from faceguard.library import rules as store
from faceguard.library.rules import LibraryOutbox
from faceguard.wording import plural


def cmd_door(ctx: AppContext, args: argparse.Namespace) -> int:
    """``door test``: pulse the configured door and say what happened."""
    settings = ctx.settings
    driver = make_driver(settings, LibraryOutbox(ctx.library))
    notices: list[str] = []
    driver.subscribe(lambda n: notices.append(f"{n.kind} {n.value}".strip()))
    try:
        result = driver.test(args.timeout)
    finally:
        driver.close()
    print(f"door {settings.kiosk_name} ({settings.door_driver}, {settings.door_lock_type}, "
          f"pulse {settings.door_pulse_s:g} s): {result.message or 'done'}")
    for line in notices:
        print(f"  {line}")
    if not result.done:
        raise DoorError(f"the door test did not complete: {result.message}")
    return EXIT_OK


def cmd_groups(ctx: AppContext, args: argparse.Namespace) -> int:
    """List, add, remove groups; change members."""
    if args.action == "list":
        groups = store.list_groups(ctx.library)
        if not groups:
            print("no access groups (every recognised person may pass while "
                  f"access.without_rules = {ctx.settings.access_without_rules})")
        for group in groups:
            print(f"{group.name}: {plural(len(group.members), 'member')}"
                  + (f" ({', '.join(group.members)})" if group.members else ""))
    elif args.action == "add":
        store.add_group(ctx.library, args.name, actor="cli")
        print(f"added group {args.name}")
    elif args.action == "remove":
        store.remove_group(ctx.library, args.name, actor="cli")
        print(f"removed group {args.name}")
    else:
        for names, member in ((args.add, True), (args.remove, False)):
            for name in names or []:
                person = ctx.person_named(name, include_inactive=False)
                store.set_membership(ctx.library, args.name, person.id, member, actor="cli")
        found = next((g for g in store.list_groups(ctx.library)
                      if g.name.casefold() == args.name.casefold()), None)
        if found is None:
            raise FaceGuardError(f"there is no access group named {args.name!r}")
        print(f"{found.name}: " + (", ".join(found.members) or "no members"))
    return EXIT_OK


def _when(text: str, *, end: bool, ctx: AppContext) -> datetime:
    """A date (a whole local day: from its start, or until the next day's start) or an ISO
    date and time (local unless it has an offset)."""
    zone = local_zone(ctx.settings.access_timezone)
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip()) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), zone)
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FaceGuardError(f"not a date (YYYY-MM-DD) or date and time: {text!r}") from None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=zone)


def cmd_rules(ctx: AppContext, args: argparse.Namespace) -> int:
    """List and change windows, holidays and passes."""
    lib = ctx.library
    try:
        if args.action == "list":
            for group in store.list_groups(lib):
                spans = [f"{DAY_NAMES[d]} {format_minutes(s)}-{format_minutes(e)}"
                         + (f" @{door}" if door else "") for d, s, e, door in group.windows]
                print(f"{group.name}: " + ("; ".join(spans) or "no hours (closed)"))
            for day, name in store.list_holidays(lib):
                print(f"holiday {day.isoformat()}" + (f" {name}" if name else ""))
            for pid, (start, until, disabled) in sorted(store.rule_rows(lib).validity.items()):
                person = lib.get_person(pid)
                who = person.name if person else f"#{pid}"
                zone = local_zone(ctx.settings.access_timezone)
                print(f"pass {who}: " + ("disabled" if disabled else
                      f"from {start.astimezone(zone).isoformat() if start else '-'} until "
                      f"{until.astimezone(zone).isoformat() if until else '-'}"))
        elif args.action == "add":
            windows = parse_window(args.days, args.hours, args.door)
            for w in windows:
                store.add_window(lib, args.group, w.day, w.start, w.end, w.door, actor="cli")
            print(f"{args.group}: added {', '.join(w.label() for w in windows)}")
        elif args.action == "remove":
            days = [None] if args.day is None else [
                w.day for w in parse_window(args.day, "00:00-24:00")]
            first = None if args.start is None else parse_window(
                "mon", f"{args.start}-24:00")[0].start
            count = sum(store.remove_windows(lib, args.group, d, first, actor="cli")
                        for d in days)
            print(f"{args.group}: removed {plural(count, 'window')}")
        elif args.action == "holiday":
            store.set_holiday(lib, date.fromisoformat(args.date), args.name or "", actor="cli")
            print(f"{args.date} is a holiday")
        elif args.action == "unholiday":
            done = store.remove_holiday(lib, date.fromisoformat(args.date), actor="cli")
            print(f"{args.date} " + ("is no longer a holiday" if done else "was no holiday"))
        else:
            person = ctx.person_named(args.person, include_inactive=False)
            if args.clear:
                store.set_validity(lib, person.id, None, None, False, actor="cli")
            else:
                start = args.valid_from and _when(args.valid_from, end=False, ctx=ctx)
                until = args.until and _when(args.until, end=True, ctx=ctx)
                store.set_validity(lib, person.id, start or None, until or None,
                                   bool(args.disable), actor="cli")
            print(f"pass of {person.name} changed")
    except AccessError as error:
        raise FaceGuardError(str(error)) from None
    except ValueError as error:
        raise FaceGuardError(f"not a date (YYYY-MM-DD): {error}") from None
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``door``, ``groups`` and ``rules`` to the main parser's subcommands."""
    p = commands.add_parser("door", help="the door driver (door.* settings)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("test", help="pulse the configured door once and report")
    a.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for a webhook or broker (default 10)")
    p.set_defaults(func=cmd_door)

    p = commands.add_parser("groups", help="access groups and their members (audited)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="groups and members")
    for verb in ("add", "remove"):
        actions.add_parser(verb, help=f"{verb} a group").add_argument("name", metavar="GROUP")
    a = actions.add_parser("members", help="show or change a group's members")
    a.add_argument("name", metavar="GROUP")
    a.add_argument("--add", nargs="+", metavar="PERSON")
    a.add_argument("--remove", nargs="+", metavar="PERSON")
    p.set_defaults(func=cmd_groups)

    p = commands.add_parser("rules", help="access hours, holidays and passes (audited)",
                            description="Hours are local wall-clock times "
                            "(access.timezone); a window whose end is before its start "
                            "runs past midnight.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every group's hours, the holidays and the passes")
    a = actions.add_parser("add", help="add hours: GROUP DAYS HH:MM-HH:MM")
    a.add_argument("group", metavar="GROUP")
    a.add_argument("days", metavar="DAYS", help="mon, mon-fri, all or holiday")
    a.add_argument("hours", metavar="HH:MM-HH:MM", help="e.g. 07:00-19:00 or 22:00-06:00")
    a.add_argument("--door", help="only at this kiosk (kiosk.name); default every door")
    a = actions.add_parser("remove", help="remove a group's hours (all, a day's, one)")
    a.add_argument("group", metavar="GROUP")
    a.add_argument("day", nargs="?", metavar="DAYS")
    a.add_argument("start", nargs="?", metavar="HH:MM", help="only the window starting then")
    a = actions.add_parser("holiday", help="mark a date as a holiday (holiday hours apply)")
    a.add_argument("date", metavar="YYYY-MM-DD")
    a.add_argument("name", nargs="?")
    a = actions.add_parser("unholiday", help="unmark a holiday")
    a.add_argument("date", metavar="YYYY-MM-DD")
    a = actions.add_parser("pass", help="a person's validity: --from, --until, --disable")
    a.add_argument("person", metavar="PERSON")
    a.add_argument("--from", dest="valid_from", metavar="WHEN",
                   help="first valid day (YYYY-MM-DD) or moment")
    a.add_argument("--until", metavar="WHEN", help="last valid day (inclusive) or moment")
    a.add_argument("--disable", action="store_true", help="never let this person in")
    a.add_argument("--enable", action="store_true", help="(default) not disabled")
    a.add_argument("--clear", action="store_true", help="no limits")
    p.set_defaults(func=cmd_rules)
