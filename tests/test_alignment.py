"""Similarity alignment: synthetic landmarks must map back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from faceguard.vision.alignment import TEMPLATE_96, align_face, similarity_transform


def _transform(points: np.ndarray, angle_deg: float, scale: float,
               shift: tuple[float, float]) -> np.ndarray:
    angle = np.radians(angle_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return scale * points @ rotation.T + np.asarray(shift)


@pytest.mark.parametrize(("angle", "scale", "shift"),
                         [(0, 1, (0, 0)), (17, 2.5, (140, -30)), (-40, 0.6, (3.5, 80))])
def test_transformed_template_maps_back_exactly(angle: float, scale: float,
                                                shift: tuple[float, float]) -> None:
    moved = _transform(TEMPLATE_96, angle, scale, shift)
    matrix = similarity_transform(moved, TEMPLATE_96)
    mapped = moved @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, TEMPLATE_96, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(matrix[:, 0]), 1 / scale, rtol=1e-9)


def test_noisy_points_give_least_squares_fit_without_reflection() -> None:
    rng = np.random.default_rng(0)
    moved = _transform(TEMPLATE_96, 10, 1.7, (20, 30)) + rng.normal(0, 0.5, (5, 2))
    matrix = similarity_transform(moved, TEMPLATE_96)
    assert np.linalg.det(matrix[:, :2]) > 0
    residual = moved @ matrix[:, :2].T + matrix[:, 2] - TEMPLATE_96
    assert np.abs(residual).max() < 1.5


def test_template_is_the_112_template_scaled() -> None:
    assert TEMPLATE_96[0] == pytest.approx([32.8239, 44.3111], abs=1e-3)
    assert TEMPLATE_96[:, 0].mean() == pytest.approx(48.0, abs=0.5)


def test_align_face_puts_landmarks_on_template() -> None:
    # Draw dots at transformed template positions, align, and find the dots again.
    image = np.zeros((300, 400, 3), np.uint8)
    points = _transform(TEMPLATE_96, 25, 2.0, (150, 40))
    for x, y in points:
        row, col = round(y), round(x)
        image[row - 1:row + 2, col - 1:col + 2] = 255
    crop = align_face(image, points)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    for x, y in TEMPLATE_96:
        patch = crop[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2, 0]
        assert patch.max() > 100


def test_degenerate_points_raise() -> None:
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), TEMPLATE_96)
