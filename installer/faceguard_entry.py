"""Entry point of the frozen FaceGuard program (PyInstaller runs this file as __main__).

Same behaviour as the `faceguard` console script: a command or `--self-test` runs the CLI,
no command opens the kiosk window.
"""

from __future__ import annotations

import multiprocessing
import sys

from faceguard.launcher import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not start the app again
    sys.exit(main())
