"""What an embedding model's manifest entry says about running it: the thresholds it was
calibrated at, its margin, its template fusion and whether it embeds mirrored faces too.

Every field is checked when the entry is read (null is taken as absent): a damaged one (a
threshold that is not a number, a table that is not one) is a
:class:`~faceguard.errors.ModelError` naming the manifest file, the model and the field,
which the CLI and the window show as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from faceguard.errors import ModelError
from faceguard.library.template_index import DEFAULT_FUSION, FUSION_RULES, Fusion
from faceguard.settings.checks import check_float
from faceguard.vision.onnx_model import manifest_entry, manifest_error


@dataclass(frozen=True)
class ModelCalibration:
    """The checked calibration fields of one model's manifest entry (defaults: absent)."""

    threshold: float | None = None  # the threshold at ``threshold_far``
    threshold_far: float | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)  # f"{far:g}" -> threshold
    margin: float = 0.0
    mirror: bool = False
    fusion: Fusion = DEFAULT_FUSION


def model_calibration(embedder_path: Path) -> ModelCalibration:
    """The calibration recorded for ``embedder_path`` in the manifest beside it (ModelError
    naming the field when one is damaged; the defaults when the model has no entry)."""
    entry = manifest_entry(embedder_path) or {}

    def damaged(name: str, problem: str, value: object) -> ModelError:
        return manifest_error(embedder_path, name, f"{problem} (it is {json.dumps(value)})")

    def number(name: str, value: object, lo: float, hi: float, *, lo_open: bool) -> float:
        problem = check_float(value, lo, hi, lo_open=lo_open)
        if problem is not None:
            raise damaged(name, problem, value)
        return float(value)  # type: ignore[arg-type]  # check_float: an int or a float

    def threshold(name: str, value: object) -> float:
        return number(name, value, -1.0, 1.0, lo_open=True)  # a cosine similarity

    def far(name: str, value: object) -> float:
        return number(name, value, 0.0, 1.0, lo_open=True)

    table = entry.get("thresholds")
    thresholds: dict[str, float] = {}
    if table is not None:
        if not isinstance(table, dict):
            raise damaged("thresholds", "must be an object mapping false-accept rates to "
                          "thresholds", table)
        for rate, value in table.items():
            try:
                level = far(f"thresholds key {json.dumps(rate)}", float(rate))
            except ValueError:
                raise damaged(f"thresholds key {json.dumps(rate)}",
                              "must be a false-accept rate", rate) from None
            thresholds[f"{level:g}"] = threshold(f"thresholds[{json.dumps(rate)}]", value)
    mirror = entry.get("mirror")
    if mirror is None:
        mirror = False
    if not isinstance(mirror, bool):
        raise damaged("mirror", "must be true or false", mirror)
    fusion = entry.get("fusion")
    if fusion is None:
        fusion = DEFAULT_FUSION
    known = next((rule for rule in FUSION_RULES if rule == fusion), None)
    if known is None:
        raise damaged("fusion", f"must be one of {', '.join(FUSION_RULES)}", fusion)
    single, single_far = entry.get("threshold"), entry.get("threshold_far")
    margin = entry.get("margin")
    return ModelCalibration(
        threshold=None if single is None else threshold("threshold", single),
        threshold_far=None if single_far is None else far("threshold_far", single_far),
        thresholds=thresholds,
        margin=0.0 if margin is None else number("margin", margin, 0.0, 2.0, lo_open=False),
        mirror=mirror, fusion=known)
