"""Many doors, one library: kiosks against a real PostgreSQL cluster started by the tests.

No mocks of the database: each test gets a fresh database in the session's cluster
(tests/pg_cluster.py); faults are the real thing (``pg_ctl stop -m immediate``, ``kill -9``).
"""

from __future__ import annotations

import json
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from faceguard.errors import LibraryError
from faceguard.fleet.config import CREDENTIALS_FILE, FLEET_FILE, load_config, read_password
from faceguard.fleet.engine import SyncEngine
from faceguard.fleet.server_schema import ServerError, connect, init_server, server_status
from faceguard.fleet.status import FleetStatus, SyncReport, fleet_status
from faceguard.fleet.sync_loop import SyncLoop
from faceguard.fleet.upload import push_outbox
from faceguard.library import rules
from faceguard.library.database import FaceLibrary
from faceguard.vision.image_io import encode_jpeg
from tests.conftest import make_data_dir, run_cli

CROP = encode_jpeg(np.full((96, 96, 3), 128, np.uint8))


def kiosk(tmp_path: Path, dsn: str, name: str, **settings: object) -> Path:
    """A fresh data folder joined to the server as kiosk ``name``."""
    parent = tmp_path / name
    parent.mkdir()
    folder = make_data_dir(parent, **settings)
    assert run_cli(folder, "kiosk", "join", "--dsn", dsn, "--name", name) == 0
    return folder


def library(folder: Path) -> FaceLibrary:
    return FaceLibrary.open(folder / "faceguard.db")


def engine(folder: Path) -> SyncEngine:
    return SyncEngine.for_data_dir(library(folder), folder, connect_timeout_s=2)


def vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(128).astype(np.float32)


def enrol(lib: FaceLibrary, name: str, seed: int) -> int:
    person = lib.add_person(name, actor="test")
    lib.add_template(person.id, vector(seed), "test-model", 0.9, CROP, f"{name}.jpg")
    return person.id


def server_events(dsn: str) -> list[tuple[str, int, int]]:
    """(kiosk name, seq, local event id) of every event on the server."""
    with connect(dsn) as conn:
        return [(r[0], int(r[1]), int(r[2])) for r in conn.execute(
            "SELECT kiosk_name, seq, (details->>'local_id')::bigint FROM events ORDER BY 1, 2")]


@pytest.fixture()
def server(pg_dsn: str, test_embedder_env: object) -> str:
    """An initialised fleet server (its superuser DSN)."""
    init_server(pg_dsn)
    return pg_dsn


# -- server schema, roles, join ---------------------------------------------------------------


def test_server_init_applies_migrations_once_and_reports_status(pg_dsn: str,
                                                                capsys: pytest.CaptureFixture
                                                                ) -> None:
    first = init_server(pg_dsn)
    assert first.applied == ("001_core", "002_erasure")
    assert init_server(pg_dsn).applied == ()
    with connect(pg_dsn) as conn:
        status = server_status(conn)
        assert status["schema_version"] == 2 and status["people"] == 0
        assert conn.execute("SELECT count(*) FROM faceguard.schema_migrations").fetchone()[0] == 2


