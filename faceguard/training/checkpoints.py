"""Checkpoints of the student (``last.pt``, ``best.pt``) and the training history as JSON,
written atomically; shared by :mod:`~faceguard.training.distill`,
:mod:`~faceguard.training.finetune_views`, :mod:`~faceguard.training.online_distill` and
:mod:`~faceguard.training.export`.

A checkpoint is a dict of tensors and plain Python values: ``format``
(:data:`CHECKPOINT_FORMAT`), ``model`` (the state dict), ``model_config`` (what rebuilds the
model) and what the training script needs to resume (optimiser, scheduler, history...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from faceguard.training.atomic_files import write_bytes_atomically
from faceguard.training.model import LiteMobileFaceNet

CHECKPOINT_FORMAT = 1
RESUME_ONLY_KEYS = ("optimizer", "scheduler")
"""Left out of ``best.pt``: it is for export, not for resuming."""


def model_record(model: LiteMobileFaceNet) -> dict[str, Any]:
    """The checkpoint's format, the model's weights (on CPU) and the config that rebuilds it."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config": {"embedding_size": model.embedding_size,
                         "repeats": list(model.repeats),
                         "hidden_widths": (list(model.hidden_widths)
                                           if model.hidden_widths is not None else None)},
    }


def save_checkpoint(obj: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file, then rename over ``path``."""
    write_bytes_atomically(path, lambda f: torch.save(obj, f))


def save_best_checkpoint(ckpt: dict[str, Any], path: Path) -> None:
    """Save ``ckpt`` without the optimiser and scheduler state."""
    save_checkpoint({k: v for k, v in ckpt.items() if k not in RESUME_ONLY_KEYS}, path)


def save_json(obj: Any, path: Path) -> None:
    """Write JSON atomically."""
    write_bytes_atomically(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


def resume_state(model: LiteMobileFaceNet, optimizer: torch.optim.Optimizer, scheduler: Any,
                 step: int, total_steps: int, args: Any, **extra: Any) -> dict[str, Any]:
    """What a training loop needs to resume: the model record, optimiser and scheduler state,
    the step and the schedule's length, the command's arguments (as text) and ``extra``."""
    return {**model_record(model), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": step, "step": step,
            "total_steps": total_steps, "args": {k: str(v) for k, v in vars(args).items()},
            **extra}


def save_progress(out: Path, record: dict[str, Any], history: list[dict[str, Any]],
                  ckpt: dict[str, Any], best: float) -> float:
    """One held-out check's bookkeeping: append and print ``record`` (starred when its
    ``val_cos`` beats ``best``), write ``out/last.pt`` (``ckpt`` with the history and the best
    score), ``out/best.pt`` when it improved, and ``out/history.json``; return the new best."""
    history.append(record)
    improved = record["val_cos"] > best
    best = max(best, float(record["val_cos"]))
    print(json.dumps(record) + (" *" if improved else ""), flush=True)
    ckpt = {**ckpt, "best_val_cos": best, "history": history}
    save_checkpoint(ckpt, out / "last.pt")
    if improved:
        save_best_checkpoint(ckpt, out / "best.pt")
    save_json(history, out / "history.json")
    return best


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by the training scripts (tensors and plain Python values only)."""
    ckpt: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a distill checkpoint (format {ckpt.get('format')})")
    return ckpt


def build_model_from_checkpoint(ckpt: dict[str, Any]) -> LiteMobileFaceNet:
    """Rebuild the model a checkpoint describes and load its weights (on CPU)."""
    cfg = ckpt["model_config"]
    model = LiteMobileFaceNet(cfg["embedding_size"], cfg["repeats"], cfg.get("hidden_widths"))
    model.load_state_dict({k: v.cpu() for k, v in ckpt["model"].items()})
    return model

