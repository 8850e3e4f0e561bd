"""Liveness in the window: settings dialog (mode, threshold), the banner's plain words."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from faceguard.core.context import AppContext
from faceguard.gui.live_view import LOOK_AT_CAMERA, Banner
from faceguard.gui.settings_dialog import LIVENESS_NOTE, SettingsDialog
from faceguard.kiosk.decisions import KioskEvent
from faceguard.settings import load_settings
from tests.conftest import make_data_dir


@pytest.fixture()
def ctx(tmp_path: Path, open_context: Callable[..., AppContext]) -> AppContext:
    return open_context(make_data_dir(tmp_path, kiosk_name="lobby"))


def test_settings_dialog_sets_liveness_mode_and_threshold(
        qtbot, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    dialog = SettingsDialog(ctx)
    qtbot.addWidget(dialog)
    assert dialog.liveness_mode.currentData() == ctx.settings.liveness_mode
    assert "refused" in LIVENESS_NOTE and "real people" in LIVENESS_NOTE
    dialog.liveness_mode.setCurrentIndex(dialog.liveness_mode.findData("enforce"))
    dialog.liveness_threshold.setValue(0.65)
    dialog.save()
    saved = load_settings(ctx.data_dir)
    assert (saved.liveness_mode, saved.liveness_threshold) == ("enforce", 0.65)
    entry = ctx.library.list_audit(limit=1)[0]
    assert entry.action == "settings_changed" and "enforce" in entry.details


def test_a_refused_presentation_is_shown_in_plain_words(qtbot) -> None:  # type: ignore[no-untyped-def]
    banner = Banner()
    qtbot.addWidget(banner)
    event = KioskEvent(datetime(2026, 12, 1, 8, 0, tzinfo=UTC), "door", None, None, 0.84,
                       None, attack=True, claimed_name="Ana", liveness=0.1)
    banner.show_event(event)
    text = f"{banner.title.text()} {banner.detail.text()}".lower()
    assert banner.title.text() == LOOK_AT_CAMERA
    assert not any(word in text for word in ("attack", "fake", "spoof", "fraud", "ana"))
