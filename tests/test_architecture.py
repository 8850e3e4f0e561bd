"""Structural rules the architecture issue asks for, checked on the real package."""

from __future__ import annotations

import sys

import pytest

from faceguard import cli


def test_a_broken_command_module_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faceguard.kiosk.cli", None)  # import now fails
    with pytest.raises(ImportError):
        cli.build_parser()


def test_only_the_evaluation_package_may_be_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faceguard.evaluation.cli", None)
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    assert "eval" not in commands.choices and "run" in commands.choices  # type: ignore[operator]


def test_test_helpers_do_not_ship_in_the_product() -> None:
    import faceguard.gui.threading as qt_tasks

    assert not hasattr(qt_tasks, "SyncRunner")
