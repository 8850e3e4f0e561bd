"""The synchronous runner the GUI tests swap in for the window's QThread runner."""

from __future__ import annotations

from faceguard.gui.tasks import Worker


class SyncRunner:
    """Runs each worker immediately in the calling thread: every signal has arrived (in the
    test's thread) before :meth:`start` returns."""

    def __init__(self) -> None:
        self.started: list[Worker] = []

    def start(self, worker: Worker) -> None:
        self.started.append(worker)
        worker.run()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        for worker in self.started:
            worker.cancel()
        return True
