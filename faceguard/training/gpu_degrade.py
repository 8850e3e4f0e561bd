"""Batched photometric and degradation steps of the view recipe, as torch ops on any device.

Each step takes float32 ``(n, 3, 112, 112)`` pixel values (0..255, not yet clamped) and a
:class:`Draws` source, and mirrors the matching step of :mod:`faceguard.training.views`
(same ranges): colour, gamma, low light, blur (gaussian, disc defocus, motion line), low
resolution, sensor noise and JPEG-like artefacts (8x8 block DCT quantisation of luma and
2x2-subsampled chroma, libjpeg's tables scaled by a random quality). Resizes are exact
separable weight matrices (OpenCV's INTER_AREA and INTER_LINEAR), applied as matrix products.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from faceguard.training.views import TEACHER_SIZE

BLUR_KERNEL = 13  # covers gaussian sigma 2 to 3 sigma, disc radius 3 and motion length 8
LOW_RES_SIDES = (24, 64)  # inclusive
JPEG_QUALITY = (15, 70)  # inclusive

_LUMA_TABLE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
_CHROMA_TABLE = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99) + (99,) * 32
_RGB_TO_YCC = ((0.299, 0.587, 0.114),
               (-0.168736, -0.331264, 0.5),
               (0.5, -0.418688, -0.081312))


class Draws:
    """Random tensors on one device, all from one torch generator (the only randomness)."""

    def __init__(self, generator: torch.Generator, device: torch.device) -> None:
        self.generator = generator
        self.device = device

    def uniform(self, lo: float, hi: float, *shape: int) -> torch.Tensor:
        u = torch.rand(shape, generator=self.generator, device=self.device)
        return u * (hi - lo) + lo

    def log_uniform(self, lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.exp(self.uniform(math.log(lo), math.log(hi), *shape))

    def integers(self, lo: int, hi: int, *shape: int) -> torch.Tensor:
        """Integers in lo..hi-1 (as numpy's ``integers``), int64."""
        return torch.randint(lo, hi, shape, generator=self.generator, device=self.device)

    def below(self, bound: torch.Tensor) -> torch.Tensor:
        """One integer in 0..bound-1 per entry of ``bound`` (int64, each bound >= 1)."""
        u = torch.rand(bound.shape, generator=self.generator, device=self.device)
        return torch.minimum((u * bound).long(), bound - 1)

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device)


