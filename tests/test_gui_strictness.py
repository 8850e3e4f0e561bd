"""The settings dialog's strictness levels (offscreen, pytest-qt): the calibrated levels are
offered with their thresholds, the chosen one is saved and in force at once, and a custom
threshold still works."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from faceguard.core.context import AppContext
from faceguard.gui.settings_dialog import CUSTOM, SettingsDialog
from faceguard.settings import load_settings


def test_the_dialog_offers_the_levels_and_saves_the_chosen_one(
        qtbot, calibrated_ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    ctx = calibrated_ctx
    dialog = SettingsDialog(ctx)
    qtbot.addWidget(dialog)
    items = [dialog.strictness.itemText(i) for i in range(dialog.strictness.count())]
    assert items[:3] == ["Standard: a stranger matches about 1 in 1,000 people (threshold 0.610)",
                         "Strict: a stranger matches about 1 in 10,000 people (threshold 0.720)",
                         "Very strict: a stranger matches about 1 in 100,000 people "
                         "(threshold 0.830)"]
    assert dialog.strictness.currentData() == "standard" and not dialog.threshold.isEnabled()
    dialog.strictness.setCurrentIndex(dialog.strictness.findData("strict"))
    assert dialog.threshold.value() == pytest.approx(0.72) and not dialog.threshold.isEnabled()
    dialog.save()
    saved = load_settings(ctx.data_dir)
    assert (saved.match_strictness, saved.match_threshold) == ("strict", None)
    assert ctx.matcher.threshold == pytest.approx(0.72)
    again = SettingsDialog(ctx)
    qtbot.addWidget(again)
    assert again.strictness.currentData() == "strict"
    again.strictness.setCurrentIndex(again.strictness.findData(CUSTOM))
    assert again.threshold.isEnabled()
    again.threshold.setValue(0.9)
    again.save()
    saved = load_settings(ctx.data_dir)
    assert (saved.match_strictness, saved.match_threshold) == ("strict", 0.9)
    assert ctx.matcher.threshold == pytest.approx(0.9)
