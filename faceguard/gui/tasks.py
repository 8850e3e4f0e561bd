"""The window's one threading helper: workers run off the GUI thread, results come back only
through Qt signals.

A :class:`Worker` is a QObject whose :meth:`Worker.work` does the slow part (the live loop,
checking photos, a bulk import). A :class:`Runner` starts workers: :class:`ThreadRunner` gives
each one its own QThread (signals then reach the GUI queued, in the GUI thread; connect them
to methods of GUI objects, not to lambdas, which PySide runs in the emitting thread). Tests
swap in ``tests.sync_runner.SyncRunner``, which runs them at once in the caller's thread, so
every signal has arrived before ``start`` returns. Cancelling is cooperative: workers check
:attr:`Worker.cancelled`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from PySide6.QtCore import QObject, QThread, Signal, Slot

from faceguard.errors import FaceGuardError

log = logging.getLogger(__name__)

P = ParamSpec("P")
Owner = TypeVar("Owner")


def while_open(slot: Callable[Concatenate[Owner, P], None]
               ) -> Callable[Concatenate[Owner, P], None]:
    """A slot that does nothing once its owner (a window with ``closed``) has shut down: a
    signal a worker queued before the shutdown is still delivered after it, even though the
    connection was cut."""
    @wraps(slot)
    def guarded(owner: Owner, /, *args: P.args, **kwargs: P.kwargs) -> None:
        if not getattr(owner, "closed", False):
            slot(owner, *args, **kwargs)

    return guarded


class Worker(QObject):
    """Slow work for another thread. Emits ``failed`` with a message, then ``finished``."""

    failed = Signal(str)
    finished = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Ask the work to stop soon (thread-safe)."""
        self._cancel.set()

    def work(self) -> None:
        """Do the work (in the worker's thread); report through signals."""
        raise NotImplementedError

    @Slot()
    def run(self) -> None:
        """Run :meth:`work`, turning errors into ``failed``; always ends with ``finished``."""
        try:
            self.work()
        except FaceGuardError as error:
            self.failed.emit(str(error))
        except Exception as error:  # a bug must reach the screen, not kill the thread
            log.exception("background work failed")
            self.failed.emit(f"unexpected error: {error}")
        finally:
            self.finished.emit()


class Relay(QObject):
    """Calls a Python function in the thread where the relay was made (the GUI thread)."""

    def __init__(self, function: Callable[[Any], None]) -> None:
        super().__init__()
        self.function = function

    @Slot(object)
    def call(self, value: object) -> None:
        self.function(value)


class Task(Worker):
    """A function run as a worker: it gets the task (for ``report`` and ``cancelled``) and its
    return value is emitted with ``done``."""

    progress = Signal(int, int)
    done = Signal(object)

    def __init__(self, function: Callable[[Task], Any]) -> None:
        super().__init__()
        self.function = function
        self._relays: list[Relay] = []

    def on_done(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(result)`` in the calling (GUI) thread when the task is done."""
        relay = Relay(callback)
        self._relays.append(relay)
        self.done.connect(relay.call)

    def report(self, done: int, total: int) -> None:
        """Progress for a progress bar (thread-safe: goes out as a signal)."""
        self.progress.emit(done, total)

    def work(self) -> None:
        result = self.function(self)
        if not self.cancelled:
            self.done.emit(result)


class Runner(Protocol):
    """Starts workers; :meth:`shutdown` cancels them and waits for their threads."""

    def start(self, worker: Worker) -> None:
        """Run a worker (its signals may arrive before or after this returns)."""
        ...

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel all workers and wait for them; False when some did not stop in time."""
        ...


class ThreadRunner(QObject):
    """Each worker in its own QThread; threads are cleaned up when their worker finishes."""

    def __init__(self) -> None:
        super().__init__()
        self._running: dict[QThread, Worker] = {}

    def start(self, worker: Worker) -> None:
        thread = QThread()
        thread.setObjectName(type(worker).__name__)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit)
        # The QThread object lives in the GUI thread, so this runs there (queued).
        thread.finished.connect(lambda: self._forget(thread))
        self._running[thread] = worker
        thread.start()

    def _forget(self, thread: QThread) -> None:
        worker = self._running.pop(thread, None)
        if worker is not None:
            worker.deleteLater()
        thread.deleteLater()

    @property
    def active(self) -> int:
        """Workers still running."""
        return len(self._running)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        for worker in list(self._running.values()):
            worker.cancel()
        stopped = True
        for thread in list(self._running):
            thread.quit()
            stopped = thread.wait(timeout_ms) and stopped
        return stopped
