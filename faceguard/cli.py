"""The `faceguard` command line. Its outputs are a contract: scripts read them.

Exit codes: 0 success; 1 error (one-line reason on stderr); 2 bad usage; 3 partly done
(some inputs failed; each is named on stderr).
"""
# ruff: noqa: I001  (faceguard.native_threads must be imported before numpy)

from __future__ import annotations

import faceguard.native_threads  # noqa: F401  (pins native thread pools before numpy loads)

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np

from faceguard import __version__
from faceguard.core.context import AppContext
from faceguard.core.enrolment import EnrolMode, LookAlike, PhotoResult
from faceguard.core.recognition import Recogniser
from faceguard.errors import FaceGuardError
from faceguard.library.attendance import attendance, local_day_range
from faceguard.library.database import Person
from faceguard.library.export import attendance_to_csv, events_to_csv, format_timestamp
from faceguard.vision.image_io import load_image
from faceguard.vision.selection import PICKS, Pick
from faceguard.wording import access_text, one_line, plural

from faceguard.console import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, Progress
from faceguard.console import print_error as _err

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "CommandError", "main"]


class CommandError(FaceGuardError):
    """A command cannot go on; the message says why."""


# -- output helpers ------------------------------------------------------------------------

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



# -- commands ---------------------------------------------------------------------------------

def cmd_enroll(ctx: AppContext, args: argparse.Namespace) -> int:
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


def cmd_identify(ctx: AppContext, args: argparse.Namespace) -> int:
    from faceguard.vision.liveness import checker_for_mode

    liveness = checker_for_mode(ctx.settings.liveness_mode)  # enforce: a missing model fails
    live_threshold = ctx.settings.liveness_threshold if liveness is not None else None
    recogniser = Recogniser(ctx.engine, ctx.matcher, ctx.library, liveness=liveness)
    failures = 0
    for name in args.images:
        try:
            faces = recogniser.recognise(load_image(name), pick=args.pick)
        except FaceGuardError as error:
            failures += 1
            _err(str(error))
            if args.json:
                print(json.dumps({"image": name, "faces": [], "error": str(error),
                                  "liveness_threshold": live_threshold}), flush=True)
            continue
        if args.json:
            print(json.dumps({"image": name, "faces": [f.to_json() for f in faces],
                              "liveness_threshold": live_threshold}), flush=True)
        elif not faces:
            print(f"{one_line(name)}: no face")
        else:
            parts = [f"{f.person or 'unknown'} ({f.match.similarity:.3f})" for f in faces]
            print(f"{one_line(name)}: " + ", ".join(parts))
    return EXIT_PARTIAL if failures else EXIT_OK


def _largest_embedding(ctx: AppContext, name: str, pick: Pick = "largest") -> np.ndarray:
    observation = ctx.engine.embed_largest(load_image(name), pick=pick)
    if observation is None or observation.embedding is None:
        raise CommandError(f"{name}: no face found")
    return observation.embedding


def cmd_verify(ctx: AppContext, args: argparse.Namespace) -> int:
    first = _largest_embedding(ctx, args.image_a, args.pick)
    second = _largest_embedding(ctx, args.image_b, args.pick)
    similarity = float(np.dot(first, second))
    threshold = ctx.operating_point.threshold
    same = similarity >= threshold
    if args.json:
        print(json.dumps({"similarity": round(similarity, 4), "same": same,
                          "threshold": threshold}))
    else:
        verdict = "same person" if same else "different people"
        print(f"similarity {similarity:.3f} (threshold {threshold:.3f}): {verdict}")
    return EXIT_OK


