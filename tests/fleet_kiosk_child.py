"""A kiosk process for the fleet fault tests: logs events and runs the kiosk's sync loop.

``python -m tests.fleet_kiosk_child DATA_DIR COUNT INTERVAL_S`` writes COUNT events through the
face library (one every INTERVAL_S seconds, each printed as ``event ID``) while the kiosk's
background sync (:meth:`AppContext.start_sync`, the one ``faceguard run`` starts) uploads
them; then it waits until nothing waits for upload, prints ``done`` and exits 0 (exit 1
after 60 s without getting there). Nothing here stands in for a part: the library, the sync
loop and the server are the real ones.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from faceguard.core.context import AppContext
from faceguard.fleet import local


def main(argv: list[str]) -> int:
    folder, count, interval = argv[0], int(argv[1]), float(argv[2])
    ctx = AppContext(folder)
    try:
        loop = ctx.start_sync()
        assert loop is not None, "the data folder has not joined a fleet"
        for _ in range(count):
            event = ctx.library.add_event(datetime.now(UTC), ctx.settings.kiosk_name, None,
                                          None, "unknown")
            print(f"event {event.id}", flush=True)
            loop.wake()
            time.sleep(interval)
        deadline = time.monotonic() + 60
        while local.waiting(ctx.library).total and time.monotonic() < deadline:
            time.sleep(0.05)
        if local.waiting(ctx.library).total:
            print(f"still waiting: {local.waiting(ctx.library)}", flush=True)
            return 1
        print("done", flush=True)
        return 0
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
