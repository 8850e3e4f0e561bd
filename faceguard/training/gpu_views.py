"""Augmented 112x112 views made in batches on the training device, for online teacher labels.

The torch counterpart of :mod:`faceguard.training.views` (issue 14): the canvases live on the
device as uint8 ``(N, 144, 144, 3)`` RGB, and :meth:`GpuViews.augmented` turns a batch of face
indices into independently augmented views with the version-1 recipe's probabilities and
ranges: flip, scale/rotation/shift (one ``affine_grid`` + ``grid_sample`` per batch, folded
with the flip), partial occlusion, colour, gamma, low light, blur, low resolution, sensor
noise and JPEG-like artefacts (steps in :mod:`~faceguard.training.gpu_degrade` and
:mod:`~faceguard.training.gpu_occlusion`), then, with probability ``mix``, a blend with another
face of the batch. All randomness comes from the caller's ``torch.Generator`` (on the
canvases' device): the same generator state gives the same views. The views are not the ones
``views.make_view`` draws (another random source; JPEG here is a block-DCT model of the codec).

:func:`student_input` gives the student's 96x96 input from the same views (exact INTER_AREA
weights as a matrix product), so teacher and student see one image::

    views = GpuViews(canvases.to("cuda"))
    gen = torch.Generator("cuda").manual_seed(0)
    batch = views.augmented(faces, gen)          # teacher: sface(batch)
    student_x = student_input(batch)              # student: model(student_x)

Measured on the development CPU (2 cores shared with other jobs, load average about 3.5,
torch 2.13, 2 threads), batch 256, default recipe, mix 0.1: about 2.8 s per batch for
``augmented`` (memory-bound there: a plain copy of one batch took 80 ms) and 0.25 s for
``student_input``, with ``PYTHONPATH=$PWD python -m faceguard.training.gpu_views``.
No GPU figure was measured.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from faceguard.training import gpu_degrade as degrade
from faceguard.training.gpu_degrade import Draws, area_matrix, resize_separable
from faceguard.training.gpu_occlusion import occlude
from faceguard.training.student_input import to_model_input
from faceguard.training.views import (
    CANVAS_MARGIN,
    CANVAS_SIZE,
    DEFAULT_RECIPE,
    STUDENT_SIZE,
    TEACHER_SIZE,
    TEMPLATE_CANVAS,
    ViewRecipe,
)

MIX_WEIGHT = (0.3, 0.7)
# which column of the per-image step draws decides which step (fixed order, all drawn)
_FLIP, _OCCLUSION, _COLOUR, _GAMMA, _LOW_LIGHT, _BLUR, _LOW_RES, _NOISE, _JPEG, _MIX = range(10)

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def view_geometry(draws: Draws, n: int, recipe: ViewRecipe,
                  flip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(theta (n, 2, 3) for ``affine_grid`` canvas -> view, eyes (n, 2, 2) in view pixels).

    Same parameters as ``views._geometry``: log-uniform scale, rotation about the view centre,
    shift in view pixels; ``flip`` (bool (n,)) mirrors the view afterwards.
    """
    scale = draws.log_uniform(recipe.scale[0], recipe.scale[1], n)
    angle = draws.uniform(-recipe.max_rotation_deg, recipe.max_rotation_deg, n) * (math.pi / 180)
    shift = draws.uniform(-recipe.max_shift, recipe.max_shift, n, 2)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # views: view = L (canvas - (margin + c)) + c + shift, L = scale * R(angle), c = 55.5.
    # With align_corners=False, view = 56 u + c and canvas = 72 p + margin + c for the
    # normalised output u and input p, so p = (112 / 144) L^-1 u - (2 / 144) L^-1 shift.
    inverse = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
    inverse = inverse / scale.view(n, 1, 1)
    linear = inverse * (TEACHER_SIZE / CANVAS_SIZE)
    mirror = 1.0 - 2.0 * flip.float()
    linear = linear * torch.stack([mirror, torch.ones_like(mirror)], 1).view(n, 1, 2)
    offset = -(inverse @ shift.unsqueeze(2)) * (2.0 / CANVAS_SIZE)
    theta = torch.cat([linear, offset], dim=2)
    centre = (TEACHER_SIZE - 1) / 2.0
    template = torch.tensor(TEMPLATE_CANVAS[:2], dtype=torch.float32, device=draws.device)
    forward = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    forward = forward * scale.view(n, 1, 1)
    eyes = (template - (CANVAS_MARGIN + centre)) @ forward.transpose(1, 2)
    eyes = eyes + centre + shift.view(n, 1, 2)
    eyes[:, :, 0] = torch.where(flip.view(n, 1), TEACHER_SIZE - 1 - eyes[:, :, 0],
                                eyes[:, :, 0])
    return theta, eyes


def _on_chosen(x: torch.Tensor, chosen: torch.Tensor, step: Step) -> torch.Tensor:
    """``x`` (a batch of our own, changed in place) with ``step(x[idx], idx)`` written over
    the chosen images; the others are untouched."""
    idx = chosen.nonzero().squeeze(1)
    if idx.numel() == 0:
        return x
    flat = x.view(x.shape[0], -1)  # row gathers and scatters are cheapest on 2-D views
    part = flat.index_select(0, idx).view(-1, *x.shape[1:])
    flat.index_copy_(0, idx, step(part, idx).reshape(len(idx), -1))
    return x


def mix_within_batch(x: torch.Tensor, draws: Draws, chosen: torch.Tensor) -> torch.Tensor:
    """Chosen images blended as lam * own + (1 - lam) * another image of the batch."""
    n = x.shape[0]
    if n < 2:
        return x
    partner = (torch.arange(n, device=x.device) + 1 + draws.integers(0, n - 1, n)) % n
    lam = draws.uniform(MIX_WEIGHT[0], MIX_WEIGHT[1], n).view(n, 1, 1, 1)
    return torch.where(chosen.view(n, 1, 1, 1), lam * x + (1.0 - lam) * x[partner], x)


