"""Kill FaceGuard with SIGKILL at random moments and check that the library survives each time.

Each try starts one real ``faceguard`` process on one data folder (enrol a person, import a
folder of people, or the headless kiosk on the demo video writing events), kills it with
SIGKILL after a random delay, then opens the library and checks it: SQLite's integrity and
foreign-key checks, the schema version, that everyone enrolled before the try is still there
with their templates, and that no photo file is enrolled twice for one person.

    python tools/kill9_library.py --tries 120            # about 6 minutes on 2 cores
    python tools/kill9_library.py --tries 10 --seed 3 --json

Exit code 0 when every check passed, 1 otherwise (each failure is printed).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kill9_common import KillCounts, faceguard, finish

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo"
OPERATIONS = ("enroll", "import", "kiosk")
CONSENT = "kill -9 test"  # a new library requires a consent record before enrolment


@dataclass
class Report(KillCounts):
    """What the run did and found."""

    people: int = 0
    templates: int = 0
    events: int = 0


def make_import_folder(root: Path, index: int) -> Path:
    """Three people with two photos each (the demo photos, some of them flipped)."""
    folder = root / f"import-{index}"
    import cv2

    for person, photo in (("Eileen Collins", "astronaut.png"),
                          ("Grace Hopper", "grace_hopper.jpg")):
        target = folder / f"{person} {index}"
        target.mkdir(parents=True)
        shutil.copy(DEMO / photo, target / f"a{Path(photo).suffix}")
        image = cv2.imread(str(DEMO / photo))
        assert image is not None
        cv2.imwrite(str(target / "b.png"), cv2.resize(image, None, fx=0.9, fy=0.9))
    return folder


def command_for(operation: str, data_dir: Path, work: Path, index: int) -> list[str]:
    if operation == "enroll":
        photo = DEMO / random.choice(["astronaut.png", "grace_hopper.jpg"])
        return faceguard(data_dir, "enroll", f"Person {index}", str(photo),
                         "--if-lookalike", "force", "--reason", "kill -9 test",
                         "--consent-by", CONSENT)
    if operation == "import":
        return faceguard(data_dir, "import", str(make_import_folder(work, index)),
                         "--consent-by", CONSENT)
    return faceguard(data_dir, "run", "--headless", "--source", "demo", "--realtime", "--loop")


def snapshot(library_file: Path) -> dict[int, int]:
    """person id -> template count, read with plain sqlite3 (no FaceGuard code)."""
    with sqlite3.connect(library_file) as conn:
        rows = conn.execute("SELECT p.id, count(t.id) FROM people p LEFT JOIN templates t "
                            "ON t.person_id = p.id GROUP BY p.id").fetchall()
    return {int(pid): int(count) for pid, count in rows}


def check_library(library_file: Path, before: dict[int, int]) -> list[str]:
    """Everything that must hold after a kill (empty list: intact)."""
    problems: list[str] = []
    try:
        with sqlite3.connect(library_file) as conn:
            integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                problems.append(f"integrity_check: {integrity[:3]}")
            foreign = conn.execute("PRAGMA foreign_key_check").fetchall()
            if foreign:
                problems.append(f"foreign_key_check: {foreign[:3]}")
            duplicates = conn.execute(
                "SELECT person_id, content_sha256, count(*) FROM templates WHERE "
                "content_sha256 IS NOT NULL GROUP BY person_id, content_sha256 "
                "HAVING count(*) > 1").fetchall()
            if duplicates:
                problems.append(f"photo enrolled twice for one person: {duplicates[:3]}")
            orphans = conn.execute("SELECT count(*) FROM people p WHERE NOT EXISTS (SELECT 1 "
                                   "FROM templates t WHERE t.person_id = p.id)").fetchone()[0]
            if orphans:
                problems.append(f"{orphans} people without a template (half an enrolment)")
    except sqlite3.Error as error:
        return [f"cannot read the library: {error}"]
    after = snapshot(library_file)
    for person_id, templates in before.items():
        if after.get(person_id, 0) < templates:
            problems.append(f"person {person_id} lost templates ({templates} -> "
                            f"{after.get(person_id, 0)})")
    opened = subprocess.run(faceguard(library_file.parent, "people", "list"),
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    if opened.returncode != 0 or "Traceback" in opened.stderr:
        problems.append(f"faceguard people list failed: {opened.stderr.strip()[-300:]}")
    return problems


def run(tries: int, seed: int, max_delay_s: float, keep: Path | None) -> Report:
    random.seed(seed)
    work = Path(tempfile.mkdtemp(prefix="faceguard-kill9-"))
    data_dir = keep or work / "data"
    library_file = data_dir / "faceguard.db"
    report = Report()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    seed_command = faceguard(data_dir, "enroll", "Seed Person", str(DEMO / "astronaut.png"),
                             "--consent-by", CONSENT)
    seeded = subprocess.run(seed_command, capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=300)
    if seeded.returncode != 0:
        raise SystemExit(f"seeding the library failed: {seeded.stderr.strip()}")
    try:
        for index in range(tries):
            operation = OPERATIONS[index % len(OPERATIONS)] if index < len(OPERATIONS) \
                else random.choice(OPERATIONS)
            before = snapshot(library_file)
            process = subprocess.Popen(command_for(operation, data_dir, work, index),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       cwd=REPO, env=env)
            time.sleep(random.uniform(0.05, max_delay_s))
            report.kill(process, operation)
            report.found(index, operation, check_library(library_file, before))
            report.progress(index, tries)
        final = snapshot(library_file)
        report.people, report.templates = len(final), sum(final.values())
        with sqlite3.connect(library_file) as conn:
            report.events = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-delay", type=float, default=4.0,
                        help="kill after a random delay up to this many seconds")
    parser.add_argument("--keep", type=Path, help="data folder to use and keep")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run(args.tries, args.seed, args.max_delay, args.keep)
    summary = {"tries": report.tries, "operations": dict(report.by_operation),
               "killed_while_running": report.killed_while_running,
               "finished_before_kill": report.finished_before_kill,
               "failures": report.failures, "people": report.people,
               "templates": report.templates, "events": report.events}
    return finish(report, summary, args.json,
                  f"{report.tries} tries ({dict(report.by_operation)}): "
                  f"{report.killed_while_running} killed while running, "
                  f"{report.finished_before_kill} finished first; library now "
                  f"{report.people} people, {report.templates} templates, {report.events} "
                  f"events; {len(report.failures)} failures")


if __name__ == "__main__":
    sys.exit(main())
