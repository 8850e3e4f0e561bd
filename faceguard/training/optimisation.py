"""What the student is trained on and how: the distillation loss, the warm-up + cosine
learning-rate factor and the weight-decay groups (shared by
:mod:`~faceguard.training.distill` and :mod:`~faceguard.training.finetune_views`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def distill_loss(
    student: torch.Tensor, target: torch.Tensor, relation_weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 - cos) + relation_weight * MSE of cosine-similarity matrices; also mean cosine."""
    s = F.normalize(student.float(), dim=1)
    cos = (s * target).sum(dim=1)
    loss = (1.0 - cos).mean()
    if relation_weight > 0:
        loss = loss + relation_weight * F.mse_loss(s @ s.T, target @ target.T)
    return loss, cos.mean()


class WarmupCosine:
    """LR factor: linear warm-up over ``warmup_steps``, then cosine decay to ``final``."""

    def __init__(self, warmup_steps: int, total_steps: int, final: float = 0.0) -> None:
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.final = float(final)

    def __call__(self, step: int) -> float:
        """Factor for the optimiser step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only (not on BN, PReLU or biases)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]

