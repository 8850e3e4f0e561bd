"""Before the kiosk window opens: a library enrolled with an older embedding model is
re-embedded from its stored crops, with a progress dialog (issue 14).

:meth:`AppContext.sync_templates` commits batch by batch, so closing FaceGuard or losing
power part-way loses nothing and the next start resumes. The window is not open yet and the
work is a short loop of batches, so it runs here with the dialog repainted after each batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QProgressDialog, QWidget

from faceguard.core.context import AppContext

TITLE = "Updating the face library"


def stale_templates(ctx: AppContext) -> int:
    """How many templates were made by another model than the one in force."""
    model_id = ctx.engine.model_id
    return sum(count for model, count in ctx.library.model_ids().items() if model != model_id)


@dataclass
class Upgrade:
    """What :func:`upgrade_library` did: the dialog it showed and the steps it showed."""

    dialog: QProgressDialog
    total: int
    updated: int = 0
    steps: list[tuple[int, int]] = field(default_factory=list)


def upgrade_library(ctx: AppContext, parent: QWidget | None = None) -> Upgrade | None:
    """Re-embed stale templates behind a progress dialog; None when there was nothing to do."""
    todo = stale_templates(ctx)
    if todo == 0:
        return None
    dialog = QProgressDialog(
        f"FaceGuard has a new recognition model. Updating {todo} face templates from their "
        "stored photos; this happens once, and can be interrupted safely.", "", 0, todo, parent)
    dialog.setWindowTitle(TITLE)
    dialog.setCancelButton(None)  # interrupting is safe: no cancel button
    dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
    dialog.setAutoReset(False)
    dialog.setMinimumDuration(0)
    dialog.setValue(0)
    upgrade = Upgrade(dialog, todo)

    def progress(done: int, total: int) -> None:
        dialog.setMaximum(total)
        dialog.setValue(done)
        upgrade.steps.append((done, total))
        QApplication.processEvents()

    upgrade.updated = ctx.sync_templates(progress=progress)
    dialog.close()
    return upgrade
