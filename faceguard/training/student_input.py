"""The student's input: uint8 NHWC RGB crops to its normalised float NCHW tensor, plainly
(:func:`normalise_uint8`) or through the training augmentation (:class:`DeviceAugment`, torch
ops on the data's device).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def to_model_input(x: torch.Tensor) -> torch.Tensor:
    """float32 NCHW pixel values 0..255 -> (x - 127.5) / 128, channels_last."""
    return ((x - 127.5) / 128.0).contiguous(memory_format=torch.channels_last)


def normalise_uint8(x_u8: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC RGB -> float32 NCHW (x - 127.5) / 128, channels_last (the model's input)."""
    return to_model_input(x_u8.permute(0, 3, 1, 2).float())


class DeviceAugment:
    """Batch augmentation with torch ops on the data's device (uint8 NHWC in, NCHW out)."""

    def __init__(
        self,
        mirror: bool = True,
        max_scale: float = 0.05,
        max_shift_px: float = 3.0,
        max_rotation_deg: float = 5.0,
        brightness: float = 20.0,
        contrast: tuple[float, float] = (0.8, 1.2),
        blur_p: float = 0.1,
        blur_sigma: tuple[float, float] = (0.5, 1.1),
        grey_p: float = 0.1,
    ) -> None:
        self.mirror = mirror
        self.max_scale = max_scale
        self.max_shift_px = max_shift_px
        self.max_rotation = math.radians(max_rotation_deg)
        self.brightness = brightness
        self.contrast = contrast
        self.blur_p = blur_p
        self.blur_sigma = blur_sigma
        self.grey_p = grey_p

    def __call__(
        self, x_u8: torch.Tensor, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (normalised float32 (B, 3, H, W) channels_last, mirrored mask (B,))."""
        b, h, w, _ = x_u8.shape
        dev = x_u8.device

        def uni(*shape: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
            return torch.rand(*shape, device=dev, generator=gen) * (hi - lo) + lo

        x = x_u8.permute(0, 3, 1, 2).float()
        if self.mirror:
            flip = torch.rand(b, device=dev, generator=gen) < 0.5
        else:
            flip = torch.zeros(b, dtype=torch.bool, device=dev)
        # Affine (mirror folded in): input coords = R(angle) / scale @ diag(fx, 1) @ out + t.
        scale = 1.0 + uni(b) * self.max_scale
        angle = uni(b) * self.max_rotation
        shift = uni(b, 2) * self.max_shift_px
        fx = 1.0 - 2.0 * flip.float()
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [
                torch.stack([cos * fx, -sin, shift[:, 0] * 2.0 / w], dim=1),
                torch.stack([sin * fx, cos, shift[:, 1] * 2.0 / h], dim=1),
            ],
            dim=1,
        )
        grid = F.affine_grid(theta, [b, 3, h, w], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        # Contrast about the image mean, then brightness.
        lo, hi = self.contrast
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * uni(b, 1, 1, 1, lo=lo, hi=hi) + mean
        x = x + uni(b, 1, 1, 1) * self.brightness
        # Occasional greyscale.
        grey = (x[:, 0:1] * 0.299 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114).expand(-1, 3, -1, -1)
        x = torch.where((torch.rand(b, device=dev, generator=gen) < self.grey_p)
                        .view(b, 1, 1, 1), grey, x)
        # Occasional slight Gaussian blur: per-image separable 5-tap kernel (delta if unused).
        if self.blur_p > 0:
            x = self._blur(x, gen)
        return to_model_input(x.clamp(0.0, 255.0)), flip

    def _blur(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        b, c, h, w = x.shape
        dev = x.device
        use = torch.rand(b, device=dev, generator=gen) < self.blur_p
        lo, hi = self.blur_sigma
        sigma = torch.rand(b, device=dev, generator=gen) * (hi - lo) + lo
        taps = torch.arange(-2, 3, device=dev, dtype=x.dtype)
        k = torch.exp(-(taps[None, :] ** 2) / (2.0 * sigma[:, None] ** 2))
        k = k / k.sum(dim=1, keepdim=True)
        delta = (taps == 0).to(x.dtype).expand(b, -1)
        k = torch.where(use[:, None], k, delta).repeat_interleave(c, dim=0)  # (b*c, 5)
        y = F.pad(x.reshape(1, b * c, h, w), (2, 2, 2, 2), mode="replicate")
        y = F.conv2d(y, k.view(b * c, 1, 5, 1), groups=b * c)
        y = F.conv2d(y, k.view(b * c, 1, 1, 5), groups=b * c)
        return y.view(b, c, h, w)

