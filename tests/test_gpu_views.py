"""Batched torch views (issue 14): shapes, determinism, geometry against the clean crop, and
each augmentation step moving the image the way it should."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (training extra)")

from faceguard.training import gpu_degrade  # noqa: E402
from faceguard.training.gpu_occlusion import _glasses  # noqa: E402
from faceguard.training.gpu_views import GpuViews, student_input, view_geometry  # noqa: E402
from faceguard.training.views import (  # noqa: E402
    CANVAS_SIZE,
    DEFAULT_RECIPE,
    TEACHER_SIZE,
    TEMPLATE_CANVAS,
    ViewRecipe,
    canvas_center_crop,
)
from faceguard.vision.alignment import TEMPLATE_112  # noqa: E402

NOTHING = ViewRecipe(flip=0.0, scale=(1.0, 1.0), max_shift=0.0, max_rotation_deg=0.0,
                     colour=0.0, gamma=0.0, low_light=0.0, blur=0.0, low_res=0.0, noise=0.0,
                     jpeg=0.0, occlusion=0.0)


def _noise_canvases(n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, CANVAS_SIZE, CANVAS_SIZE, 3),
                                                dtype=np.uint8)


def _smooth_canvases(n: int = 6) -> np.ndarray:
    y, x = np.mgrid[:CANVAS_SIZE, :CANVAS_SIZE].astype(np.float32)
    out = []
    for i in range(n):
        r = 128 + 90 * np.sin(x / 23.0 + i)
        g = 128 + 90 * np.cos(y / 29.0 - i)
        b = 60 + (x + y) * 0.4
        out.append(np.stack([r, g, b], axis=2))
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def _views(canvases: np.ndarray, recipe: ViewRecipe = NOTHING, mix: float = 0.0) -> GpuViews:
    return GpuViews(torch.from_numpy(canvases), recipe, mix)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _high_frequency(x: torch.Tensor) -> torch.Tensor:
    """Per-image energy of the discrete Laplacian."""
    lap = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] \
        - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
    return (lap ** 2).mean(dim=(1, 2, 3))


def test_shapes_dtype_and_range() -> None:
    views = GpuViews(torch.from_numpy(_noise_canvases(8)))
    faces = torch.tensor([0, 3, 3, 7, 1])
    for batch in (views.clean(faces), views.augmented(faces, _gen())):
        assert batch.shape == (5, 3, TEACHER_SIZE, TEACHER_SIZE)
        assert batch.dtype == torch.float32
        assert float(batch.min()) >= 0.0 and float(batch.max()) <= 255.0
    student = student_input(views.clean(faces))
    assert student.shape == (5, 3, 96, 96) and student.dtype == torch.float32
    assert float(student.min()) >= -1.0 and float(student.max()) <= 1.0


def test_rejects_canvases_of_the_wrong_kind() -> None:
    with pytest.raises(ValueError, match="uint8"):
        GpuViews(torch.zeros(2, CANVAS_SIZE, CANVAS_SIZE, 3))
    with pytest.raises(ValueError, match="144"):
        GpuViews(torch.zeros(2, 112, 112, 3, dtype=torch.uint8))


def test_same_generator_state_same_views_other_seeds_differ() -> None:
    views = GpuViews(torch.from_numpy(_smooth_canvases(6)), mix=0.5)
    faces = torch.arange(6).repeat(3)
    a = views.augmented(faces, _gen(4))
    b = views.augmented(faces, _gen(4))
    c = views.augmented(faces, _gen(5))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # the same face twice in one batch gets two independent views
    assert not torch.equal(a[0], a[6])


def test_clean_is_the_exact_centre_crop() -> None:
    canvases = _noise_canvases(4)
    clean = _views(canvases).clean(torch.tensor([2, 0]))
    for row, face in enumerate((2, 0)):
        expected = canvas_center_crop(canvases[face]).astype(np.float32)
        assert np.array_equal(clean[row].permute(1, 2, 0).numpy(), expected)


def test_zero_jitter_geometry_reproduces_the_clean_crop() -> None:
    views = _views(_noise_canvases(4))
    faces = torch.arange(4)
    diff = (views.augmented(faces, _gen()) - views.clean(faces)).abs()
    assert float(diff.max()) < 1.0


def test_flip_alone_mirrors_the_crop() -> None:
    views = _views(_noise_canvases(3), replace(NOTHING, flip=1.0))
    faces = torch.arange(3)
    mirrored = torch.flip(views.clean(faces), dims=[3])
    assert float((views.augmented(faces, _gen()) - mirrored).abs().max()) < 1.0


def test_geometry_jitter_moves_the_view_but_keeps_the_face() -> None:
    canvases = _smooth_canvases(4)
    views = _views(canvases, replace(NOTHING, scale=(0.9, 1.1), max_shift=6.0,
                                     max_rotation_deg=12.0))
    faces = torch.arange(4)
    diff = (views.augmented(faces, _gen()) - views.clean(faces)).abs().mean(dim=(1, 2, 3))
    assert bool((diff > 0.5).all()) and bool((diff < 40).all())


def test_low_light_darkens() -> None:
    views = _views(_smooth_canvases(6), replace(NOTHING, low_light=1.0))
    faces = torch.arange(6)
    dark = views.augmented(faces, _gen()).mean(dim=(1, 2, 3))
    bright = views.clean(faces).mean(dim=(1, 2, 3))
    assert bool((dark < 0.5 * bright).all())


def test_blur_and_low_resolution_remove_high_frequencies() -> None:
    canvases = _noise_canvases(8)
    faces = torch.arange(8)
    sharp = _high_frequency(_views(canvases).clean(faces))
    for recipe in (replace(NOTHING, blur=1.0), replace(NOTHING, low_res=1.0)):
        soft = _high_frequency(_views(canvases, recipe).augmented(faces, _gen()))
        assert bool((soft < 0.6 * sharp).all())


def test_blur_kernels_are_normalised_and_centred() -> None:
    kernels = gpu_degrade.blur_kernels(gpu_degrade.Draws(_gen(), torch.device("cpu")), 64)
    assert torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(64))
    taps = torch.arange(gpu_degrade.BLUR_KERNEL) - gpu_degrade.BLUR_KERNEL // 2
    centre_x = (kernels.sum(dim=1) * taps).sum(dim=1)
    assert float(centre_x.abs().max()) < 0.75


def test_noise_and_colour_change_the_image() -> None:
    canvases = _smooth_canvases(6)
    faces = torch.arange(6)
    clean = _views(canvases).clean(faces)
    for recipe in (replace(NOTHING, noise=1.0), replace(NOTHING, colour=1.0),
                   replace(NOTHING, gamma=1.0)):
        changed = _views(canvases, recipe).augmented(faces, _gen())
        assert bool(((changed - clean).abs().mean(dim=(1, 2, 3)) > 0.5).all())


def test_jpeg_barely_touches_a_smooth_image_but_mangles_noise() -> None:
    faces = torch.arange(6)
    recipe = replace(NOTHING, jpeg=1.0)
    for canvases, lo, hi in ((_smooth_canvases(6), 0.0, 6.0), (_noise_canvases(6), 15.0, 255.0)):
        views = _views(canvases, recipe)
        error = (views.augmented(faces, _gen()) - views.clean(faces)).abs().mean(dim=(1, 2, 3))
        assert bool((error > lo).all()) and bool((error < hi).all()), error


def test_occlusion_paints_a_region_and_leaves_the_rest() -> None:
    canvases = _smooth_canvases(6)
    faces = torch.arange(6).repeat(4)
    views = _views(canvases, replace(NOTHING, occlusion=1.0))
    clean = views.clean(faces)
    changed = (views.augmented(faces, _gen()) - clean).abs().amax(dim=1) > 0.5
    fraction = changed.float().mean(dim=(1, 2))
    assert bool((fraction > 0.01).all()) and bool((fraction < 0.6).all())


def test_glasses_sit_on_the_eyes() -> None:
    draws = gpu_degrade.Draws(_gen(), torch.device("cpu"))
    eyes = torch.tensor(TEMPLATE_112[:2], dtype=torch.float32).expand(16, 2, 2)
    grid = torch.arange(TEACHER_SIZE, dtype=torch.float32)
    masks, alpha = _glasses(draws, 16, eyes, grid, grid)
    nose, mouth = TEMPLATE_112[2].round().astype(int), TEMPLATE_112[3].round().astype(int)
    bridge_x, bridge_y = round(float(TEMPLATE_112[:2, 0].mean())), round(float(TEMPLATE_112[0, 1]))
    assert bool(masks.any(dim=(1, 2)).all())
    assert not bool(masks[:, nose[1], nose[0]].any())
    assert not bool(masks[:, mouth[1], mouth[0]].any())
    band = masks[:, bridge_y - 4:bridge_y + 5, bridge_x]
    assert bool(band.any(dim=1).all())  # the bridge crosses between the eyes
    assert bool(((alpha > 0.7) & (alpha <= 1.0)).all())


def test_mixing_gives_a_convex_combination_of_two_faces() -> None:
    canvases = _noise_canvases(5)
    views = _views(canvases, mix=1.0)
    faces = torch.arange(5)
    clean = views.clean(faces)
    mixed = views.augmented(faces, _gen())
    for i in range(5):
        fits = []
        for j in range(5):
            if j == i:
                continue
            d = (clean[i] - clean[j]).flatten()
            lam = float(((mixed[i] - clean[j]).flatten() @ d) / (d @ d))
            residual = float((lam * clean[i] + (1 - lam) * clean[j] - mixed[i]).abs().max())
            fits.append((residual, lam))
        residual, lam = min(fits)
        assert residual < 0.05 and 0.3 <= lam <= 0.7


def test_student_input_is_the_area_resize_of_the_view() -> None:
    views = GpuViews(torch.from_numpy(_noise_canvases(3)))
    batch = views.augmented(torch.arange(3), _gen()).round()
    student = student_input(batch) * 128.0 + 127.5
    for i in range(3):
        view = batch[i].permute(1, 2, 0).numpy().astype(np.uint8)
        expected = cv2.resize(view, (96, 96), interpolation=cv2.INTER_AREA).astype(np.float32)
        assert np.abs(student[i].permute(1, 2, 0).numpy() - expected).max() <= 1.0


def test_low_resolution_matrices_match_opencv() -> None:
    image = np.random.default_rng(1).uniform(0, 255, (TEACHER_SIZE, TEACHER_SIZE)).astype(
        np.float32)
    matrices = gpu_degrade.low_res_matrices(torch.device("cpu"))
    for side in (24, 37, 56, 64):
        small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
        expected = cv2.resize(small, (TEACHER_SIZE, TEACHER_SIZE), interpolation=cv2.INTER_LINEAR)
        rows = matrices[side - gpu_degrade.LOW_RES_SIDES[0]]
        got = gpu_degrade.resize_separable(torch.from_numpy(image), rows).numpy()
        assert np.abs(got - expected).max() < 0.05


@pytest.mark.parametrize("quality", [15, 40, 70])
def test_jpeg_model_agrees_with_opencv_jpeg(quality: int) -> None:
    for canvases, tolerance in ((_smooth_canvases(3), 1.5), (_noise_canvases(3), 4.0)):
        crops = np.stack([canvas_center_crop(c) for c in canvases])
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
        ours = gpu_degrade.jpeg_at(x, torch.full((3,), quality),
                                   gpu_degrade.dct_matrix(torch.device("cpu")))
        for crop, view in zip(crops, ours.clamp(0, 255).round(), strict=True):
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, quality])
            assert ok
            decoded = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            error = np.abs(view.permute(1, 2, 0).numpy() - decoded).mean()
            assert error < tolerance, (quality, error)


def test_eye_positions_follow_the_geometry_and_the_flip() -> None:
    canvas = np.zeros((1, CANVAS_SIZE, CANVAS_SIZE, 3), np.uint8)
    ex, ey = np.round(TEMPLATE_CANVAS[0]).astype(int)
    canvas[0, ey - 1:ey + 2, ex - 1:ex + 2] = 255  # a bright dot on the left template eye
    views = GpuViews(torch.from_numpy(canvas))
    flip = torch.tensor([False, True] * 4)
    draws = gpu_degrade.Draws(_gen(1), torch.device("cpu"))
    theta, eyes = view_geometry(draws, 8, DEFAULT_RECIPE, flip)
    dot = views.warped(torch.zeros(8, dtype=torch.long), theta)[:, 0]
    weights = dot / dot.sum(dim=(1, 2), keepdim=True)
    grid = torch.arange(TEACHER_SIZE, dtype=torch.float32)
    centroid = torch.stack([(weights.sum(dim=1) * grid).sum(dim=1),
                            (weights.sum(dim=2) * grid).sum(dim=1)], dim=1)
    assert float((centroid - eyes[:, 0]).abs().max()) < 1.0  # the dot sits 0.3 px off the eye
