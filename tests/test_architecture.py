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
    import faceguard.gui.tasks as qt_tasks

    assert not hasattr(qt_tasks, "SyncRunner")


def test_people_verbs_keep_library_matcher_and_listeners_in_step(
        tmp_path, test_embedder_env) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from faceguard.core.context import AppContext
    from faceguard.vision.image_io import load_image
    from tests.conftest import make_data_dir

    astronaut = Path(__file__).resolve().parents[1] / "resources" / "demo" / "astronaut.png"
    ctx = AppContext(make_data_dir(tmp_path))
    heard: list[int] = []
    ctx.on_person_changed(heard.append)
    person, _ = ctx.enroller(actor="test").enroll_files("Eileen Collins", [astronaut])
    assert person is not None
    observed = ctx.engine.embed_largest(load_image(astronaut))
    assert observed is not None and observed.embedding is not None
    assert ctx.matcher.search(observed.embedding)[0].person_id == person.id
    ctx.update_person(person.id, name="Eileen M. Collins", actor="test")
    assert heard == [person.id]
    ctx.remove_person(person.id, actor="test")
    assert heard == [person.id, person.id]
    assert ctx.matcher.search(observed.embedding)[0].person_id is None
    assert ctx.library.list_people() == []
    ctx.close()
