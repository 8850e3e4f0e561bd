"""The background thread that runs sync rounds: uploads soon after a local change, downloads
when the server notifies a change, a full round every interval, back-off after failures."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from faceguard.errors import FaceGuardError
from faceguard.fleet import local
from faceguard.fleet.engine import SyncEngine
from faceguard.fleet.server_schema import ServerError
from faceguard.fleet.status import FleetStatus, fleet_status

log = logging.getLogger("faceguard.fleet.engine")


class SyncLoop:
    """A background thread running sync rounds: an upload within ``poll_s`` of a local change
    (at once after :meth:`wake`), a download at once when the server notifies a change of
    people, templates or rules, and a full round every ``interval_s`` (which also brings
    the other doors' entries). After a failure the next try waits
    ``backoff_s[0]`` doubling up to ``backoff_s[1]``, unless the listener reconnects (the server
    is back). It never blocks the caller (the GUI thread); ``on_status`` gets a
    :class:`FleetStatus` after every round and whenever the count of waiting entries changes."""

    def __init__(self, engine: SyncEngine, data_dir: Path, *, interval_s: float = 30.0,
                 poll_s: float = 1.0, backoff_s: tuple[float, float] = (1.0, 60.0),
                 on_status: Callable[[FleetStatus], None] | None = None) -> None:
        self.engine, self.data_dir = engine, data_dir
        self.interval_s, self.poll_s, self.backoff_s = interval_s, poll_s, backoff_s
        self.on_status = on_status
        self.failures = 0
        self.rounds = 0
        self._wake = threading.Event()
        self._server_back = threading.Event()
        self._changed = threading.Event()  # the server notified a change of people or rules
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-sync", daemon=True)
        self._listener = threading.Thread(target=self._listen, name="fleet-listen",
                                          daemon=True)

    def start(self) -> SyncLoop:
        self._thread.start()
        self._listener.start()
        return self

    def wake(self) -> None:
        """Sync soon (a local change or a server notification)."""
        self._wake.set()

    def delay(self) -> float:
        """Seconds to wait after the current run of failures."""
        return min(self.backoff_s[0] * 2 ** max(self.failures - 1, 0), self.backoff_s[1])

    def _run(self) -> None:
        next_full = 0.0  # monotonic time of the next round that also downloads
        retry_at = 0.0  # after a failure: the end of the back-off
        shown: int | None = None  # the waiting count last reported
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                pending = local.waiting(self.engine.library).total
            except FaceGuardError:
                pending = 0
            full = now >= next_full or self._changed.is_set()
            if self.failures:  # back-off: only the time, or the server seen back, ends it
                due, full = now >= retry_at or self._server_back.is_set(), True
            else:
                due = full or self._wake.is_set() or pending > 0
            if due:
                self._wake.clear()
                self._server_back.clear()
                if full:
                    self._changed.clear()
                try:
                    self.engine.sync_once(download=full)
                    self.failures = 0
                    if full:
                        next_full = time.monotonic() + self.interval_s
                except FaceGuardError as error:
                    self.failures += 1
                    retry_at = time.monotonic() + self.delay()
                    log.debug("sync round failed (%d in a row): %s", self.failures, error)
                except Exception:  # a bug must not kill the loop silently
                    self.failures += 1
                    retry_at = time.monotonic() + self.delay()
                    log.exception("sync round failed")
                self.rounds += 1
                shown = self._report()
            elif pending != shown:  # entries logged meanwhile: the count on screen follows
                shown = self._report()
            self._wake.wait(self.poll_s)

    def _report(self) -> int | None:
        on_status = self.on_status  # read once: a window that closes sets it to None
        if on_status is None:
            return None
        try:
            status = fleet_status(self.engine.library, self.data_dir)
        except FaceGuardError as error:
            log.debug("status not read: %s", error)
            return None
        on_status(status)
        return status.waiting

    def _listen(self) -> None:
        """Hold a LISTEN connection; each notification wakes the sync thread."""
        failures = 0
        while not self._stop.is_set():
            try:
                conn = self.engine.listen_connection()
            except ServerError:
                failures += 1
                self._stop.wait(min(self.backoff_s[0] * 2 ** (failures - 1), self.backoff_s[1]))
                continue
            failures = 0
            self._server_back.set()  # reconnected: sync now, whatever the back-off
            self._changed.set()  # and take what was missed
            self.wake()
            try:
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=1.0):
                        # other doors' entries come with the next full round; people,
                        # templates and rules at once
                        if note.payload != "events":
                            self._changed.set()
                            self.wake()
            except Exception as error:  # the server went away: reconnect with back-off
                log.debug("fleet listener lost: %s", error)
            finally:
                try:
                    conn.close()
                except Exception:
                    log.debug("listener close failed", exc_info=True)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        self._listener.join(timeout_s)
        self.engine.close()
