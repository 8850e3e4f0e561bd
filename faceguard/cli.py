"""The `faceguard` command line. Its outputs are a contract: scripts read them.

Exit codes: 0 success; 1 error (one-line reason on stderr); 2 bad usage; 3 partly done
(some inputs failed; each is named on stderr).

This module builds the parser (the global options, then each area's commands from its own
``*_cli`` module, in the order ``faceguard --help`` lists them) and runs one command.
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

from faceguard import __version__
from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.wording import one_line

from faceguard.console import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, CommandError
from faceguard.console import print_error as _err

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "CommandError", "main"]

# Each module adds its commands with ``register(commands)``; ``bench`` and ``soak`` come
# between the two groups (they sit above the application layer, so they are declared here).
FIRST_COMMANDS = ("faceguard.core.enrol_cli", "faceguard.core.recognition_cli",
                  "faceguard.core.people_cli", "faceguard.core.log_cli")
LATER_COMMANDS = ("faceguard.kiosk.cli", "faceguard.core.library_cli",
                  "faceguard.core.config_cli", "faceguard.core.privacy_cli",
                  "faceguard.core.security_cli", "faceguard.core.door_cli",
                  "faceguard.core.fleet_cli", "faceguard.core.model_cli")
OPTIONAL_COMMANDS = "faceguard.evaluation.cli"
_OPTIONAL_PACKAGES = ("faceguard.evaluation", "faceguard.evaluation.cli")


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

    _add_module_commands(commands, FIRST_COMMANDS)

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

    _add_module_commands(commands, (*LATER_COMMANDS, OPTIONAL_COMMANDS))
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
    return value


def _add_module_commands(commands: argparse._SubParsersAction,
                         module_names: Sequence[str]) -> None:
    """Commands that live in their own modules (enrolment, kiosk runner, library upkeep, ...).

    A broken import fails loudly; only the evaluation package may be absent (a kiosk bundle
    built without it), and then its commands are simply not offered.
    """
    for module_name in module_names:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if module_name == OPTIONAL_COMMANDS and error.name in _OPTIONAL_PACKAGES:
                continue
            raise
        module.register(commands)


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
