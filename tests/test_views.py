"""Augmented views: deterministic from (seed, face, view), right shapes and value ranges."""

from __future__ import annotations

import numpy as np
import pytest

from faceguard.training.views import (
    CANVAS_MARGIN,
    CANVAS_SIZE,
    STUDENT_SIZE,
    TEACHER_SIZE,
    TEMPLATE_CANVAS,
    ViewRecipe,
    align_canvas,
    augment,
    make_view,
    teacher_view,
    view_rng,
)
from faceguard.vision.alignment import TEMPLATE_112


def _canvas(seed: int = 0) -> np.ndarray:
    """A tiny synthetic 'face': smooth gradient plus noise, (144, 144, 3) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:CANVAS_SIZE, :CANVAS_SIZE]
    base = np.stack([x, y, (x + y) // 2], axis=2).astype(np.float32) * 1.5
    return np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)


def test_views_are_deterministic() -> None:
    canvas = _canvas()
    for view in range(6):
        a_big, a_small = make_view(canvas, face=3, view=view, seed=5)
        b_big, b_small = make_view(canvas.copy(), face=3, view=view, seed=5)
        assert np.array_equal(a_big, b_big) and np.array_equal(a_small, b_small)


def test_views_differ_by_face_view_and_seed() -> None:
    canvas = _canvas()
    reference = teacher_view(canvas, 3, 4, 0)
    assert not np.array_equal(reference, teacher_view(canvas, 3, 5, 0))
    assert not np.array_equal(reference, teacher_view(canvas, 4, 4, 0))
    assert not np.array_equal(reference, teacher_view(canvas, 3, 4, 1))


def test_shapes_and_ranges() -> None:
    canvas = _canvas()
    for view in range(12):
        big, small = make_view(canvas, face=0, view=view)
        assert big.shape == (TEACHER_SIZE, TEACHER_SIZE, 3) and big.dtype == np.uint8
        assert small.shape == (STUDENT_SIZE, STUDENT_SIZE, 3) and small.dtype == np.uint8
        assert big.flags.c_contiguous


def test_clean_and_mirrored_views() -> None:
    canvas = _canvas()
    m = CANVAS_MARGIN
    clean = teacher_view(canvas, 0, 0)
    assert np.array_equal(clean, canvas[m:m + TEACHER_SIZE, m:m + TEACHER_SIZE])
    assert np.array_equal(teacher_view(canvas, 0, 1), clean[:, ::-1])


def test_identity_recipe_is_the_clean_crop() -> None:
    """With every augmentation switched off the view is the centre of the canvas."""
    off = ViewRecipe(flip=0, scale=(1.0, 1.0), max_shift=0, max_rotation_deg=0, colour=0,
                     gamma=0, low_light=0, blur=0, low_res=0, noise=0, jpeg=0, occlusion=0)
    canvas = _canvas()
    view = augment(canvas, view_rng(0, 7), off)
    m = CANVAS_MARGIN
    assert np.abs(view.astype(int) - canvas[m:m + 112, m:m + 112].astype(int)).max() <= 1


def test_every_step_runs() -> None:
    """All augmentations on at once still give a valid, deterministic view."""
    on = ViewRecipe(flip=1, colour=1, gamma=1, low_light=1, blur=1, low_res=1, noise=1,
                    jpeg=1, occlusion=1)
    canvas = _canvas()
    views = [augment(canvas, view_rng(1, v), on) for v in range(20)]
    again = [augment(canvas, view_rng(1, v), on) for v in range(20)]
    assert all(np.array_equal(a, b) for a, b in zip(views, again, strict=True))
    assert all(v.shape == (112, 112, 3) for v in views)


def test_align_canvas_puts_landmarks_on_the_template() -> None:
    """Landmarks already on the 112 template land at template + margin in the canvas."""
    image = np.zeros((112, 112, 3), np.uint8)
    for x, y in TEMPLATE_112:
        image[round(y), round(x)] = 255
    canvas = align_canvas(image, TEMPLATE_112)
    assert canvas.shape == (CANVAS_SIZE, CANVAS_SIZE, 3)
    for x, y in TEMPLATE_CANVAS:
        assert canvas[round(y), round(x)].max() == 255


def test_bad_canvas_is_refused() -> None:
    with pytest.raises(ValueError):
        teacher_view(np.zeros((112, 112, 3), np.uint8), 0, 2)
