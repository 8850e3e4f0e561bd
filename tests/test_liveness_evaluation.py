"""APCER, BPCER, ACER and the DET plot."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.evaluation.liveness import det_curve, draw_det, pad_rates, render_det
from faceguard.evaluation.roc_plot import PlotError


def test_rates_at_a_threshold() -> None:
    live = [0.9, 0.8, 0.4, None]          # 0.4 and unsure are refused: BPCER 2/4
    attack = [0.1, 0.6, 0.2, 0.05, None]  # 0.6 accepted: APCER 1/5
    rates = pad_rates(live, attack, 0.5)
    assert rates.bpcer == pytest.approx(0.5)
    assert rates.apcer == pytest.approx(0.2)
    assert rates.acer == pytest.approx(0.35)
    assert (rates.live_unsure, rates.attack_unsure) == (1, 1)
    assert rates.as_json() == {"apcer": 0.2, "bpcer": 0.5, "acer": 0.35,
                               "threshold": 0.5, "live": 4, "attack": 5}


def test_score_equal_to_threshold_is_accepted() -> None:
    rates = pad_rates([0.5], [0.5], 0.5)
    assert rates.apcer == 1.0 and rates.bpcer == 0.0


def test_empty_lists_are_refused() -> None:
    with pytest.raises(ValueError):
        pad_rates([], [0.1], 0.5)


def test_det_curve_agrees_with_pad_rates() -> None:
    rng = np.random.default_rng(1)
    live = list(rng.beta(5, 2, 200))
    attack: list[float | None] = [*rng.beta(2, 5, 300).tolist(), None]
    curve = det_curve(live, attack)
    assert np.all(np.diff(curve.apcer) <= 0) and np.all(np.diff(curve.bpcer) >= 0)
    assert curve.apcer[-1] == 0.0 and curve.bpcer[-1] == 1.0
    for i in (0, 57, 311):
        rates = pad_rates(live, attack, float(curve.thresholds[i]))
        assert rates.apcer == pytest.approx(curve.apcer[i])
        assert rates.bpcer == pytest.approx(curve.bpcer[i])
    eer, threshold = curve.equal_error()
    assert 0.05 < eer < 0.35 and 0.2 < threshold < 0.8


def test_det_png(tmp_path: Path) -> None:
    curve = det_curve([0.9, 0.7, 0.3], [0.1, 0.4, 0.8])
    image = render_det([("fused", curve)], points=[pad_rates([0.9, 0.7, 0.3],
                                                             [0.1, 0.4, 0.8], 0.5)])
    assert image.shape == (640, 900, 3) and image.min() < 100
    path = draw_det(tmp_path / "det.png", [("fused", curve)])
    assert cv2.imread(str(path)) is not None
    with pytest.raises(PlotError):
        draw_det(tmp_path / "det.jpg", [("fused", curve)])
