"""Which embedding model a process uses, and the open-set operating point it is run at.

The threshold and margin come from the model's calibration (its manifest entry, see
resources/models/MODEL_CARD.md) unless the settings set a threshold explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from faceguard.library.match_decision import UNCALIBRATED_THRESHOLD
from faceguard.settings import Settings
from faceguard.vision.onnx_model import default_model_path, manifest_entry

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


def operating_point(settings: Settings, embedder_path: Path) -> OperatingPoint:
    """The model card's calibrated threshold, unless the settings set one explicitly."""
    entry = manifest_entry(embedder_path) or {}
    calibrated = entry.get("threshold")
    if calibrated is not None and settings.match_threshold is None:
        far = entry.get("threshold_far")
        return OperatingPoint(float(str(calibrated)), float(str(entry.get("margin", 0.0))),
                              float(str(far)) if far is not None else None,
                              f"calibrated, {embedder_path.name} model card")
    threshold = settings.match_threshold
    if threshold is None:
        threshold = UNCALIBRATED_THRESHOLD
    return OperatingPoint(threshold, settings.match_margin, settings.threshold_far, "settings")
