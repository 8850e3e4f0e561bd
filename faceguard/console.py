"""What every command-line entry point shares: exit codes and the one-line error format.

Exit codes: 0 success; 1 error (one-line reason on stderr); 2 bad usage; 3 partly done (some
inputs failed; each is named on stderr); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from typing import TextIO

from faceguard.errors import FaceGuardError
from faceguard.wording import one_line

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CommandError(FaceGuardError):
    """A command cannot go on; the message says why."""


def print_error(message: str) -> None:
    """``faceguard: <message>`` on one line of stderr (control characters escaped)."""
    print(f"faceguard: {one_line(message)}", file=sys.stderr, flush=True)


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_reported = -1

    def __call__(self, done: int, total: int | None = None) -> None:
        total = total or self.total
        if self.tty:
            width = 30
            filled = int(width * done / max(total, 1))
            bar = "#" * filled + "-" * (width - filled)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{self.label} [{bar}] {done}/{total}{end}")
            self.stream.flush()
        else:
            step = max(1, total // 10)
            if done == total or done // step != self._last_reported // step:
                self.stream.write(f"{self.label}: {done}/{total}\n")
                self._last_reported = done
