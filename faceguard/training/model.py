"""Lite MobileFaceNet (Xiao, Jiang & Liu 2022) for 96x96 faces, in PyTorch.

Layout (input 96x96x3, see docs/papers.md section 1; t = expansion, c = channels,
n = repeats, s = stride of the first block of a group):

=========  ====================================  ===  ===  ===  ===  =====
input      operator                               t    c    n    s   ECA
=========  ====================================  ===  ===  ===  ===  =====
96²x3      conv3x3 + BN + PReLU                   -    64   1    2   -
48²x64     depthwise conv3x3 + BN + PReLU         -    64   1    1   -
48²x64     bottleneck                             2    64   2    2   k=3
24²x64     bottleneck                             4   128   1    2   -
12²x128    bottleneck                             2   128   4    1   -
12²x128    bottleneck                             4   128   1    2   -
6²x128     bottleneck                             2   128   2    1   k=5
6²x128     conv1x1 + BN + PReLU                   -   512   1    1   -
6²x512     linear GDConv 6x6 (depthwise) + BN     -   512   1    1   -
1²x512     linear conv1x1 + BN                    -   128   1    1   -
=========  ====================================  ===  ===  ===  ===  =====

Chosen repeats: the first and third bottleneck groups are cut from MobileFaceNet's 5 and 6
to 2 and 4 (``DEFAULT_REPEATS = (2, 1, 4, 1, 2)``). A bottleneck is 1x1 expand + BN +
hard-swish, depthwise 3x3 + BN + hard-swish, linear 1x1 project + BN, then ECA (groups 1 and
5 only, on the block output) and the identity shortcut where shapes allow. ECA kernel sizes
from k = |(log2 C + 1) / 2|_odd: C=64 -> k=3, C=128 -> k=5. The stem and the 1x1 512 conv
keep MobileFaceNet's PReLU (the paper swaps the activation inside the bottlenecks only).

Measured with :func:`count_mult_adds` (conv + linear multiply-accumulates, one 96x96 image)
and a parameter count: 796,816 parameters (0.80 M), 112.5 M mult-adds (112,520,832). The
unreduced repeats (5, 1, 6, 1, 2) measure 989,593 parameters and 162.4 M mult-adds.

Input contract (shared with the product's ONNX embedder): float32 NCHW RGB, pixels mapped
as (x - 127.5) / 128. The output is the raw 128-d embedding, not L2-normalised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

INPUT_SIZE = 96
DEFAULT_REPEATS: tuple[int, int, int, int, int] = (2, 1, 4, 1, 2)

# (expansion t, output channels c, stride s of the first block, ECA) per bottleneck group.
_GROUPS: tuple[tuple[int, int, int, bool], ...] = (
    (2, 64, 2, True),
    (4, 128, 2, False),
    (2, 128, 1, False),
    (4, 128, 2, False),
    (2, 128, 1, True),
)


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive kernel size: the nearest odd number to (log2(C) + b) / gamma."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class ECA(nn.Module):
    """Efficient Channel Attention: avg pool -> 1-D conv over channels -> sigmoid -> scale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.kernel_size = eca_kernel_size(channels)
        self.conv = nn.Conv1d(
            1, 1, self.kernel_size, padding=self.kernel_size // 2, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each channel of ``x`` (N, C, H, W) by its attention weight."""
        y = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        y = self.conv(y.squeeze(-1).transpose(1, 2))  # (N, 1, C)
        y = torch.sigmoid(y).transpose(1, 2).unsqueeze(-1)  # (N, C, 1, 1)
        return x * y


class ConvBN(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d + optional activation."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: str | None = None,
    ) -> None:
        padding = kernel // 2 if kernel in (1, 3) else 0
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if act == "prelu":
            layers.append(nn.PReLU(out_ch))
        elif act == "hswish":
            layers.append(nn.Hardswish())
        elif act is not None:
            raise ValueError(f"unknown activation {act!r}")
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, depthwise 3x3, linear 1x1 project (+ ECA, shortcut)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int, eca: bool,
                 hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or in_ch * expansion
        self.body = nn.Sequential(
            ConvBN(in_ch, hidden, 1, act="hswish"),
            ConvBN(hidden, hidden, 3, stride, groups=hidden, act="hswish"),
            ConvBN(hidden, out_ch, 1, act=None),
        )
        self.eca: nn.Module = ECA(out_ch) if eca else nn.Identity()
        self.use_shortcut = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = self.eca(self.body(x))
        return x + y if self.use_shortcut else y


class LiteMobileFaceNet(nn.Module):
    """Lite MobileFaceNet: 96x96 RGB (normalised) -> raw ``embedding_size``-d embedding."""

    def __init__(
        self, embedding_size: int = 128, repeats: Sequence[int] = DEFAULT_REPEATS,
        hidden_widths: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if len(repeats) != len(_GROUPS):
            raise ValueError(f"need {len(_GROUPS)} repeat counts, got {len(repeats)}")
        self.embedding_size = embedding_size
        self.repeats = tuple(int(n) for n in repeats)
        widths = list(hidden_widths) if hidden_widths is not None else None
        if widths is not None and len(widths) != sum(self.repeats):
            raise ValueError(f"need {sum(self.repeats)} hidden widths, got {len(widths)}")
        # None: each bottleneck's input channels x its expansion (the paper's widths)
        self.hidden_widths = tuple(widths) if widths is not None else None
        self.stem = nn.Sequential(
            ConvBN(3, 64, 3, 2, act="prelu"),
            ConvBN(64, 64, 3, 1, groups=64, act="prelu"),
        )
        groups: list[nn.Module] = []
        in_ch = 64
        for (t, c, s, eca), n in zip(_GROUPS, self.repeats, strict=True):
            blocks = [Bottleneck(in_ch if i == 0 else c, c, s if i == 0 else 1, t, eca,
                                 widths.pop(0) if widths else None)
                      for i in range(n)]
            groups.append(nn.Sequential(*blocks))
            in_ch = c
        self.groups = nn.Sequential(*groups)
        final = INPUT_SIZE // 16
        self.conv_sep = ConvBN(in_ch, 512, 1, act="prelu")
        self.gdconv = ConvBN(512, 512, final, groups=512, act=None)
        self.linear = nn.Conv2d(512, embedding_size, 1, bias=False)
        self.bn = nn.BatchNorm2d(embedding_size)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of residual blocks so each starts as the identity.
        for m in self.modules():
            if isinstance(m, Bottleneck) and m.use_shortcut:
                project = m.body[-1]
                assert isinstance(project, ConvBN)
                last_bn = project[1]
                assert isinstance(last_bn, nn.BatchNorm2d)
                nn.init.zeros_(last_bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, 3, 96, 96) normalised RGB to (N, embedding_size) raw embeddings."""
        x = self.stem(x)
        x = self.groups(x)
        x = self.conv_sep(x)
        x = self.gdconv(x)
        x = self.bn(self.linear(x))
        return torch.flatten(x, 1)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_mult_adds(model: nn.Module, input_size: int = INPUT_SIZE) -> int:
    """Multiply-accumulates of conv and linear layers for one RGB image, via forward hooks."""
    total = 0

    def conv_hook(module: nn.Module, _inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv1d | nn.Conv2d)
        kernel = math.prod(module.kernel_size)
        total += out.numel() * (module.in_channels // module.groups) * kernel

    def linear_hook(
        module: nn.Module, _inputs: tuple[torch.Tensor, ...], out: torch.Tensor
    ) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += out.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


if __name__ == "__main__":
    net = LiteMobileFaceNet()
    print(f"repeats {net.repeats}, ECA k: 64 -> {eca_kernel_size(64)}, 128 -> "
          f"{eca_kernel_size(128)}")
    print(f"parameters {count_parameters(net):,}, mult-adds {count_mult_adds(net):,}")
