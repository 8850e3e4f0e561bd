"""Batched partial occlusion of 112x112 views, mirroring views.py's ``_occlude`` as torch masks.

Every image gets one of three kinds (each drawn with probability 1/3): a bar across the face
(8..25 px, horizontal or vertical, grey or colour), a rectangular patch (16..47 px a side,
solid colour or noise), or glasses over the eye band: two ellipses on the eyes (filled and
translucent for sunglasses, else a 2..3 px ring) joined by a bridge, in a dark grey.
"""

from __future__ import annotations

import torch

from faceguard.training.gpu_degrade import Draws
from faceguard.training.views import TEACHER_SIZE


def _random_colours(draws: Draws, n: int) -> torch.Tensor:
    """(n, 3): half grey levels, half arbitrary RGB, all in 0..255."""
    grey = draws.uniform(0.0, 255.0, n, 1).expand(n, 3)
    rgb = draws.uniform(0.0, 255.0, n, 3)
    return torch.where((draws.uniform(0.0, 1.0, n) < 0.5).view(n, 1), grey, rgb)


def _bar_masks(draws: Draws, n: int, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    thickness = draws.integers(8, 26, n)
    start = draws.below(TEACHER_SIZE - thickness)
    horizontal = (draws.uniform(0.0, 1.0, n) < 0.5).view(n, 1, 1)
    coord = torch.where(horizontal, ys.view(1, -1, 1), xs.view(1, 1, -1))
    lo, hi = start.view(n, 1, 1), (start + thickness).view(n, 1, 1)
    return (coord >= lo) & (coord < hi)


def _patch_masks(draws: Draws, n: int, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    h, w = draws.integers(16, 48, n), draws.integers(16, 48, n)
    y0, x0 = draws.below(TEACHER_SIZE - h), draws.below(TEACHER_SIZE - w)
    rows = (ys.view(1, -1) >= y0.view(n, 1)) & (ys.view(1, -1) < (y0 + h).view(n, 1))
    cols = (xs.view(1, -1) >= x0.view(n, 1)) & (xs.view(1, -1) < (x0 + w).view(n, 1))
    return rows.unsqueeze(2) & cols.unsqueeze(1)


def _inside_ellipse(along2: torch.Tensor, across2: torch.Tensor, a: torch.Tensor,
                    b: torch.Tensor) -> torch.Tensor:
    """Inside the ellipse of semi-axes a, b, from squared offsets along and across its axis."""
    return along2 * (1.0 / (a * a)) + across2 * (1.0 / (b * b)) <= 1.0


def _glasses(draws: Draws, n: int, eyes: torch.Tensor, ys: torch.Tensor,
             xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(masks (n, H, W), alpha (n,)) of glasses on ``eyes`` ((n, 2, 2) view pixels x, y)."""
    sunglasses = draws.uniform(0.0, 1.0, n) < 0.5
    a = draws.integers(11, 16, n).float().view(n, 1, 1)
    b = draws.integers(8, 12, n).float().view(n, 1, 1)
    lift = draws.uniform(-2.0, 2.0, n)
    rim = draws.integers(2, 4, n).float().view(n, 1, 1)
    alpha = torch.where(sunglasses, draws.uniform(0.75, 0.95, n), torch.ones_like(lift))
    swap = (eyes[:, 0, 0] > eyes[:, 1, 0]).view(n, 1)
    left = torch.where(swap, eyes[:, 1], eyes[:, 0]).clone()
    right = torch.where(swap, eyes[:, 0], eyes[:, 1]).clone()
    left[:, 1] += lift
    right[:, 1] += lift
    span = right - left
    distance = span.norm(dim=1, keepdim=True).clamp_min(1e-6)
    direction = span / distance
    cos, sin = direction[:, 0].view(n, 1, 1), direction[:, 1].view(n, 1, 1)
    py, px = ys.view(1, -1, 1), xs.view(1, 1, -1)
    filled = sunglasses.view(n, 1, 1)
    lenses = torch.zeros(n, TEACHER_SIZE, TEACHER_SIZE, dtype=torch.bool, device=eyes.device)
    for eye in (left, right):
        dx, dy = px - eye[:, 0].view(n, 1, 1), py - eye[:, 1].view(n, 1, 1)
        along, across = dx * cos + dy * sin, dy * cos - dx * sin
        along2, across2 = along * along, across * across
        outer = _inside_ellipse(along2, across2, a + rim / 2, b + rim / 2)
        inner = _inside_ellipse(along2, across2, a - rim / 2, b - rim / 2)
        disc = _inside_ellipse(along2, across2, a, b)
        lenses |= torch.where(filled, disc, outer & ~inner)
    start = left + direction * a.view(n, 1)
    end = right - direction * a.view(n, 1)
    seg = (end - start).view(n, 2, 1, 1)
    rel_x, rel_y = px - start[:, 0].view(n, 1, 1), py - start[:, 1].view(n, 1, 1)
    length2 = (seg[:, 0] ** 2 + seg[:, 1] ** 2).clamp_min(1e-6)
    t = ((rel_x * seg[:, 0] + rel_y * seg[:, 1]) / length2).clamp(0.0, 1.0)
    bridge = (rel_x - t * seg[:, 0]) ** 2 + (rel_y - t * seg[:, 1]) ** 2 <= 1.0
    return lenses | bridge, alpha


def _noise_fill(draws: Draws, n: int) -> torch.Tensor:
    """(n, 3, H, W) uniform 0..255 noise, tiled from 48x48 draws (a patch is at most 47 px a
    side, so the noise inside any one patch never repeats)."""
    tile = draws.uniform(0.0, 255.0, n, 3, 48, 48)
    reps = -(-TEACHER_SIZE // 48)
    return tile.repeat(1, 1, reps, reps)[:, :, :TEACHER_SIZE, :TEACHER_SIZE]


def occlude(x: torch.Tensor, draws: Draws, eyes: torch.Tensor) -> torch.Tensor:
    """Each image with one bar, patch or pair of glasses painted over it (n, 3, H, W)."""
    n = x.shape[0]
    ys = torch.arange(TEACHER_SIZE, device=x.device, dtype=torch.float32)
    xs = ys
    kind = draws.integers(0, 3, n)
    bars = _bar_masks(draws, n, ys, xs)
    bar_colour = _random_colours(draws, n)
    patches = _patch_masks(draws, n, ys, xs)
    patch_colour = _random_colours(draws, n)
    patch_noise = draws.uniform(0.0, 1.0, n) < 0.5
    noise = _noise_fill(draws, n)
    glasses_colour = draws.uniform(0.0, 60.0, n, 1).expand(n, 3)
    mask = torch.where((kind == 0).view(n, 1, 1), bars, patches)
    alpha = torch.ones(n, device=x.device)
    wearing = (kind == 2).nonzero().squeeze(1)
    if wearing.numel():  # the costly masks only where they are used
        glasses, glasses_alpha = _glasses(draws, len(wearing), eyes[wearing], ys, xs)
        mask = mask.index_copy(0, wearing, glasses)
        alpha = alpha.index_copy(0, wearing, glasses_alpha)
    colour = torch.where((kind == 0).view(n, 1), bar_colour,
                         torch.where((kind == 1).view(n, 1), patch_colour, glasses_colour))
    fill = colour.view(n, 3, 1, 1).expand_as(x)
    fill = torch.where((patch_noise & (kind == 1)).view(n, 1, 1, 1), noise, fill)
    alpha = alpha.view(n, 1, 1, 1)
    return torch.where(mask.unsqueeze(1), alpha * fill + (1.0 - alpha) * x, x)
