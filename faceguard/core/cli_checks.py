"""What several commands that rewrite the library check and say alike.

- :func:`kiosk_stopped`: erasing a person or encrypting the face data is refused while a kiosk
  runs on the data folder (its memory still holds the face data);
- :func:`warn_about_backups`: backups made before such a change still hold the old data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from faceguard.console import print_error
from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.library.backup import KioskLock, list_backups


@contextmanager
def kiosk_stopped(ctx: AppContext, then: str) -> Iterator[None]:
    """Hold the data folder's kiosk lock exclusively for the block; a running kiosk is a
    FaceGuardError that says to close it, ``then`` (e.g. "enable encryption")."""
    with KioskLock(ctx.data_dir) as lock:
        if not lock.acquire(exclusive=True):
            raise FaceGuardError(f"FaceGuard is running on {ctx.data_dir} (it holds "
                                 f"{lock.path}); close the kiosk, then {then}")
        yield


def warn_about_backups(ctx: AppContext, still: str) -> None:
    """``warning: backups made before now in <folder> <still>`` when there are any."""
    if ctx.library.path is not None and list_backups(ctx.library.path):
        print_error(f"warning: backups made before now in {ctx.library.path.parent / 'backups'} "
                    f"{still}")
