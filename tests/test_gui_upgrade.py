"""The window's path for an upgraded model (issue 14): templates made by an older model are
re-embedded behind a progress dialog before the kiosk window opens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from faceguard.core.context import AppContext
from faceguard.gui.upgrade import stale_templates, upgrade_library
from faceguard.vision.image_io import decode_jpeg, encode_jpeg
from tests.conftest import make_data_dir


def test_old_templates_are_re_embedded_behind_a_progress_dialog(
        qtbot, tmp_path: Path, open_context: Callable[..., AppContext]) -> None:
    ctx = open_context(make_data_dir(tmp_path))
    rng = np.random.default_rng(1)
    jpegs = [encode_jpeg(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
             for _ in range(150)]
    for index in range(3):
        pid = ctx.library.add_person(f"Person {index}").id
        for jpeg in jpegs[index * 50:(index + 1) * 50]:
            ctx.library.add_template(pid, rng.normal(size=128), "older-model@000000000000",
                                     0.9, jpeg)
    assert stale_templates(ctx) == 150
    upgrade = upgrade_library(ctx)
    assert upgrade is not None
    qtbot.addWidget(upgrade.dialog)
    assert (upgrade.total, upgrade.updated) == (150, 150)
    assert upgrade.steps == [(64, 150), (128, 150), (150, 150)]  # one step per batch
    assert upgrade.dialog.maximum() == 150 and not upgrade.dialog.isVisible()
    assert stale_templates(ctx) == 0
    assert ctx.library.model_ids() == {ctx.engine.model_id: 150}
    template = ctx.library.list_templates()[0]
    expected = ctx.engine.embedder.embed(decode_jpeg(jpegs[0])[None])[0]
    np.testing.assert_allclose(ctx.library.get_template_vector(template.id),
                               expected / np.linalg.norm(expected), atol=1e-5)
    assert upgrade_library(ctx) is None  # nothing left: no dialog
