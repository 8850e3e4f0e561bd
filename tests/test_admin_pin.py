"""The admin credential: PIN policy and cost, the lock-out kept in the library across restarts,
the move out of settings.json, recovery when a protected library has lost its PIN, and
``faceguard admin reset-pin``."""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path

import pytest
from sqlite_utils import Database

from faceguard.cli import EXIT_ERROR, EXIT_OK, main
from faceguard.core.admin import (
    CredentialState,
    LibraryPinStore,
    credential_state,
    pin_gate,
    recovery_message,
)
from faceguard.core.context import AppContext
from faceguard.core.pin import (
    SCRYPT_N,
    MemoryPinStore,
    PinGate,
    hash_pin,
    pin_problem,
    verify_pin,
)
from faceguard.errors import LibraryClosedError
from faceguard.library.accounts import Account, find_account
from faceguard.library.database import MIGRATION_NAMES, MIGRATIONS, FaceLibrary
from faceguard.settings import Settings, load_settings, save_settings, settings_path

CHEAP = 2**10  # test hashes: the policy is what is tested, not the cost


@pytest.mark.parametrize("pin", ["1234", "12345", "123456", "000000", "111111", "121212",
                                 "123123", "112233", "654321", "345678", "890123", "100100",
                                 "250390", "031290", "19871231", "20250101", "password",
                                 "abcdefgh", "aaaaaaaa", "short!", " 583020"])
def test_weak_pins_are_refused(pin: str) -> None:
    assert pin_problem(pin) is not None


@pytest.mark.parametrize("pin", ["583020", "731904", "4829135", "k9#mQ2vL", "river-stone-47"])
def test_good_pins_are_accepted(pin: str) -> None:
    assert pin_problem(pin) is None


def test_cost_is_raised_and_old_hashes_still_verify_then_are_rehashed() -> None:
    assert SCRYPT_N >= 2**16
    assert verify_pin("2580", hash_pin("2580", n=2**14, check=False))  # the old cost, 2^14
    old = hash_pin("2580", n=2**11, check=False)  # a cheaper hash from before, 4 digits
    store = MemoryPinStore(old)
    gate = PinGate(store=store, cost=(2**12, 8, 1))
    assert not gate.attempt("2581").ok
    assert store.load_pin_state().pin_hash == old  # a wrong try does not rehash
    assert gate.attempt("2580").ok
    new = store.load_pin_state().pin_hash or ""
    assert new.startswith("scrypt$4096$8$1$") and verify_pin("2580", new)


def test_one_try_costs_a_noticeable_fraction_of_a_second() -> None:
    stored = hash_pin("583020")
    start = time.perf_counter()
    assert verify_pin("583020", stored)
    assert time.perf_counter() - start > 0.1  # the old cost took ~60 ms here


def _admin(library: FaceLibrary) -> Account:
    """The administrator account ``admin`` (the single PIN of before is that account)."""
    account = find_account(library, "admin")
    assert account is not None
    return account


