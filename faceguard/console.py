"""What every command-line entry point shares: exit codes and the one-line error format.

Exit codes: 0 success; 1 error (one-line reason on stderr); 2 bad usage; 3 partly done (some
inputs failed; each is named on stderr); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys

from faceguard.wording import one_line

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def print_error(message: str) -> None:
    """``faceguard: <message>`` on one line of stderr (control characters escaped)."""
    print(f"faceguard: {one_line(message)}", file=sys.stderr, flush=True)
