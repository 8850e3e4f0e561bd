"""Kill FaceGuard with SIGKILL during a purge, an erasure or turning encryption on, and check
that each interrupted operation is all-or-nothing and the library opens afterwards.

Each try copies a prepared library (people with templates, old and new events with face
crops, an audit trail), starts one real ``faceguard`` process on it (``purge --compact``,
``people erase NAME`` or ``encryption enable``), kills it with SIGKILL after a random delay
(in turns: 0.3-1.5 s after the start, which mostly lands before the operation's first commit,
or drawn once the process has begun writing to the library, which lands in its batches, its
VACUUM or its checkpoint) and checks the copy with plain ``sqlite3`` and with FaceGuard:

- ``PRAGMA integrity_check`` and ``foreign_key_check`` pass, the audit hash chain verifies,
  and ``faceguard people list`` opens the library;
- purge: either every event older than the retention is gone and one ``purge`` entry says so,
  or none is;
- erasure: the person is either all there (record, templates, events) or all gone (no
  template, every event pseudonymised, an ``erase_person`` entry);
- encryption: every face blob is either the original plaintext or a sealed blob that opens,
  with the passphrase, to exactly the original.

    python tools/kill9_privacy.py --tries 60          # about 3 minutes on 2 cores
    python tools/kill9_privacy.py --tries 6 --seed 2 --json

Exit code 0 when every check passed, 1 otherwise (each failure is printed).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kill9_common import KillCounts, faceguard, finish

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

OPERATIONS = ("purge", "erase", "encrypt")
PASSPHRASE = "kill nine passphrase 2026"
VICTIM = "Person 7"
OLD_DAYS = 200  # the old events are this old; the retention keeps 90 days


@dataclass
class Report(KillCounts):
    """What the run did and found."""

    outcomes: Counter[str] = field(default_factory=Counter)  # "purge: done", "erase: none"...
    started_work: int = 0  # tries timed from the first write whose process had begun writing


def _jpeg_like(rng: random.Random, size: int) -> bytes:
    return b"\xff\xd8" + rng.randbytes(size)


def prepare(folder: Path, people: int, events: int, seed: int) -> dict[str, str]:
    """The base library; returns the SHA-256 of every face blob, keyed 'table.column:id'."""
    import numpy as np

    from faceguard.library.database import FaceLibrary

    rng = random.Random(seed)
    folder.mkdir(parents=True)
    now = datetime.now(UTC)
    with FaceLibrary.open(folder / "faceguard.db") as library:
        ids = []
        for number in range(people):
            person = library.add_person(f"Person {number}", actor="cli")
            ids.append(person.id)
            for _ in range(2):
                vector = np.frombuffer(rng.randbytes(512), dtype=np.uint8).astype(np.float32)
                library.add_template(person.id, vector + 1, "m", 0.9, _jpeg_like(rng, 12_000),
                                     actor="cli")
        with library.transaction("logging test events"):
            for number in range(events):
                age = timedelta(days=OLD_DAYS) if number % 2 else timedelta(hours=number % 48)
                library.add_event(now - age, "kiosk-1", ids[number % people], 0.9, "known",
                                  _jpeg_like(rng, 6_000))
        with library.upkeep("checkpointing", transaction=False) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return blob_digests(folder / "faceguard.db")


def blob_digests(path: Path) -> dict[str, str]:
    """SHA-256 of every face blob as stored (plaintext before encryption)."""
    digests: dict[str, str] = {}
    with sqlite3.connect(path) as conn:
        for table, column in (("templates", "embedding"), ("templates", "crop_jpeg"),
                              ("events", "crop_jpeg")):
            for row_id, blob in conn.execute(f"SELECT id, {column} FROM {table} WHERE "
                                             f"{column} IS NOT NULL"):
                digests[f"{table}.{column}:{row_id}"] = hashlib.sha256(blob).hexdigest()
    return digests


def check(data_dir: Path, operation: str, digests: dict[str, str], old_before: int) -> \
        tuple[list[str], str]:
    """Problems after the kill (empty: intact) and the outcome seen ('done' or 'none')."""
    from faceguard.errors import LibraryError
    from faceguard.library import audit_chain, crypto, encryption
    from faceguard.library.database import FaceLibrary

    path = data_dir / "faceguard.db"
    problems: list[str] = []
    outcome = "none"
    try:
        with sqlite3.connect(path) as conn:
            integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                problems.append(f"integrity_check: {integrity[:3]}")
            if conn.execute("PRAGMA foreign_key_check").fetchall():
                problems.append("foreign_key_check failed")
            report = audit_chain.verify(conn)
            if not report.ok:
                problems.append(f"audit chain: {report.problems[:2]}")
            actions = [r[0] for r in conn.execute("SELECT action FROM audit")]
            cutoff = (datetime.now(UTC) - timedelta(days=90)).isoformat()
            old = int(conn.execute("SELECT count(*) FROM events WHERE timestamp < ?",
                                   (cutoff,)).fetchone()[0])
            if operation == "purge":
                if old == 0 and "purge" in actions:
                    outcome = "done"
                elif old != old_before or "purge" in actions:
                    problems.append(f"half a purge: {old} of {old_before} old events left, "
                                    f"purge audited: {'purge' in actions}")
            if operation == "erase":
                person = conn.execute("SELECT id FROM people WHERE name = ?",
                                      (VICTIM,)).fetchone()
                pseudonymised = int(conn.execute("SELECT count(*) FROM events WHERE "
                                                 "person_name LIKE 'erased-%'").fetchone()[0])
                if person is None:
                    outcome = "done"
                    if not pseudonymised or "erase_person" not in actions:
                        problems.append("the person is gone but their events are not "
                                        "pseudonymised or the erasure is not audited")
                else:
                    templates = int(conn.execute("SELECT count(*) FROM templates WHERE "
                                                 "person_id = ?", person).fetchone()[0])
                    if templates != 2 or pseudonymised or "erase_person" in actions:
                        problems.append(f"half an erasure: {templates} templates, "
                                        f"{pseudonymised} events pseudonymised")
    except sqlite3.Error as error:
        return [f"cannot read the library: {error}"], outcome
    if operation == "encrypt":
        try:
            with FaceLibrary.open(path) as library:
                if library.encrypted():
                    encryption.unlock(library, PASSPHRASE)
                    outcome = "done" if encryption.state(library) == "on" else "partly"
                problems += _check_blobs(library, digests, crypto)
        except LibraryError as error:
            problems.append(f"cannot open the encrypted library: {error}")
    opened = subprocess.run(faceguard(data_dir, "people", "list"), capture_output=True,
                            text=True, cwd=REPO, timeout=120,
                            env={**os.environ, crypto.PASSPHRASE_ENV: PASSPHRASE})
    if opened.returncode != 0 or "Traceback" in opened.stderr:
        problems.append(f"faceguard people list failed: {opened.stderr.strip()[-300:]}")
    return problems, outcome


def _check_blobs(library: object, digests: dict[str, str], crypto: object) -> list[str]:
    """Each face blob reads back (sealed or not) as its original bytes."""
    from faceguard.library.database import FaceLibrary

    assert isinstance(library, FaceLibrary)
    problems: list[str] = []
    readers = {
        "templates.embedding": lambda i: library.get_template_vector(i).astype("<f4").tobytes(),
        "templates.crop_jpeg": library.get_template_crop,
        "events.crop_jpeg": library.get_event_crop,
    }
    for key, digest in digests.items():
        where, row_id = key.split(":")
        plain = readers[where](int(row_id))
        if hashlib.sha256(plain or b"").hexdigest() != digest:
            problems.append(f"{key} does not read back as its original bytes")
            if len(problems) > 3:
                break
    return problems


def wait_for_work(data_dir: Path, process: subprocess.Popen[bytes],
                  timeout_s: float = 60.0) -> bool:
    """Wait until the process writes to the library (its ``-wal`` grows: the operation has
    begun, past the start-up of Python and the imports). False if it ended first."""
    wal = data_dir / "faceguard.db-wal"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if wal.stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    return False


def command_for(operation: str, data_dir: Path) -> list[str]:
    if operation == "purge":
        return faceguard(data_dir, "purge", "--compact")
    if operation == "erase":
        return faceguard(data_dir, "people", "erase", VICTIM)
    return faceguard(data_dir, "encryption", "enable")


def run(tries: int, seed: int, max_delay_s: float, people: int = 40,
        events: int = 4000, from_start: bool = True) -> Report:
    """``from_start=False``: every kill is timed from the first write (lands in the work
    however fast the machine is)."""
    random.seed(seed)
    work = Path(tempfile.mkdtemp(prefix="faceguard-kill9-privacy-"))
    base = work / "base"
    report = Report()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FACEGUARD_PASSPHRASE": PASSPHRASE}
    try:
        digests = prepare(base, people, events, seed)
        old_before = events // 2
        for index in range(tries):
            operation = OPERATIONS[index % len(OPERATIONS)]
            data_dir = work / f"try-{index}"
            shutil.copytree(base, data_dir)
            process = subprocess.Popen(command_for(operation, data_dir),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       cwd=REPO, env=env)
            if from_start and (index // len(OPERATIONS)) % 2 == 0:
                # From the start: most kills land before the operation's first commit.
                time.sleep(random.uniform(0.3, 1.5))
            else:
                # Once it writes: kills land in its batches, its VACUUM, its checkpoint.
                if wait_for_work(data_dir, process):
                    report.started_work += 1
                time.sleep(random.uniform(0.0, max_delay_s))
            report.kill(process, operation)
            problems, outcome = check(data_dir, operation, digests, old_before)
            report.outcomes[f"{operation}: {outcome}"] += 1
            report.found(index, operation, problems)
            shutil.rmtree(data_dir, ignore_errors=True)
            report.progress(index, tries)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-delay", type=float, default=0.8,
                        help="once the process has begun writing to the library, kill it "
                        "after a random delay up to this many seconds")
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run(args.tries, args.seed, args.max_delay, events=args.events)
    summary = {"tries": report.tries, "operations": dict(report.by_operation),
               "started_work": report.started_work,
               "outcomes": dict(report.outcomes),
               "killed_while_running": report.killed_while_running,
               "finished_before_kill": report.finished_before_kill,
               "failures": report.failures}
    return finish(report, summary, args.json,
                  f"{report.tries} tries ({dict(report.by_operation)}): "
                  f"{report.killed_while_running} killed while running, "
                  f"{report.finished_before_kill} finished first ({report.started_work} had "
                  f"begun writing); outcomes "
                  f"{dict(report.outcomes)}; {len(report.failures)} failures")


if __name__ == "__main__":
    sys.exit(main())