def cmd_embed(ctx: AppContext, args: argparse.Namespace) -> int:
    names = list(args.images)
    if args.list:
        try:
            lines = Path(args.list).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise CommandError(f"cannot read the list {args.list}: {error.strerror}") from error
        names += [line.strip() for line in lines if line.strip()]
    if not names:
        raise CommandError("no images given (name them, or use --list FILE)")
    out = Path(args.out)
    if out.suffix != ".npy":
        raise CommandError("--out must name a .npy file")
    if not out.parent.exists():
        raise CommandError(f"folder {out.parent} does not exist")
    matrix = np.full((len(names), ctx.engine.embedder.dimension), np.nan, np.float32)
    progress = Progress(len(names), "embedding") if len(names) > 20 else None
    missing = 0
    for row, name in enumerate(names):
        try:
            observation = ctx.engine.embed_largest(load_image(name), pick=args.pick)
        except FaceGuardError as error:
            observation = None
            _err(f"row {row}: {error}")
        else:
            if observation is None:
                _err(f"row {row}: {name}: no face found")
        if observation is not None and observation.embedding is not None:
            matrix[row] = observation.embedding
        else:
            missing += 1
        if progress:
            progress(row + 1)
    temporary = out.with_name(out.name + ".partial.npy")
    np.save(temporary, matrix)
    temporary.replace(out)
    print(f"wrote {out}: {len(names)} x {matrix.shape[1]}, {missing} without a face")
    return EXIT_PARTIAL if missing else EXIT_OK


def _person_by_name(ctx: AppContext, name: str) -> Person:
    person = ctx.library.find_person_by_name(name, include_inactive=True)
    if person is None:
        raise CommandError(f"no person named {name!r}")
    return person


def cmd_people(ctx: AppContext, args: argparse.Namespace) -> int:
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
        person = _person_by_name(ctx, args.name)
        ctx.update_person(person.id, name=args.new_name, actor="cli")
        print(f"renamed {person.name} to {args.new_name}")
    elif args.action == "remove":
        person = _person_by_name(ctx, args.name)
        ctx.remove_person(person.id, forget_event_crops=args.forget_crops, actor="cli")
        print(f"removed {person.name} and {person.template_count} face templates")
    elif args.action == "erase":
        from faceguard.core.privacy_cli import cmd_erase

        return cmd_erase(ctx, args)
    elif args.action == "export":
        from faceguard.core.privacy_cli import cmd_export

        return cmd_export(ctx, args)
    return EXIT_OK


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"{text!r} is not a date (use YYYY-MM-DD)") from error


# No event predates FaceGuard; one day inside each end keeps local-time conversion in range.
FIRST_LOG_DAY, LAST_LOG_DAY = date(1970, 1, 2), date(9999, 12, 30)


def cmd_log(ctx: AppContext, args: argparse.Namespace) -> int:
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
        person = _person_by_name(ctx, args.person).id
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


def cmd_bench(ctx: AppContext, args: argparse.Namespace) -> int:
    from faceguard.bench import format_table, run_benchmarks

    report = run_benchmarks(ctx, repeats=args.repeats, sizes=args.sizes,
                            sections=args.sections)
    print(json.dumps(report, indent=1) if args.json else format_table(report))
    return EXIT_OK


GuiOpener = Callable[[AppContext, argparse.Namespace], int]


# -- parser -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceguard", description="FaceGuard face-recognition kiosk. With no command, "
        "opens the kiosk window.")
    parser.add_argument("--version", action="version", version=f"faceguard {__version__}")
    parser.add_argument("--data-dir", help="data folder (default: the user data folder; "
                        "or $FACEGUARD_DATA_DIR)")
    parser.add_argument("--passphrase-file", metavar="FILE",
                        help="the passphrase of an encrypted library (first line of FILE; "
                        "default: $FACEGUARD_PASSPHRASE)")
    parser.add_argument("--min-face", type=int, metavar="PX",
                        help="minimum face size in pixels for detection (default from settings)")
    parser.add_argument("--demo", action="store_true",
                        help="open the built-in demo (no camera needed; throw-away data)")
    parser.add_argument("--source", help="video source for the kiosk window: camera index, "
                        "video file, stream URL or image folder")
    parser.add_argument("--kiosk", action="store_true", help="open full-screen (kiosk mode)")
    parser.add_argument("--self-test", action="store_true",
                        help="check the models, the pipeline and a database, then exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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

    p = commands.add_parser("identify", help="identify the faces in images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per line per image")
    _add_pick(p)
    p.set_defaults(func=cmd_identify)

    p = commands.add_parser("verify", help="are the largest faces of two images one person?")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--json", action="store_true")
    _add_pick(p)
    p.set_defaults(func=cmd_verify)

    p = commands.add_parser("embed", help="write the embeddings of images to a .npy file")
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.add_argument("--list", help="file with one image path a line")
    p.add_argument("--out", required=True, help="output .npy file")
    _add_pick(p)
    p.set_defaults(func=cmd_embed)

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

    p = commands.add_parser("bench", help="measure the latency of each pipeline stage")
    p.add_argument("--json", action="store_true")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000],
                   help="library sizes for the matching benchmark")
    p.add_argument("--sections", nargs="+", metavar="NAME",
                   default=["stages", "frame", "tracking", "idle", "peak", "cold_start",
                            "memory", "encryption"],
                   help="what to measure: stages (detect, align, embed, match), frame "
                   "(whole frame with and without tracking, face_recognition's stack), "
                   "tracking (accuracy on the demo), idle, peak, cold_start, memory, "
                   "encryption (opening 100k templates and writing an event, plain and "
                   "encrypted)")
    p.set_defaults(func=cmd_bench)

    p = commands.add_parser("soak", help="run the kiosk window on the demo for N minutes and "
                            "report frames, events, memory and GUI stalls (JSON lines)")
    p.add_argument("--minutes", dest="soak_minutes", type=_positive_float, default=60.0)
    p.add_argument("--every", dest="soak_every", type=_positive_float, default=30.0,
                   metavar="SECONDS", help="seconds between samples (default 30)")
    p.set_defaults(func=None)

    _add_optional_commands(commands)
    return parser


