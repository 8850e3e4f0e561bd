"""kill -9 during a purge, an erasure and turning encryption on (issue 12): real `faceguard`
processes killed at random moments (tools/kill9_privacy.py); after each kill the library
opens, passes integrity_check and its audit chain, and the operation is all or nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import kill9_privacy  # noqa: E402


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_kill_9_during_purge_erasure_and_encryption_leaves_nothing_half_done() -> None:
    # Timed from each process's first write, within 50 ms: the kills land in the work (its
    # transactions, VACUUM, checkpoint) on a fast machine too; the tool also times from the
    # start.
    report = kill9_privacy.run(tries=6, seed=5, max_delay_s=0.05, events=2000,
                               from_start=False)
    assert report.failures == [], report
    assert report.tries == 6 and set(report.by_operation.values()) == {2}
    assert report.started_work >= 5 and report.killed_while_running >= 4, report
