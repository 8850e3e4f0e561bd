"""Which embedding model a process uses, and the open-set operating point it is run at.

The threshold and margin come from the model's calibration (its manifest entry, see
resources/models/MODEL_CARD.md) at the strictness level the settings choose, unless the
settings set a threshold explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from faceguard.core.model_calibration import model_calibration
from faceguard.library.match_decision import UNCALIBRATED_THRESHOLD
from faceguard.settings import Settings
from faceguard.settings.schema import STRICTNESS_FAR, SettingsError
from faceguard.vision.onnx_model import default_model_path

EMBEDDER_ENV = "FACEGUARD_EMBEDDER"
EMBEDDER_SHA_ENV = "FACEGUARD_EMBEDDER_SHA256"


@dataclass(frozen=True)
class OperatingPoint:
    """Open-set decision rule: threshold, margin, and the false-accept rate it stands for."""

    threshold: float
    margin: float
    far: float | None
    source: str


def embedder_location(settings: Settings) -> tuple[Path, str | None]:
    """The embedder file to use, and an explicit SHA-256 when one is configured."""
    override = os.environ.get(EMBEDDER_ENV)
    if override:
        return Path(override), os.environ.get(EMBEDDER_SHA_ENV)
    name = settings.model_file
    path = Path(name)
    return (path if path.is_absolute() else default_model_path(name)), None


def one_in(far: float) -> str:
    """A false-accept rate as people read it: 1e-4 -> "1 in 10,000"."""
    return f"1 in {round(1 / far):,}"


def calibrated_thresholds(embedder_path: Path) -> dict[str, float]:
    """The model card's threshold at each strictness level it was calibrated for.

    The manifest entry's ``thresholds`` table maps a false-accept rate (``"0.0001"``) to a
    threshold; an entry with only ``threshold`` and ``threshold_far`` gives that one level
    (ModelError when the entry is damaged).
    """
    calibration = model_calibration(embedder_path)
    by_far = dict(calibration.thresholds)
    if calibration.threshold is not None and calibration.threshold_far is not None:
        by_far.setdefault(f"{calibration.threshold_far:g}", calibration.threshold)
    return {level: by_far[f"{far:g}"] for level, far in STRICTNESS_FAR.items()
            if f"{far:g}" in by_far}


def operating_point(settings: Settings, embedder_path: Path) -> OperatingPoint:
    """The model card's calibrated threshold at the settings' strictness, unless the settings
    set a threshold explicitly (SettingsError when that level was never calibrated;
    ModelError when the model's manifest entry is damaged)."""
    calibration = model_calibration(embedder_path)
    if calibration.threshold is not None and settings.match_threshold is None:
        level = settings.match_strictness
        levels = calibrated_thresholds(embedder_path)
        far = STRICTNESS_FAR[level]
        if level not in levels:
            known = ", ".join(f"{name} ({one_in(STRICTNESS_FAR[name])})" for name in levels)
            raise SettingsError(
                f"{embedder_path.name} has no calibrated threshold for the {level} level "
                f"({one_in(far)}); calibrated: {known or 'none'}. Choose one of those "
                "(recognition.strictness) or set recognition.threshold.")
        return OperatingPoint(levels[level], calibration.margin, far,
                              f"calibrated ({level}: {one_in(far)}), {embedder_path.name} "
                              "model card")
    threshold = settings.match_threshold
    if threshold is None:
        threshold = UNCALIBRATED_THRESHOLD
    return OperatingPoint(threshold, settings.match_margin, settings.threshold_far, "settings")
