"""``faceguard log``: the entry log, or first-in / last-out attendance, on screen or as CSV."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from faceguard.console import EXIT_OK, CommandError
from faceguard.core.context import AppContext
from faceguard.library.attendance import attendance, local_day_range
from faceguard.library.export import attendance_to_csv, events_to_csv, format_timestamp
from faceguard.wording import access_text, plural

# No event predates FaceGuard; one day inside each end keeps local-time conversion in range.
FIRST_LOG_DAY, LAST_LOG_DAY = date(1970, 1, 2), date(9999, 12, 30)


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"{text!r} is not a date (use YYYY-MM-DD)") from error



def cmd_log(ctx: AppContext, args: argparse.Namespace) -> int:
    """Events (or attendance) between --from and --to, filtered, printed or written as CSV."""
    first = _parse_day(args.from_day) if args.from_day else None
    last = _parse_day(args.to_day) if args.to_day else None
    if first and last and first > last:
        raise CommandError(f"--from {first} is after --to {last}")
    start = end = None
    if first or last:
        start, end = local_day_range(max(first or FIRST_LOG_DAY, FIRST_LOG_DAY),
                                     min(last or LAST_LOG_DAY, LAST_LOG_DAY))
    person = None
    if args.person:
        person = ctx.person_named(args.person).id
    events = ctx.library.query_events(start, end, person, args.decision,
                                      kiosk_id=args.kiosk)
    if args.attendance:
        days = attendance(events)
        if args.csv:
            attendance_to_csv(days, args.csv)
            print(f"wrote {len(days)} attendance rows to {args.csv}")
        else:
            for day in days:
                print(f"{day.day}  {day.person_name:<24} in {day.first_in:%H:%M}  "
                      f"out {day.last_out:%H:%M}  {day.hours:5.2f} h")
        return EXIT_OK
    if args.csv:
        events_to_csv(events, args.csv)
        print(f"wrote {plural(len(events), 'event')} to {args.csv}")
    else:
        for event in events:
            who = event.person_name or "unknown"
            similarity = "" if event.similarity is None else f"{event.similarity:.3f}"
            door = access_text(event.access, event.access_reason)
            print(f"{format_timestamp(event.timestamp)}  {event.kiosk_id:<10} {event.decision:<8} "
                  f"{who:<24} {similarity:<6} {door}".rstrip())
        print(plural(len(events), "event"))
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``log`` to the main parser's subcommands."""
    p = commands.add_parser("log", help="show or export the entry log")
    p.add_argument("--from", dest="from_day", metavar="YYYY-MM-DD", help="first local day")
    p.add_argument("--to", dest="to_day", metavar="YYYY-MM-DD", help="last local day")
    p.add_argument("--person", help="only this person")
    p.add_argument("--kiosk", metavar="NAME",
                   help="only the entries of this kiosk (door); a fleet kiosk holds every door's")
    p.add_argument("--decision", choices=["known", "unknown", "attack"],
                   help="only these decisions (attack: suspected presentation attacks)")
    p.add_argument("--attendance", action="store_true",
                   help="first in / last out per person per day instead of events")
    p.add_argument("--csv", metavar="FILE", help="write CSV to FILE")
    p.set_defaults(func=cmd_log, reads_only=True)
