"""The launcher refuses clearly where no window can open."""

from __future__ import annotations


def test_no_display_is_a_clear_error() -> None:
    from faceguard.launcher import display_problem

    assert display_problem({}, "linux") is not None
    assert "headless" in (display_problem({}, "linux") or "")
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "win32") is None
