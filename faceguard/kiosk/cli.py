"""``faceguard run``: the kiosk's worker and decisions without a window, events as JSON lines.

Registered into the main parser by :func:`register` (``faceguard.cli`` looks it up). The window
is not opened from here (the core never imports Qt): ``faceguard`` with no command opens it.
"""

from __future__ import annotations

import argparse
import json
import signal
from typing import Any

from faceguard.console import EXIT_INTERRUPTED, EXIT_OK
from faceguard.console import print_error as _err
from faceguard.core.context import AppContext
from faceguard.core.door.monitor import DoorStatus
from faceguard.errors import FaceGuardError
from faceguard.kiosk.decisions import KioskEvent
from faceguard.kiosk.demo import DemoSession, prepare_demo
from faceguard.kiosk.loop import KioskLoop, LoopHooks, SourceStatus
from faceguard.kiosk.pipeline import pipeline_for
from faceguard.kiosk.sources import SourceSpec, make_source
from faceguard.wording import plural


def _print_event(event: KioskEvent) -> None:
    print(json.dumps(event.to_json()), flush=True)


def _print_status(status: SourceStatus) -> None:
    if status.state == "reconnecting":  # a final failure is reported once, as the error
        _err(status.message)


class DoorAlarmPrinter:
    """Says on stderr when a door alarm is raised or cleared (forced open, held open, a
    relay unplugged, an endpoint down); called on the driver's threads."""

    def __init__(self) -> None:
        self._shown: dict[str, str] = {}

    def __call__(self, status: DoorStatus) -> None:
        now = {alarm.kind: alarm.message for alarm in status.alarms}
        for kind, message in now.items():
            if kind not in self._shown:
                _err(f"door alarm: {message}")
        for kind, message in self._shown.items():
            if kind not in now:
                _err(f"door alarm cleared: {message}")
        self._shown = now


def cmd_run(ctx: AppContext, args: argparse.Namespace) -> int:
    """Run the kiosk loop without a window."""
    if not args.headless:
        raise FaceGuardError("`faceguard run` needs --headless; the kiosk window is opened by "
                             "`faceguard` with no command")
    session: DemoSession | None = None
    demo = bool(getattr(args, "demo", False))
    source = getattr(args, "source", None)
    if demo:
        session = prepare_demo(args.data_dir, base=ctx.settings, min_face=args.min_face)
        ctx = session.ctx
    try:
        spec = SourceSpec.parse(source or ("demo" if demo else ctx.settings.source))
        pipeline = pipeline_for(ctx)
        if pipeline.gate is not None:
            pipeline.gate.on_status(DoorAlarmPrinter())
        sync = ctx.start_sync()  # a fleet kiosk: entries go up, the server's changes come down
        ctx.on_person_changed(pipeline.person_removed)

        def logged(event: KioskEvent) -> None:
            _print_event(event)
            if sync is not None:
                sync.wake()

        hooks = LoopHooks(event=logged, status=_print_status)
        loop = KioskLoop(lambda: make_source(spec, loop=args.loop, realtime=args.realtime),
                         pipeline, hooks, realtime=args.realtime, max_frames=args.max_frames,
                         retry_first_open=not spec.live or args.retry)
        stopped_by: list[int] = []

        def stop(number: int, _frame: object) -> None:
            stopped_by.append(number)
            loop.stop()

        previous = {n: signal.signal(n, stop) for n in (signal.SIGINT, signal.SIGTERM)}
        try:
            summary = loop.run()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            pipeline.close()  # the door is released (a local relay de-energised)
        if summary.error and not summary.frames and not stopped_by:
            raise FaceGuardError(summary.error)
        known = sum(e.person_id is not None for e in summary.events)
        attacks = sum(e.attack for e in summary.events)
        attack_note = f", {attacks} suspected attack{'s' if attacks != 1 else ''}" \
            if attacks else ""
        how = f" (stopped by {signal.Signals(stopped_by[0]).name})" if stopped_by else ""
        _err(f"{plural(summary.frames, 'frame')} from {spec.describe()}, "
             f"{plural(len(summary.events), 'event')} ({known} known, "
             f"{len(summary.events) - known - attacks} unknown{attack_note}), "
             f"{plural(summary.dropped, 'frame')} "
             f"dropped, {plural(summary.faults, 'source fault')}{how}")
        if stopped_by:
            return EXIT_INTERRUPTED if stopped_by[0] == signal.SIGINT else EXIT_OK
        if summary.error:
            raise FaceGuardError(summary.error)
        return EXIT_OK
    finally:
        if session is not None:
            session.close()


def register(commands: Any) -> None:
    """Add the ``run`` command to the main parser's subcommands."""
    p = commands.add_parser(
        "run", help="run the kiosk without a window (--headless), events as JSON lines",
        description="Run the kiosk's recognition and decisions on a video source. With "
        "--headless, each logged event is printed as one JSON line on stdout.")
    # SUPPRESS: a top-level --source/--demo given before "run" is not reset by these defaults.
    p.add_argument("--source", metavar="SRC", default=argparse.SUPPRESS,
                   help="camera index, video file, stream URL, image folder or 'demo' "
                   "(default: the source in the settings)")
    p.add_argument("--headless", action="store_true", help="no window; events as JSON lines")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N processed frames")
    p.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                   help="the built-in demo: synthetic video, throw-away library "
                   "(or --data-dir)")
    p.add_argument("--realtime", action="store_true",
                   help="play files at their frame rate, dropping frames when slow "
                   "(default: process every frame of a file)")
    p.add_argument("--loop", action="store_true", help="repeat a file, folder or the demo")
    p.add_argument("--retry", action="store_true",
                   help="keep retrying a camera or stream that cannot be opened at start")
    p.set_defaults(func=cmd_run)
