"""Admin accounts with roles (issue 12): each with its own PIN and lock-out (kept in the
library across restarts), the single PIN of before becoming the administrator ``admin``,
`faceguard admin add|list|remove|passwd|role`, and every try and change audited under the
account's name."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from faceguard.cli import EXIT_ERROR, EXIT_OK, main
from faceguard.core.context import AppContext
from faceguard.core.pin import hash_pin, verify_pin
from faceguard.core.roles import NotAllowed, Permission, may, require
from faceguard.errors import LibraryError
from faceguard.library.accounts import find_account, list_accounts
from faceguard.library.database import MIGRATION_NAMES, MIGRATIONS, FaceLibrary
from faceguard.settings import Settings

CHEAP = 2**10


def test_roles_allow_what_the_issue_says() -> None:
    assert all(may("administrator", p) for p in Permission)
    assert {p for p in Permission if may("manager", p)} == {
        Permission.LOGS, Permission.REPORTS, Permission.PEOPLE}
    assert {p for p in Permission if may("viewer", p)} == {Permission.LOGS}
    assert not may("intruder", Permission.LOGS)
    with pytest.raises(NotAllowed, match="the viewer account 'Vi' may not enrol and manage "
                       "people; ask an administrator"):
        require("viewer", Permission.PEOPLE, "Vi")


def test_the_single_pin_of_an_older_library_becomes_the_administrator_admin(
        tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / "faceguard.db")
    MIGRATIONS.apply(Database(conn), stop_before=MIGRATION_NAMES[MIGRATION_NAMES.index(
        "011_privacy")])
    old = hash_pin("583020", n=CHEAP)
    conn.execute("UPDATE admin SET pin_hash = ?, protected = 1, failures = 3", (old,))
    conn.commit()
    conn.close()
    with FaceLibrary.open(folder / "faceguard.db") as library:
        [account] = list_accounts(library)
        assert (account.name, account.role, account.failures) == ("admin", "administrator", 3)
        assert account.pin_hash == old


def _ctx(tmp_path: Path) -> AppContext:
    return AppContext(tmp_path / "data", settings=Settings(admin_lock_s=60))


def test_each_account_has_its_own_pin_lock_and_audit_name(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.add_account("Ada", "administrator", "583020", actor="cli")
    ctx.add_account("Bob", "manager", "731904", actor="Ada")
    now = [1_000_000.0]
    clock = lambda: now[0]  # noqa: E731
    for _ in range(5):
        assert not ctx.sign_in("Bob", "000000", clock=clock).ok
    assert ctx.sign_in("Bob", "731904", clock=clock).check.locked  # Bob is locked ...
    signed = ctx.sign_in("ada", "583020", clock=clock, purpose="open the logs")
    assert signed.ok and signed.account is not None and signed.account.name == "Ada"
    assert ctx.signed_in is not None and ctx.actor == "Ada"  # ... Ada is not
    ctx.close()
    restarted = _ctx(tmp_path)  # a restart keeps Bob's lock
    assert restarted.sign_in("Bob", "731904", clock=clock).check.locked
    now[0] += 61
    assert restarted.sign_in("Bob", "731904", clock=clock).ok
    assert not restarted.sign_in("482913", "731904", clock=clock).ok  # a PIN in the name field
    entries = [(e.actor, e.action) for e in restarted.library.list_audit(newest_first=False)]
    assert entries[:2] == [("cli", "account_added"), ("Ada", "account_added")]
    assert entries.count(("Bob", "admin_pin_wrong")) == 4
    assert ("Bob", "admin_locked") in entries and ("Ada", "admin_unlock") in entries
    assert entries[-2:] == [("Bob", "admin_unlock"), ("unknown", "admin_pin_wrong")]
    assert "482913" not in restarted.library.list_audit(limit=1)[0].details
    restarted.close()


def test_the_last_administrator_stays_and_names_are_unique(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.add_account("Ada", "administrator", "583020", actor="cli")
    with pytest.raises(LibraryError, match="already an admin account named 'Ada'"):
        ctx.add_account("ADA", "viewer", "731904", actor="cli")
    with pytest.raises(LibraryError, match="last administrator"):
        ctx.remove_account("Ada", actor="cli")
    with pytest.raises(LibraryError, match="last administrator"):
        ctx.set_account_role("Ada", "viewer", actor="cli")
    with pytest.raises(LibraryError, match="unknown role 'owner'"):
        ctx.add_account("Cy", "owner", "731904", actor="cli")
    ctx.add_account("Cy", "administrator", "731904", actor="cli")
    ctx.remove_account("Ada", actor="Cy")
    assert [a.name for a in ctx.list_accounts()] == ["Cy"]
    ctx.close()


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_admin_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--data-dir", str(tmp_path / "data"), "admin"]
    _stdin(monkeypatch, "583020\n")
    assert main([*base, "add", "Ada", "--role", "administrator", "--pin-stdin"]) == EXIT_OK
    _stdin(monkeypatch, "731904\n")
    assert main([*base, "add", "Vic", "--role", "viewer", "--pin-stdin"]) == EXIT_OK
    _stdin(monkeypatch, "1234\n")
    assert main([*base, "add", "Max", "--role", "manager", "--pin-stdin"]) == EXIT_ERROR
    assert "at least 6 digits" in capsys.readouterr().err
    assert main([*base, "role", "Vic", "manager"]) == EXIT_OK
    _stdin(monkeypatch, "482913\n")
    assert main([*base, "passwd", "vic", "--pin-stdin"]) == EXIT_OK
    capsys.readouterr()
    assert main([*base, "list", "--json"]) == EXIT_OK
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["name"], a["role"], a["locked"]) for a in listed] == [
        ("Ada", "administrator", False), ("Vic", "manager", False)]
    assert main([*base, "remove", "Ada"]) == EXIT_ERROR
    assert "last administrator" in capsys.readouterr().err
    assert main([*base, "remove", "Nobody"]) == EXIT_ERROR
    assert "no admin account named 'Nobody'" in capsys.readouterr().err
    _stdin(monkeypatch, "264195\n")
    assert main([*base, "reset-pin", "--account", "Vic", "--pin-stdin"]) == EXIT_OK
    with FaceLibrary.open(tmp_path / "data" / "faceguard.db") as library:
        vic = find_account(library, "Vic")
        assert vic is not None and verify_pin("264195", vic.pin_hash)
        actions = [(e.actor, e.action) for e in library.list_audit(newest_first=False)]
    assert actions[-3:] == [("cli", "account_role_changed"), ("cli", "account_pin_changed"),
                            ("cli", "reset_pin")]
    assert main([*base, "list"]) == EXIT_OK
    assert capsys.readouterr().out.endswith("2 admin accounts\n")