def _add_pick(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pick", choices=PICKS, default="largest",
                        help="which face counts: the largest whole face (default) or the one "
                        "nearest the image centre (LFW's convention); faces cut off by the "
                        "image border come last either way")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
    return value


def _add_optional_commands(commands: argparse._SubParsersAction) -> None:
    """Commands that live in their own modules (kiosk runner, library upkeep, evaluation).

    A broken import fails loudly; only the evaluation package may be absent (a kiosk bundle
    built without it), and then its commands are simply not offered.
    """
    for module_name in ("faceguard.kiosk.cli", "faceguard.core.library_cli",
                        "faceguard.core.config_cli", "faceguard.core.privacy_cli",
                        "faceguard.core.security_cli",
                        "faceguard.core.door_cli",
                        "faceguard.core.fleet_cli",
                        "faceguard.core.model_cli",
                        OPTIONAL_COMMANDS):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if module_name == OPTIONAL_COMMANDS and error.name in _OPTIONAL_PACKAGES:
                continue
            raise
        module.register(commands)


OPTIONAL_COMMANDS = "faceguard.evaluation.cli"
_OPTIONAL_PACKAGES = ("faceguard.evaluation", "faceguard.evaluation.cli")


class _PrefixedFormatter(logging.Formatter):
    """``faceguard: warning: ...`` like every other line the CLI writes to stderr."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno >= logging.ERROR else f"{record.levelname.lower()}: "
        return f"faceguard: {level}{record.getMessage()}"


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (tests and pipes replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(one_line(self.format(record)), file=sys.stderr)
        except Exception:  # logging must never break a command
            self.handleError(record)


def _log_to_stderr() -> None:
    """Library warnings reach the user as prefixed one-line messages (once per process)."""
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler(logging.WARNING)
        handler.setFormatter(_PrefixedFormatter())
        root.addHandler(handler)


def main(argv: Sequence[str] | None = None, open_gui: GuiOpener | None = None) -> int:
    """Run one command; with none, open the kiosk window through ``open_gui``."""
    _log_to_stderr()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        ctx = AppContext(args.data_dir, min_face=args.min_face,
                         create=not getattr(args, "reads_only", False),
                         passphrase_file=args.passphrase_file)
    except FaceGuardError as error:
        _err(str(error))
        return EXIT_ERROR
    try:
        func = getattr(args, "func", None)
        if args.self_test:
            from faceguard.selftest import run_self_test

            return run_self_test(ctx)
        if func is None:
            if open_gui is None:
                raise CommandError("no command given (see faceguard --help)")
            return int(open_gui(ctx, args))
        code = int(func(ctx, args))
        if "library" in ctx.__dict__ and ctx.library.damage:  # a read that still worked
            _err(f"warning: {ctx.library.damage}")
        return code
    except FaceGuardError as error:
        _err(str(error))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