class GpuViews:
    """Clean and augmented teacher views of device-resident face canvases, a batch at a time."""

    def __init__(self, canvases: torch.Tensor, recipe: ViewRecipe = DEFAULT_RECIPE,
                 mix: float = 0.1) -> None:
        """canvases: uint8 (N, CANVAS_SIZE, CANVAS_SIZE, 3) RGB on the device training runs on
        (cpu or cuda)."""
        if (canvases.dtype != torch.uint8 or canvases.ndim != 4
                or tuple(canvases.shape[1:]) != (CANVAS_SIZE, CANVAS_SIZE, 3)):
            raise ValueError(f"expected uint8 (N, {CANVAS_SIZE}, {CANVAS_SIZE}, 3) canvases, "
                             f"got {canvases.dtype} {tuple(canvases.shape)}")
        self.canvases = canvases
        self.recipe = recipe
        self.mix = mix
        self.device = canvases.device
        self._low_res = degrade.low_res_matrices(self.device)
        self._dct = degrade.dct_matrix(self.device)

    def clean(self, faces: torch.Tensor) -> torch.Tensor:
        """(B,) int64 face indices -> (B, 3, 112, 112) float32 0..255: the exact centre crop
        (view 0, no resampling)."""
        m = CANVAS_MARGIN
        crops = self.canvases[faces.to(self.device), m:m + TEACHER_SIZE, m:m + TEACHER_SIZE]
        return crops.permute(0, 3, 1, 2).float().contiguous()

    def warped(self, faces: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """(B, 3, 112, 112) float32: the canvases resampled through ``theta`` (bilinear,
        border padding)."""
        source = self.canvases[faces.to(self.device)].permute(0, 3, 1, 2).float()
        grid = F.affine_grid(theta, [len(faces), 3, TEACHER_SIZE, TEACHER_SIZE],
                             align_corners=False)
        return F.grid_sample(source, grid, mode="bilinear", padding_mode="border",
                             align_corners=False)

    def augmented(self, faces: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B,) int64 -> (B, 3, 112, 112) float32 0..255: every face an independently
        augmented view, drawn from `generator` (same generator state -> same views)."""
        draws = Draws(generator, self.device)
        recipe, n = self.recipe, len(faces)
        step = draws.uniform(0.0, 1.0, n, 10)
        probability = torch.tensor(
            [recipe.flip, recipe.occlusion, recipe.colour, recipe.gamma, recipe.low_light,
             recipe.blur, recipe.low_res, recipe.noise, recipe.jpeg, self.mix],
            device=self.device)
        chosen = step < probability
        theta, eyes = view_geometry(draws, n, recipe, chosen[:, _FLIP])
        x = self.warped(faces, theta)
        x = _on_chosen(x, chosen[:, _OCCLUSION], lambda v, idx: occlude(v, draws, eyes[idx]))
        x = _on_chosen(x, chosen[:, _COLOUR], lambda v, _: degrade.colour(v, draws))
        x = _on_chosen(x, chosen[:, _GAMMA], lambda v, _: degrade.gamma(v, draws))
        x = _on_chosen(x, chosen[:, _LOW_LIGHT], lambda v, _: degrade.low_light(v, draws))
        x = _on_chosen(x, chosen[:, _BLUR], lambda v, _: degrade.blur(v, draws))
        x = _on_chosen(x, chosen[:, _LOW_RES],
                       lambda v, _: degrade.low_res(v, draws, self._low_res))
        x = _on_chosen(x, chosen[:, _NOISE], lambda v, _: degrade.sensor_noise(v, draws))
        x = x.clamp(0.0, 255.0)
        x = _on_chosen(x, chosen[:, _JPEG], lambda v, _: degrade.jpeg(v, draws, self._dct))
        x = mix_within_batch(x, draws, chosen[:, _MIX])
        return x.clamp(0.0, 255.0)


@functools.lru_cache(maxsize=8)
def _student_area(device: torch.device) -> torch.Tensor:
    weights = area_matrix(STUDENT_SIZE, TEACHER_SIZE)
    return torch.tensor(weights, dtype=torch.float32, device=device)


def student_input(views: torch.Tensor) -> torch.Tensor:
    """(B, 3, 112, 112) 0..255 -> (B, 3, 96, 96) float32 (x - 127.5) / 128: area resize (the
    product's 96 template is the 112 one scaled, so the student sees what the teacher saw).

    The resize is OpenCV's INTER_AREA as exact weights; the result is channels_last, as
    :func:`~faceguard.training.student_input.to_model_input` gives the student.
    """
    return to_model_input(resize_separable(views.float(), _student_area(views.device)))


def _measure(batch: int = 256, repeats: int = 3) -> None:
    """Print ms per batch of ``augmented`` and ``student_input`` on random canvases (CPU)."""
    gen = torch.Generator().manual_seed(0)
    canvases = torch.randint(0, 256, (batch, CANVAS_SIZE, CANVAS_SIZE, 3), dtype=torch.uint8,
                             generator=gen)
    views = GpuViews(canvases)
    faces = torch.arange(batch)
    views.augmented(faces, gen)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        batch_views = views.augmented(faces, gen)
    middle = time.perf_counter()
    for _ in range(repeats):
        student_input(batch_views)
    end = time.perf_counter()
    print(f"batch {batch}, {torch.get_num_threads()} threads: augmented "
          f"{(middle - start) / repeats * 1e3:.0f} ms, student_input "
          f"{(end - middle) / repeats * 1e3:.1f} ms")


if __name__ == "__main__":
    _measure()
