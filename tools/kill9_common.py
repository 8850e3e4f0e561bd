"""What the kill -9 harnesses (``kill9_library.py``, ``kill9_privacy.py``) share: the
``faceguard`` command line, the counts every run keeps, killing a try's process at its moment,
recording what the check found, and printing the summary."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def faceguard(data_dir: Path, *args: str) -> list[str]:
    """The command line of a ``faceguard`` process on ``data_dir``."""
    return [sys.executable, "-m", "faceguard.launcher", "--data-dir", str(data_dir), *args]


@dataclass
class KillCounts:
    """What every kill -9 run counts."""

    tries: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    killed_while_running: int = 0
    finished_before_kill: int = 0
    failures: list[str] = field(default_factory=list)

    def kill(self, process: subprocess.Popen[bytes], operation: str) -> None:
        """SIGKILL the try's process if it still runs (else it finished first), and count it."""
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            self.killed_while_running += 1
        else:
            self.finished_before_kill += 1
        process.wait(timeout=60)
        self.tries += 1
        self.by_operation[operation] += 1

    def found(self, index: int, operation: str, problems: list[str]) -> None:
        """Record (and show at once) what the check after try ``index`` found."""
        for problem in problems:
            self.failures.append(f"try {index} ({operation}): {problem}")
            print(self.failures[-1], file=sys.stderr, flush=True)

    def progress(self, index: int, tries: int) -> None:
        """A progress line every ten tries."""
        if (index + 1) % 10 == 0:
            print(f"{index + 1}/{tries} tries, {len(self.failures)} failures",
                  file=sys.stderr, flush=True)


def finish(counts: KillCounts, summary: dict[str, Any], as_json: bool, text: str) -> int:
    """Print the summary (JSON, or the line ``text``); exit status 1 when anything failed."""
    if as_json:
        print(json.dumps(summary))
    else:
        print(text)
    return 0 if not counts.failures else 1