def _per_image(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def colour(x: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Saturation, white balance, then contrast about the image mean and brightness."""
    n = x.shape[0]
    grey = x.mean(dim=1, keepdim=True)
    x = grey + (x - grey) * _per_image(draws.uniform(0.5, 1.4, n))
    x = x * draws.uniform(0.88, 1.12, n, 3).view(n, 3, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = _per_image(draws.uniform(0.7, 1.3, n))
    return (x - mean) * contrast + mean + _per_image(draws.uniform(-30.0, 30.0, n))


def gamma(x: torch.Tensor, draws: Draws) -> torch.Tensor:
    exponent = _per_image(draws.log_uniform(0.5, 2.0, x.shape[0]))
    return 255.0 * (x.clamp(0.0, 255.0) / 255.0) ** exponent


def low_light(x: torch.Tensor, draws: Draws) -> torch.Tensor:
    """A dark frame: scaled by 0.15..0.45, then shot noise of sigma 2..8."""
    n = x.shape[0]
    dark = x * _per_image(draws.uniform(0.15, 0.45, n))
    return dark + draws.normal(*x.shape) * _per_image(draws.uniform(2.0, 8.0, n))


def sensor_noise(x: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Gaussian noise of sigma 2..10."""
    return x + draws.normal(*x.shape) * _per_image(draws.uniform(2.0, 10.0, x.shape[0]))


def blur_kernels(draws: Draws, n: int) -> torch.Tensor:
    """(n, K, K) normalised kernels: each a gaussian, a disc (defocus) or a motion line."""
    k, half = BLUR_KERNEL, BLUR_KERNEL // 2
    kind = draws.integers(0, 3, n)
    sigma = draws.uniform(0.6, 2.0, n)
    radius = draws.uniform(1.0, 3.0, n)
    length = draws.integers(3, 9, n)
    angle = draws.uniform(0.0, math.pi, n)
    taps = torch.arange(k, device=draws.device, dtype=torch.float32) - half
    ty, tx = taps.view(1, k, 1), taps.view(1, 1, k)
    gauss = torch.exp(-(tx * tx + ty * ty) / (2.0 * sigma.view(n, 1, 1) ** 2))
    disc = ((tx * tx + ty * ty) <= radius.view(n, 1, 1) ** 2).float()
    # motion: the segment OpenCV's views.py draws, rasterised by dense sampling
    centre = (length + (1 - length % 2)) // 2
    c = centre.float()
    dx, dy = torch.cos(angle) * c, torch.sin(angle) * c
    x0, y0 = torch.round(c - dx) - c, torch.round(c - dy) - c
    x1, y1 = torch.round(c + dx) - c, torch.round(c + dy) - c
    t = torch.linspace(0.0, 1.0, 4 * k, device=draws.device).view(1, -1)
    px = torch.round(x0.view(n, 1) + (x1 - x0).view(n, 1) * t).long() + half
    py = torch.round(y0.view(n, 1) + (y1 - y0).view(n, 1) * t).long() + half
    motion = torch.zeros(n, k * k, device=draws.device)
    motion.scatter_(1, py * k + px, 1.0)
    motion = motion.view(n, k, k)
    kernels = torch.where((kind == 0).view(n, 1, 1), gauss,
                          torch.where((kind == 1).view(n, 1, 1), disc, motion))
    return kernels / kernels.sum(dim=(1, 2), keepdim=True)


def blur(x: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Each image filtered by its own kernel (grouped depthwise conv, reflected borders)."""
    n, ch, h, w = x.shape
    kernels = blur_kernels(draws, n).repeat_interleave(ch, dim=0).unsqueeze(1)
    half = BLUR_KERNEL // 2
    padded = F.pad(x.reshape(1, n * ch, h, w), (half, half, half, half), mode="reflect")
    return F.conv2d(padded, kernels, groups=n * ch).view(n, ch, h, w)


def area_matrix(out_size: int, in_size: int) -> np.ndarray:
    """(out, in) weights of OpenCV's INTER_AREA shrink: each output averages its footprint."""
    ratio = in_size / out_size
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        start, end = i * ratio, (i + 1) * ratio
        for j in range(math.floor(start), min(math.ceil(end), in_size)):
            weights[i, j] = (min(end, j + 1) - max(start, j)) / ratio
    return weights


def bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """(out, in) weights of OpenCV's INTER_LINEAR (half-pixel centres, clamped edges)."""
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        src = (i + 0.5) * in_size / out_size - 0.5
        j = math.floor(src)
        frac = src - j
        if j < 0:
            j, frac = 0, 0.0
        if j >= in_size - 1:
            j, frac = in_size - 1, 0.0
        weights[i, j] += 1.0 - frac
        weights[i, min(j + 1, in_size - 1)] += frac
    return weights


def resize_separable(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``rows @ x @ rows^T`` over the last two axes (``rows``: (out, in) or batched)."""
    if rows.ndim == 2:  # one matrix for all: two plain GEMMs over every row of the batch
        cols = x @ rows.T
        return (cols.transpose(-1, -2) @ rows.T).transpose(-1, -2)
    return rows @ x @ rows.transpose(-1, -2)


@functools.lru_cache(maxsize=8)
def low_res_matrices(device: torch.device) -> torch.Tensor:
    """(sides, 112, 112): area shrink to each side of LOW_RES_SIDES, then bilinear back up."""
    lo, hi = LOW_RES_SIDES
    stack = [bilinear_matrix(TEACHER_SIZE, side) @ area_matrix(side, TEACHER_SIZE)
             for side in range(lo, hi + 1)]
    return torch.tensor(np.stack(stack), dtype=torch.float32, device=device)


def low_res(x: torch.Tensor, draws: Draws, matrices: torch.Tensor) -> torch.Tensor:
    """A small, far-away face: each image down to 24..64 px (its own size) and back up."""
    side = draws.integers(0, matrices.shape[0], x.shape[0])
    return resize_separable(x, matrices[side].unsqueeze(1))


@functools.lru_cache(maxsize=8)
def dct_matrix(device: torch.device) -> torch.Tensor:
    """The orthonormal 8-point DCT-II (JPEG's forward transform is D @ block @ D^T)."""
    k = torch.arange(8, dtype=torch.float64, device="cpu")  # float64 on CPU, then moved
    d = torch.cos(math.pi * (2 * k.view(1, 8) + 1) * k.view(8, 1) / 16.0) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2.0)
    return d.to(device=device, dtype=torch.float32)


@functools.lru_cache(maxsize=8)
def _ycc_matrices(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(RGB -> YCbCr, its inverse), float32 on ``device``; inverted once, on the CPU (no
    linear-algebra library call on the device for every batch)."""
    to_ycc = torch.tensor(_RGB_TO_YCC, dtype=torch.float32, device="cpu")
    return to_ycc.to(device), torch.linalg.inv(to_ycc).to(device)


def _quant_tables(quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """libjpeg's quality scaling of the standard tables: (n, 8, 8) luma and chroma steps."""
    q = quality.float()
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q).view(-1, 1, 1)
    tables = []
    for base in (_LUMA_TABLE, _CHROMA_TABLE):
        t = torch.tensor(base, dtype=torch.float32, device=quality.device).view(1, 8, 8)
        tables.append(torch.floor((t * scale + 50.0) / 100.0).clamp(1.0, 255.0))
    return tables[0], tables[1]


def _quantise_blocks(plane: torch.Tensor, steps: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """(n, H, W) level-shifted plane -> its 8x8 block DCT quantised by (n, 8, 8) steps.

    The 2-D block transform is one (64, 64) matrix, ``kron(D, D)``, on the flattened blocks.
    """
    n, h, w = plane.shape
    blocks = plane.view(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4).reshape(n, -1, 64)
    transform = torch.kron(d, d)
    steps = steps.reshape(n, 1, 64)
    coef = torch.round((blocks @ transform.T) / steps) * steps
    back = (coef @ transform).view(n, h // 8, w // 8, 8, 8)
    return back.permute(0, 1, 3, 2, 4).reshape(n, h, w)


def jpeg(x: torch.Tensor, draws: Draws, d: torch.Tensor) -> torch.Tensor:
    """JPEG-like artefacts at a random quality in 15..70 (each image its own)."""
    quality = draws.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, x.shape[0])
    return jpeg_at(x, quality, d)


def jpeg_at(x: torch.Tensor, quality: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """The images through a model of baseline JPEG at these qualities ((n,) ints): YCbCr,
    4:2:0 chroma (box down, bilinear up), 8x8 block DCT quantised with libjpeg's tables."""
    n = x.shape[0]
    luma_steps, chroma_steps = _quant_tables(quality)
    to_ycc, from_ycc = _ycc_matrices(x.device)
    ycc = torch.einsum("ij,njhw->nihw", to_ycc, x.clamp(0.0, 255.0))
    luma = _quantise_blocks(ycc[:, 0] - 128.0, luma_steps, d) + 128.0
    chroma = F.avg_pool2d(ycc[:, 1:], 2)  # Cb, Cr centred on 0 already
    c2, h2, w2 = chroma.shape[1:]
    chroma = _quantise_blocks(chroma.reshape(n * c2, h2, w2),
                              chroma_steps.repeat_interleave(c2, dim=0), d)
    chroma = F.interpolate(chroma.view(n, c2, h2, w2), scale_factor=2.0, mode="bilinear",
                           align_corners=False)
    ycc = torch.cat([luma.unsqueeze(1), chroma], dim=1)
    return torch.einsum("ij,njhw->nihw", from_ycc, ycc)