def test_an_older_server_is_upgraded_step_by_step_and_kiosks_say_so_meanwhile(
        pg_dsn: str, tmp_path: Path, test_embedder_env: object,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from faceguard.fleet import server_schema

    with monkeypatch.context() as patch:  # a server set up by the release before
        patch.setattr(server_schema, "MIGRATIONS", server_schema.MIGRATIONS[:1])
        patch.setattr(server_schema, "SCHEMA_VERSION", 1)
        assert init_server(pg_dsn).applied == ("001_core",)
        folder = kiosk(tmp_path, pg_dsn, "front")
    capsys.readouterr()
    assert run_cli(folder, "sync") == 1
    assert "run `faceguard server init`" in capsys.readouterr().err
    assert init_server(pg_dsn).applied == ("002_erasure",)
    assert run_cli(folder, "sync") == 0


def test_status_on_an_empty_database_says_to_run_init(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn, pytest.raises(ServerError, match="server init"):
        server_status(conn)


def test_kiosk_role_has_least_privilege(server: str, tmp_path: Path) -> None:
    import psycopg

    folder = kiosk(tmp_path, server, "front")
    config = load_config(folder)
    assert config is not None
    with connect(server) as admin:
        row = admin.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE "
                            "rolname = %s", (config.user,)).fetchone()
        assert row == (False, False, False)
    with connect(config.conninfo(read_password(folder))) as conn:
        for statement in ("CREATE TABLE faceguard.x (a int)", "CREATE TABLE public.x (a int)",
                          "DELETE FROM people", "DROP TABLE events", "TRUNCATE audit",
                          "UPDATE events SET person_name = 'x'",
                          "INSERT INTO events (kiosk_id, seq, timestamp, kiosk_name, decision, "
                          "revision) VALUES (gen_random_uuid(), 1, now(), 'x', 'known', 0)"):
            with pytest.raises(psycopg.Error):
                conn.execute(statement)
            conn.rollback()
        conn.execute("SELECT count(*) FROM people")  # reading is allowed


def test_join_keeps_the_credential_private_and_out_of_every_output(
        server: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = kiosk(tmp_path, server, "front")
    password = read_password(folder)
    out = capsys.readouterr()
    assert password not in out.out + out.err
    assert stat.S_IMODE((folder / CREDENTIALS_FILE).stat().st_mode) == 0o600
    assert password not in (folder / FLEET_FILE).read_text()
    admin_secret = server.split(":")[2].split("@")[0]
    assert admin_secret not in (folder / FLEET_FILE).read_text()
    lib = library(folder)
    assert all(password not in e.details and admin_secret not in e.details
               for e in lib.list_audit())
    assert any(e.action == "fleet_joined" for e in lib.list_audit())
    assert run_cli(folder, "config", "get", "kiosk.name") == 0
    assert capsys.readouterr().out.strip() == "front"
    (folder / CREDENTIALS_FILE).chmod(0o644)
    with pytest.raises(ServerError, match="chmod 600"):
        read_password(folder)


def test_join_refuses_a_name_another_kiosk_has(server: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    kiosk(tmp_path, server, "front")
    other = make_data_dir(tmp_path)
    assert run_cli(other, "kiosk", "join", "--dsn", server, "--name", "front") == 1
    assert "already joined" in capsys.readouterr().err
    assert not (other / FLEET_FILE).exists()


def test_verify_full_when_a_ca_is_configured(server: str, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    folder = make_data_dir(tmp_path)
    assert run_cli(folder, "kiosk", "join", "--dsn", server, "--name", "tls",
                   "--ca", str(ca)) == 0
    config = load_config(folder)
    assert config is not None and config.sslmode == "verify-full"
    assert "sslmode=verify-full" in config.conninfo("x") and str(ca) in config.conninfo("x")
    # the test server has no TLS: a kiosk that insists on verify-full refuses to talk to it
    assert run_cli(folder, "sync") == 1


# -- the outbox --------------------------------------------------------------------------------


def test_outbox_row_is_written_in_the_events_own_transaction(server: str,
                                                             tmp_path: Path) -> None:
    standalone = library(make_data_dir(tmp_path))
    standalone.add_event(datetime.now(UTC), "k", None, None, "unknown")
    with standalone.reading("t") as conn:
        assert conn.execute("SELECT count(*) FROM fleet_outbox").fetchone()[0] == 0
    lib = library(kiosk(tmp_path, server, "front"))
    with lib.reading("t") as conn:
        before = conn.execute("SELECT count(*) FROM fleet_outbox").fetchone()[0]
    with pytest.raises(RuntimeError), lib.transaction("an event that fails half-way"):
        lib.add_event(datetime.now(UTC), "front", None, None, "unknown")
        raise RuntimeError("crash")
    lib.add_event(datetime.now(UTC), "front", None, None, "unknown")
    with lib.reading("t") as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM fleet_outbox ORDER BY seq")]
        assert len(kinds) == before + 1 and kinds[-1] == "event"
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1


# -- down and up ----------------------------------------------------------------------------


def test_every_doors_entries_appear_once_on_every_kiosk(server: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    front, side = kiosk(tmp_path, server, "front"), kiosk(tmp_path, server, "side")
    for folder, name, count in ((front, "front", 3), (side, "side", 2)):
        lib = library(folder)
        for _ in range(count):
            lib.add_event(datetime.now(UTC), name, None, None, "unknown")
        lib.close()
    for _ in range(2):  # a second round changes nothing
        for folder in (front, side, front):
            assert run_cli(folder, "sync") == 0
    capsys.readouterr()
    for folder in (front, side):
        assert run_cli(folder, "log") == 0
        assert capsys.readouterr().out.splitlines()[-1] == "5 events"
        assert run_cli(folder, "log", "--kiosk", "side") == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[-1] == "2 events" and all(" side " in line for line in lines[:-1])
    import csv

    sheet = tmp_path / "side.csv"
    assert run_cli(side, "log", "--csv", str(sheet)) == 0
    with sheet.open(newline="", encoding="utf-8") as handle:
        doors = sorted(row["kiosk_id"] for row in csv.DictReader(handle))
    assert doors == ["front"] * 3 + ["side"] * 2
    rows = server_events(server)
    assert sorted((k, local_id) for k, _, local_id in rows) == [
        ("front", 1), ("front", 2), ("front", 3), ("side", 1), ("side", 2)]
    assert len(server_events(server)) == 5



def test_an_entrys_access_decision_travels_with_it(server: str, tmp_path: Path) -> None:
    front, side = kiosk(tmp_path, server, "front"), kiosk(tmp_path, server, "side")
    lib = library(front)
    lib.add_event(datetime.now(UTC), "front", None, 0.9, "known", access="denied",
                  access_reason="outside your hours")
    lib.add_event(datetime.now(UTC), "front", None, 0.9, "known", access="allowed",
                  access_reason="Staff")
    lib.close()
    for folder in (front, side):
        assert run_cli(folder, "sync") == 0
    lib = library(side)
    try:
        taken = [(e.kiosk_id, e.access, e.access_reason) for e in lib.query_events()]
    finally:
        lib.close()
    assert taken == [("front", "denied", "outside your hours"), ("front", "allowed", "Staff")]

def test_a_person_enrolled_at_one_door_is_matched_at_another_and_removal_follows(
        server: str, tmp_path: Path) -> None:
    front, side = kiosk(tmp_path, server, "front"), kiosk(tmp_path, server, "side")
    a, b = engine(front), engine(side)
    person = enrol(a.library, "Ana Lima", 1)
    rules.add_group(a.library, "Staff", actor="test")
    rules.set_membership(a.library, "Staff", person, True, actor="test")
    rules.add_window(a.library, "Staff", 0, 7 * 60, 19 * 60, actor="test")
    rules.set_holiday(a.library, datetime(2026, 12, 25).date(), "Christmas", actor="test")
    assert a.sync_once().pushed_people == 1
    changed: list[set[int]] = []
    b.on_changed = changed.append
    report = b.sync_once()
    assert report.applied.people == 1 and report.applied.templates == 1
    there = b.library.find_person_by_name("ana lima")
    assert there is not None and changed == [{there.id}]
    ids, matrix = b.library.templates_matrix("test-model")
    assert list(ids) == [there.id]
    assert float(matrix[0] @ (vector(1) / np.linalg.norm(vector(1)))) > 0.999
    groups = rules.list_groups(b.library)
    assert [(g.name, g.members, g.windows) for g in groups] == [
        ("Staff", ("Ana Lima",), ((0, 420, 1140, None),))]
    assert rules.list_holidays(b.library)[0][1] == "Christmas"
    # removal at the other door travels back as a tombstone
    b.library.remove_person(there.id, actor="test")
    b.sync_once()
    assert a.sync_once().applied.removed >= 1
    assert a.library.list_people() == []
    with connect(server) as conn:
        row = conn.execute("SELECT deleted, name FROM people").fetchone()
        assert row == (True, None)
        assert conn.execute("SELECT count(*) FROM templates WHERE embedding IS NOT NULL"
                            ).fetchone()[0] == 0


def test_same_person_edited_at_two_places_last_writer_wins_and_removal_is_final(
        server: str, tmp_path: Path) -> None:
    front, side = kiosk(tmp_path, server, "front"), kiosk(tmp_path, server, "side")
    a, b = engine(front), engine(side)
    pid = enrol(a.library, "Bo", 2)
    a.sync_once()
    b.sync_once()
    bid = b.library.find_person_by_name("Bo").id  # type: ignore[union-attr]
    a.library.update_person(pid, department="Sales", actor="test")
    b.library.update_person(bid, department="Lab", actor="test")
    a.sync_once()
    b.sync_once()  # reaches the server last: its edit wins
    a.sync_once()
    assert a.library.get_person(pid).department == "Lab"  # type: ignore[union-attr]
    assert b.library.get_person(bid).department == "Lab"  # type: ignore[union-attr]
    # removed at one door while the other edits: the removal stays
    a.library.remove_person(pid, actor="test")
    b.library.update_person(bid, name="Bo Renamed", actor="test")
    a.sync_once()
    b.sync_once()
    assert b.library.list_people() == []
    with connect(server) as conn:
        assert conn.execute("SELECT deleted, name FROM people").fetchone() == (True, None)


# -- offline ------------------------------------------------------------------------------------


def test_sync_while_the_server_is_down_fails_cleanly_and_loses_nothing(
        server: str, tmp_path: Path, pg_cluster, capsys: pytest.CaptureFixture) -> None:
    folder = kiosk(tmp_path, server, "front")
    assert run_cli(folder, "sync") == 0
    lib = library(folder)
    pg_cluster.stop("immediate")
    try:
        for _ in range(3):
            lib.add_event(datetime.now(UTC), "front", None, None, "unknown")
        capsys.readouterr()
        assert run_cli(folder, "sync") == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("faceguard: sync failed: ") and "refused" in err[-1]
        status = fleet_status(lib, folder)
        assert status.state == "offline" and status.waiting == 3
        assert status.text().startswith("offline since ") and "3 entries waiting" in \
            status.text()
    finally:
        pg_cluster.start()
    assert run_cli(folder, "sync") == 0
    assert fleet_status(lib, folder).text().startswith("synced, last sync ")
    assert len(server_events(server)) == 3


def test_status_line_wording() -> None:
    moment = datetime(2026, 1, 5, 9, 42, tzinfo=UTC)
    local = moment.astimezone().strftime("%H:%M")
    assert FleetStatus(joined=False).text() == "not in a fleet"
    assert FleetStatus(True, "f", "s", 37, moment, moment).text() == \
        f"offline since {local}, 37 entries waiting"
    assert FleetStatus(True, "f", "s", 0, moment).text() == f"synced, last sync {local}"
    assert FleetStatus(True, "f", "s", 1, moment).state == "syncing"


def test_the_sync_loop_backs_off_boundedly_and_recovers(server: str, tmp_path: Path,
                                                        pg_cluster) -> None:
    folder = kiosk(tmp_path, server, "front")
    statuses: list[FleetStatus] = []
    pg_cluster.stop("immediate")
    eng = engine(folder)
    loop = SyncLoop(eng, folder, interval_s=3600, poll_s=0.05, backoff_s=(0.1, 0.4),
                    on_status=statuses.append)
    try:
        loop.start()
        deadline = time.monotonic() + 20
        while loop.failures < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert loop.failures >= 4 and loop.delay() == 0.4  # doubling, capped
        assert statuses[-1].state == "offline"
        eng.library.add_event(datetime.now(UTC), "front", None, None, "unknown")
        pg_cluster.start()
        deadline = time.monotonic() + 20
        while (not statuses or statuses[-1].text().startswith("synced") is False) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert statuses[-1].state == "synced", statuses[-1]
    finally:
        loop.stop()
        if not pg_cluster.running():
            pg_cluster.start()
    assert len(server_events(server)) == 1


def test_a_change_is_pushed_to_a_listening_kiosk_promptly(server: str, tmp_path: Path) -> None:
    front, side = kiosk(tmp_path, server, "front"), kiosk(tmp_path, server, "side")
    b = engine(side)
    loop = SyncLoop(b, side, interval_s=3600, poll_s=0.05).start()
    try:
        time.sleep(0.5)  # the listener is connected and the first round done
        a = engine(front)
        enrol(a.library, "Cy", 3)
        started = time.monotonic()
        a.sync_once()
        while b.library.find_person_by_name("Cy") is None and time.monotonic() - started < 10:
            time.sleep(0.02)
        took = time.monotonic() - started
        assert b.library.find_person_by_name("Cy") is not None
        assert took < 5.0, f"took {took:.2f} s"  # interval is an hour: NOTIFY did it
        a.library.remove_person(a.library.find_person_by_name("Cy").id,  # type: ignore[union-attr]
                                actor="test")
        started = time.monotonic()
        a.sync_once()
        while b.library.find_person_by_name("Cy") is not None and \
                time.monotonic() - started < 10:
            time.sleep(0.02)
        gone = time.monotonic() - started
        assert b.library.find_person_by_name("Cy") is None
        assert gone < 5.0, f"the removal took {gone:.2f} s"
    finally:
        loop.stop()


def test_a_duplicate_upload_is_ignored_by_the_server(server: str, tmp_path: Path) -> None:
    folder = kiosk(tmp_path, server, "front")
    eng = engine(folder)
    eng.library.add_event(datetime.now(UTC), "front", None, None, "unknown")
    from faceguard.fleet import local

    rows = local.outbox_batch(eng.library, 100)
    eng.sync_once()
    with eng._connection() as conn:  # the same batch again, as after a lost reply
        push_outbox(conn, eng.config.kiosk_id, rows, SyncReport())
        conn.commit()
    assert len(server_events(server)) == 1


def test_a_library_without_a_join_refuses_sync_with_the_reason(data_dir: Path,
                                                               capsys: pytest.CaptureFixture
                                                               ) -> None:
    assert run_cli(data_dir, "sync") == 1
    assert "has not joined a fleet" in capsys.readouterr().err
    assert run_cli(data_dir, "kiosk", "status") == 0
    assert capsys.readouterr().out.strip() == "not in a fleet"


def test_every_person_gets_a_fleet_id_and_the_map_needs_a_person() -> None:
    lib = FaceLibrary.in_memory()
    enrol(lib, "Di", 4)
    with lib.reading("t") as conn:
        uid = conn.execute("SELECT uid FROM fleet_people").fetchone()[0]
    assert len(uid) == 32 and int(uid, 16) >= 0
    with pytest.raises(LibraryError, match="FOREIGN KEY"), lib.reading("t") as conn:
        conn.execute("INSERT INTO fleet_people (person_id, uid) VALUES (999, 'x')")


def test_json_outputs(server: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = kiosk(tmp_path, server, "front")
    capsys.readouterr()
    assert run_cli(folder, "sync", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["up_to_date"] is True
    assert run_cli(folder, "kiosk", "status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "synced"
    assert run_cli(folder, "server", "status", "--json") == 0  # as the kiosk itself
    assert json.loads(capsys.readouterr().out)["kiosks"][0]["name"] == "front"


def test_an_erasure_pseudonymises_the_person_everywhere_and_nothing_pending_leaks(
        server: str, tmp_path: Path) -> None:
    from faceguard.library.retention import erase_person

    front, side = kiosk(tmp_path, server, "front"), kiosk(tmp_path, server, "side")
    a, b = engine(front), engine(side)
    pid = enrol(a.library, "Ana Lima", 5)
    a.library.update_person(pid, employee_id="E-77", actor="test")
    a.library.add_event(datetime.now(UTC), "front", pid, 0.9, "known")
    a.sync_once()
    b.sync_once()
    bid = b.library.find_person_by_name("Ana Lima").id  # type: ignore[union-attr]
    b.library.add_event(datetime.now(UTC), "side", bid, 0.9, "known")
    b.sync_once()
    a.library.add_event(datetime.now(UTC), "front", pid, 0.9, "known")  # still waiting
    result = erase_person(a.library, pid, actor="test", vacuum=False)
    a.sync_once()
    b.sync_once()
    with connect(server) as conn:
        names = {r[0] for r in conn.execute("SELECT person_name FROM events")}
        audit = " ".join(r[0] for r in conn.execute("SELECT details FROM audit"))
        assert conn.execute("SELECT deleted, erased, name, pseudonym FROM people"
                            ).fetchone() == (True, True, None, result.pseudonym)
    assert names == {result.pseudonym}
    assert "Ana Lima" not in audit and "E-77" not in audit and result.pseudonym in audit
    assert b.library.list_people() == []
    assert {e.person_name for e in b.library.query_events()} == {result.pseudonym}
    assert len(b.library.query_events()) == 3


def test_encrypted_libraries_send_opened_face_data_and_seal_what_they_take_over(
        server: str, tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from faceguard.library.encryption import enable

    front, side = kiosk(tmp_path, server, "front"), kiosk(tmp_path, server, "side")
    a, b = engine(front), engine(side)
    for lib in (a.library, b.library):
        enable(lib, passphrase="correct horse battery staple 42", use_keyring=False,
               actor="test", batch_rows=50)
    enrol(a.library, "Eve", 6)
    a.sync_once()
    with connect(server) as conn:
        blob = bytes(conn.execute("SELECT embedding FROM templates").fetchone()[0])
    wanted = (vector(6) / np.linalg.norm(vector(6))).astype("<f4")
    assert np.allclose(np.frombuffer(blob, "<f4"), wanted, atol=1e-6)  # opened, not sealed
    b.sync_once()
    with b.library.reading("t") as conn:
        stored, seal = conn.execute("SELECT embedding, embedding_seal FROM templates").fetchone()
    assert seal is not None and bytes(stored) != blob  # sealed at rest on the other kiosk
    ids, matrix = b.library.templates_matrix("test-model")
    assert len(ids) == 1 and float(matrix[0] @ wanted) > 0.999


def test_templates_of_another_model_are_re_embedded_here_and_not_sent_back(
        server: str, tmp_path: Path) -> None:
    from faceguard.core.context import AppContext

    front, side = kiosk(tmp_path, server, "front"), kiosk(tmp_path, server, "side")
    a = engine(front)
    person = a.library.add_person("Old Model", actor="test")
    crop = encode_jpeg(np.random.default_rng(7).integers(0, 255, (96, 96, 3), dtype=np.uint8))
    a.library.add_template(person.id, vector(8), "an-older-model", 0.9, crop, "old.jpg")
    a.sync_once()
    ctx = AppContext(side)
    try:
        assert len(ctx.matcher) == 0
        ctx.sync_now()
        model = ctx.engine.model_id
        assert ctx.library.model_ids() == {model: 1}  # re-embedded from the crop, here
        assert len(ctx.matcher) == 1
        from faceguard.fleet import local

        assert local.waiting(ctx.library).templates == 0  # and not pushed back
        ctx.sync_now()
    finally:
        ctx.close()
    with connect(server) as conn:
        assert conn.execute("SELECT model_id FROM templates").fetchone()[0] == "an-older-model"


def test_entries_logged_after_restoring_an_older_backup_are_not_taken_for_repeats(
        server: str, tmp_path: Path) -> None:
    folder = kiosk(tmp_path, server, "front")

    def log_events(count: int) -> list[datetime]:
        lib = library(folder)
        stamps = [lib.add_event(datetime.now(UTC), "front", None, None, "unknown").timestamp
                  for _ in range(count)]
        lib.close()
        return stamps

    first = log_events(3)
    assert run_cli(folder, "sync") == 0
    backup = tmp_path / "older.db"
    assert run_cli(folder, "backup", "--to", str(backup)) == 0
    second = log_events(2)
    assert run_cli(folder, "sync") == 0
    assert run_cli(folder, "restore", str(backup)) == 0  # the outbox's counter goes back
    third = log_events(2)
    assert run_cli(folder, "sync") == 0
    with connect(server) as conn:
        stamps = sorted(r[0] for r in conn.execute(
            "SELECT timestamp FROM events WHERE kiosk_name = 'front'"))
    assert stamps == sorted(first + second + third)


def test_joining_another_server_takes_the_whole_library_there(
        server: str, tmp_path: Path, pg_cluster) -> None:
    folder = kiosk(tmp_path, server, "front")
    lib = library(folder)
    enrol(lib, "Fay", 9)
    lib.add_event(datetime.now(UTC), "front", None, None, "unknown")
    lib.close()
    assert run_cli(folder, "sync") == 0
    other = pg_cluster.new_database()
    init_server(other)
    assert run_cli(folder, "kiosk", "join", "--dsn", other, "--name", "front") == 0
    assert run_cli(folder, "sync") == 0
    with connect(other) as conn:
        assert conn.execute("SELECT name FROM people").fetchall() == [("Fay",)]
        assert conn.execute("SELECT count(*) FROM templates").fetchone()[0] == 1
    assert len(server_events(other)) == 1


def test_a_name_clash_is_reported_not_forced(server: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    front, side = kiosk(tmp_path, server, "front"), kiosk(tmp_path, server, "side")
    for folder, seed in ((front, 10), (side, 11)):  # two doors enrol "Gil" while apart
        lib = library(folder)
        enrol(lib, "Gil", seed)
        lib.close()
    assert run_cli(front, "sync") == 0
    capsys.readouterr()
    assert run_cli(side, "sync") == 3
    assert "'Gil' not taken over" in capsys.readouterr().err
    lib = library(side)
    assert [p.name for p in lib.list_people()] == ["Gil"]  # its own Gil, untouched
    lib.close()


def test_init_warns_where_every_role_may_create_tables_in_public(pg_dsn: str) -> None:
    assert init_server(pg_dsn).warnings == ()  # PostgreSQL 15: nobody may
    with connect(pg_dsn, autocommit=True) as conn:
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # as 14 and older had it
    warnings = init_server(pg_dsn).warnings
    assert len(warnings) == 1 and "REVOKE CREATE ON SCHEMA public" in warnings[0]