def _library(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "faceguard.db"


def test_lock_out_survives_a_restart(tmp_path: Path) -> None:
    path = _library(tmp_path / "data")
    now = [1_000_000.0]
    with FaceLibrary.open(path) as library:
        gate = PinGate(store=LibraryPinStore(library), lock_s=60, clock=lambda: now[0],
                       cost=(CHEAP, 8, 1))
        gate.set_pin("583020")
        checks = [gate.attempt("000000") for _ in range(5)]
        assert [c.message() for c in checks[3:]] == [
            "Wrong PIN. 1 try left.", "Too many wrong tries. Admin is locked for 60 s."]
    now[0] += 20  # the app is restarted 20 s into the lock
    with FaceLibrary.open(path) as library:
        gate = PinGate(store=LibraryPinStore(library), lock_s=60, clock=lambda: now[0],
                       cost=(CHEAP, 8, 1))
        assert gate.remaining_lock_s() == pytest.approx(40)
        assert gate.attempt("583020").locked  # the right PIN is not even checked
        now[0] += 41
        assert gate.attempt("583020").ok
        assert _admin(library).failures == 0


def test_a_closed_library_refuses_the_pin_gate_instead_of_answering_from_memory(
        tmp_path: Path) -> None:
    library = FaceLibrary.open(_library(tmp_path / "data"))
    gate = PinGate(store=LibraryPinStore(library), lock_s=60, cost=(CHEAP, 8, 1))
    gate.set_pin("583020")
    library.close()
    with pytest.raises(LibraryClosedError, match="has been closed"):
        gate.remaining_lock_s()  # not the last state seen, with a warning
    with pytest.raises(LibraryClosedError):
        gate.attempt("000000")  # a wrong try is not counted in memory only
    with pytest.raises(LibraryClosedError):
        library.integrity_check()  # nor read through a second connection to the file


def test_a_closed_context_never_opens_its_library_again(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    ctx = _ctx(folder)
    ctx.close()  # closed before anything opened the library
    with pytest.raises(LibraryClosedError, match="closed this context"):
        _ = ctx.library
    assert not (folder / "faceguard.db").exists()
    heard: list[int] = []
    used = _ctx(folder)
    stop = used.on_person_changed(heard.append)
    person = used.library.add_person("Ada")
    used.update_person(person.id, actor="cli", name="Ada L.")
    stop()  # a window that closes stops hearing
    used.update_person(person.id, actor="cli", name="Ada Lovelace")
    assert heard == [person.id]
    used.close()
    with pytest.raises(LibraryClosedError):
        used.library.list_people()


def test_a_clock_set_back_does_not_lengthen_the_lock(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = MemoryPinStore(hash_pin("583020", n=CHEAP))
    gate = PinGate(store=store, lock_s=60, clock=lambda: now[0], cost=(CHEAP, 8, 1))
    for _ in range(5):
        gate.attempt("000000")
    now[0] -= 86_400
    assert gate.remaining_lock_s() == 60


def _ctx(folder: Path, **settings: object) -> AppContext:
    return AppContext(folder, settings=Settings(**settings) if settings else None)  # type: ignore[arg-type]


def test_a_pin_in_settings_json_moves_into_the_library_once(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    legacy = hash_pin("583020", n=CHEAP)
    save_settings(Settings(pin_hash=legacy, kiosk_name="Front door"), folder)
    ctx = AppContext(folder)
    gate = pin_gate(ctx)
    assert gate.has_pin and _admin(ctx.library).pin_hash == legacy
    assert load_settings(folder).pin_hash is None
    assert load_settings(folder).kiosk_name == "Front door"
    assert ctx.library.list_audit(limit=1)[0].action == "pin_moved_to_library"
    ctx.close()


@pytest.mark.parametrize("damage", ["delete", "garbage"])
def test_a_lost_settings_file_is_never_a_first_run(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    ctx = AppContext(folder)
    pin_gate(ctx).set_pin("583020")
    ctx.close()
    if damage == "delete":
        settings_path(folder).unlink(missing_ok=True)
    else:
        settings_path(folder).write_text("{not json", encoding="utf-8")
    ctx = AppContext(folder)
    gate = pin_gate(ctx)
    assert credential_state(ctx, gate) is CredentialState.SET
    assert not gate.attempt("111111").ok and gate.attempt("583020").ok
    ctx.close()


def test_a_protected_library_without_a_pin_asks_for_recovery(tmp_path: Path) -> None:
    # A library from before this version (schema up to 004) with people in it, whose
    # settings.json (holding the PIN then) is gone.
    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / "faceguard.db")
    MIGRATIONS.apply(Database(conn), stop_before=MIGRATION_NAMES[4])
    conn.execute("INSERT INTO people (name, name_key, active, created) VALUES "
                 "('Ana', 'ana', 1, '2025-01-01T00:00:00.000000+00:00')")
    conn.commit()
    conn.close()
    ctx = AppContext(folder)
    gate = pin_gate(ctx)
    assert not gate.has_pin
    assert credential_state(ctx, gate) is CredentialState.RECOVERY
    assert "admin reset-pin" in recovery_message(ctx)
    ctx.close()


def test_a_new_library_is_a_first_run(tmp_path: Path) -> None:
    ctx = AppContext(tmp_path / "data")
    ctx.library.add_person("Enrolled From The Command Line")  # never protected by a PIN
    gate = pin_gate(ctx)
    assert credential_state(ctx, gate) is CredentialState.FIRST_RUN
    ctx.close()


def test_reset_pin_command_sets_a_new_pin_lifts_the_lock_and_is_audited(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "data"
    ctx = AppContext(folder)
    gate = pin_gate(ctx)
    gate.set_pin("583020")
    for _ in range(5):
        gate.attempt("000000")
    assert gate.remaining_lock_s() > 0
    ctx.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("1234\n"))
    assert main(["--data-dir", str(folder), "admin", "reset-pin", "--pin-stdin"]) == EXIT_ERROR
    assert "at least 6 digits" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("731904\n"))
    assert main(["--data-dir", str(folder), "admin", "reset-pin", "--pin-stdin"]) == EXIT_OK
    with FaceLibrary.open(folder / "faceguard.db") as library:
        state = _admin(library)
        assert state.failures == 0 and state.locked_until is None
        assert verify_pin("731904", state.pin_hash or "")
        entry = library.list_audit(limit=1)[0]
        assert entry.actor == "cli" and entry.action == "reset_pin" and "user" in entry.details
    assert main(["--data-dir", str(folder), "admin", "status"]) == EXIT_OK
    assert "admin PIN: set" in capsys.readouterr().out
    missing = tmp_path / "nowhere"
    monkeypatch.setattr("sys.stdin", io.StringIO("731904\n"))
    assert main(["--data-dir", str(missing), "admin", "reset-pin", "--pin-stdin"]) == EXIT_ERROR
    assert not missing.exists()
