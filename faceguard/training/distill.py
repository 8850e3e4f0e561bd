"""Distil a teacher's face embeddings into :class:`LiteMobileFaceNet` (resumable, CPU or GPU).

Run::

    python -m faceguard.training.distill --data DIR --out CKPT_DIR [--epochs 40]
        [--batch-size 256] [--lr 0.1] [--budget-minutes M] [--device auto|cpu|cuda]
        [--seed 0] [--workers N]

Only the standard library, numpy, torch and (optionally) tqdm are imported, plus one of
cv2 / torchvision / PIL when the crops come as JPEGs, so the script runs from a bare source
checkout on a GPU machine.

Data directory:

- ``crops.npy`` uint8 (N, 96, 96, 3) RGB aligned faces, or ``crops_jpg.npz`` with ``data``
  (1-D uint8, JPEG files back to back) and ``offsets`` (int64, N + 1);
- ``targets.npy`` float32/float16 (N, D) teacher vectors of the faces, and optionally
  ``targets_mirrored.npy`` (N, D) of the mirrored faces (without it no mirroring is done);
- ``valid.npy`` optional bool (N,): rows to use.

Targets are L2-normalised, centred on the mean normalised target of the training split
(originals and mirrors together; stored in the checkpoint as ``target_mean``) and
renormalised. Loss: (1 - cos(student, target)) + lambda * MSE between the batch's student
and target cosine-similarity matrices.

Output directory: ``last.pt`` (atomically, every epoch; resumed automatically),
``best.pt`` (best held-out cosine), ``history.json`` (per-epoch metrics).
Held-out metrics: ``val_cos`` = mean cosine of the student's embedding of the face to the
face's target; ``val_cos_flip`` = the same with both sides mirror-averaged (student:
normalise(e(face) + e(mirror)) against normalise(target + mirrored target)).

One-shot GPU runs: ``--budget-minutes M --fit-budget`` times the first epochs and shortens
``--epochs`` to what fits in M minutes (counted from the start, data loading included), so
the cosine schedule still ends near 0. Suggested on an H200 for ~23k faces (not measured
there): ``--batch-size 512 --lr 0.2 --warmup-epochs 2 --epochs 300 --budget-minutes 7.5
--fit-budget --workers 16 --out $OUT/ckpt``.

This module is the training loop and its command line; the data directory is read in
:mod:`~faceguard.training.distill_data`, the input and augmentation are
:mod:`~faceguard.training.student_input`, the loss and schedule
:mod:`~faceguard.training.optimisation`, the checkpoints :mod:`~faceguard.training.checkpoints`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceguard.training.checkpoints import (
    load_checkpoint,
    model_record,
    save_best_checkpoint,
    save_checkpoint,
    save_json,
)
from faceguard.training.distill_data import (
    DataError,
    apply_centre,
    centre_targets,
    load_data,
    split_indices,
)
from faceguard.training.model import LiteMobileFaceNet
from faceguard.training.optimisation import WarmupCosine, distill_loss, param_groups
from faceguard.training.student_input import DeviceAugment, normalise_uint8


def _load_tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


@torch.no_grad()
def evaluate(
    model: nn.Module,
    crops: torch.Tensor,
    targets: torch.Tensor,
    targets_mirrored: torch.Tensor | None,
    use_amp: bool,
    batch_size: int = 512,
) -> dict[str, float]:
    """Held-out mean cosine to the target, plain and with mirror averaging on both sides."""
    was_training = model.training
    model.eval()
    cos_sum = cos_flip_sum = 0.0
    for lo in range(0, crops.shape[0], batch_size):
        x = normalise_uint8(crops[lo : lo + batch_size])
        with torch.autocast(crops.device.type, dtype=torch.bfloat16, enabled=use_amp):
            e = F.normalize(model(x).float(), dim=1)
            e_m = F.normalize(model(x.flip(-1)).float(), dim=1)
        t = targets[lo : lo + batch_size]
        t_m = t if targets_mirrored is None else targets_mirrored[lo : lo + batch_size]
        cos_sum += float((e * t).sum())
        cos_flip_sum += float((F.normalize(e + e_m, dim=1) * F.normalize(t + t_m, dim=1)).sum())
    model.train(was_training)
    n = max(1, crops.shape[0])
    return {"val_cos": cos_sum / n, "val_cos_flip": cos_flip_sum / n}

def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but CUDA is not available")
    return torch.device(name)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m faceguard.training.distill", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data", type=Path, required=True, help="data directory (see module doc)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint directory")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--relation-weight", type=float, default=1.0,
                   help="lambda: weight of the similarity-matrix MSE term")
    p.add_argument("--val-fraction", type=float, default=0.02)
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="stop after the last epoch that fits this wall-clock budget")
    p.add_argument("--fit-budget", action="store_true",
                   help="with --budget-minutes: shorten --epochs to what fits (timed on the "
                        "first epochs) so the cosine schedule still ends near 0")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="threads for JPEG decoding")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: torch's default)")
    p.add_argument("--amp", choices=["auto", "on", "off"], default="auto",
                   help="bf16 autocast (auto: on for CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p.parse_args(argv)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run (or resume) distillation; return the final checkpoint summary."""
    t_start = time.monotonic()
    budget_s = None if args.budget_minutes is None else args.budget_minutes * 60.0
    device = _pick_device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    use_amp = args.amp == "on" or (args.amp == "auto" and device.type == "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    resume = load_checkpoint(last_path, device) if last_path.exists() else None
    if resume is not None:
        # The held-out split depends on the seed and the step counter on the batch size.
        for key in ("seed", "batch_size", "val_fraction"):
            if resume["args"][key] != getattr(args, key):
                print(f"note: resuming with the checkpoint's {key} {resume['args'][key]}")
                setattr(args, key, resume["args"][key])
    torch.manual_seed(args.seed)

    data = load_data(args.data, args.workers)
    n = data.crops.shape[0]
    train_idx, val_idx = split_indices(n, args.seed, args.val_fraction)
    t_c, tm_c, target_mean = centre_targets(data.targets, data.targets_mirrored, train_idx)
    if resume is not None:
        if resume["data_rows"] != n:
            raise DataError(f"{last_path} was trained on {resume['data_rows']} rows, the data "
                            f"has {n}: use a new --out")
        target_mean = resume["target_mean"].cpu().numpy()
        t_c = apply_centre(data.targets, target_mean)
        tm_c = apply_centre(data.targets_mirrored, target_mean)
    print(f"data: {n} faces ({len(train_idx)} train, {len(val_idx)} held out), target dim "
          f"{t_c.shape[1]}, mirrored targets: {'yes' if tm_c is not None else 'no'}; "
          f"device {device}, bf16 {use_amp}; loaded in {time.monotonic() - t_start:.1f} s",
          flush=True)

    def to_dev(a: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a[idx])).to(device)

    x_train, x_val = to_dev(data.crops, train_idx), to_dev(data.crops, val_idx)
    t_train, t_val = to_dev(t_c, train_idx), to_dev(t_c, val_idx)
    tm_train = None if tm_c is None else to_dev(tm_c, train_idx)
    tm_val = None if tm_c is None else to_dev(tm_c, val_idx)
    del data

    n_train = x_train.shape[0]
    batch = min(args.batch_size, n_train)
    if batch < 2:
        raise DataError("need at least 2 training rows")
    steps_per_epoch = n_train // batch

    model = LiteMobileFaceNet(embedding_size=t_c.shape[1]).to(device)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload,unused-ignore]
    optimizer = torch.optim.SGD(
        param_groups(model, args.weight_decay), lr=args.lr, momentum=0.9, nesterov=True
    )
    total_epochs = args.epochs
    plan = WarmupCosine(round(args.warmup_epochs * steps_per_epoch),
                        total_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, plan)
    aug_gen = torch.Generator(device=device)
    aug_gen.manual_seed(args.seed + 1)
    history: list[dict[str, Any]] = []
    start_epoch, best_cos, prior_train_s = 0, -2.0, 0.0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        # load_state_dict restored the stored plan; the current --epochs decides the schedule.
        plan.warmup_steps = round(args.warmup_epochs * steps_per_epoch)
        plan.total_steps = total_epochs * steps_per_epoch
        aug_gen.set_state(resume["rng"]["aug"].cpu())
        torch.set_rng_state(resume["rng"]["torch"].cpu())
        start_epoch, best_cos = int(resume["epoch"]), float(resume["best_val_cos"])
        history, prior_train_s = list(resume["history"]), float(resume["train_seconds"])
        print(f"resumed from {last_path} after epoch {start_epoch}", flush=True)
    run_model: nn.Module = model
    if args.compile:
        run_model = torch.compile(model)  # type: ignore[assignment,unused-ignore]
    augment = DeviceAugment(mirror=tm_train is not None)
    tqdm = None if (args.no_progress or device.type != "cpu") else _load_tqdm()
    args_record = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}

    def checkpoint(epoch: int, train_s: float) -> dict[str, Any]:
        return {
            **model_record(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "target_mean": torch.from_numpy(np.asarray(target_mean, dtype=np.float32)),
            "data_rows": n,
            "args": args_record,
            "rng": {"aug": aug_gen.get_state(), "torch": torch.get_rng_state()},
            "best_val_cos": best_cos,
            "history": history,
            "train_seconds": train_s,
        }

    epoch_times: list[float] = []
    epoch = start_epoch
    if epoch >= total_epochs:
        print(f"nothing to do: {last_path} has {epoch} of {total_epochs} epochs", flush=True)
    while epoch < total_epochs:
        t_epoch = time.monotonic()
        model.train()
        perm_gen = torch.Generator().manual_seed(args.seed * 100_003 + epoch)
        perm = torch.randperm(n_train, generator=perm_gen)[: steps_per_epoch * batch]
        perm = perm.to(device).view(steps_per_epoch, batch)
        loss_sum = torch.zeros((), device=device)
        cos_sum = torch.zeros((), device=device)
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{total_epochs}",
                   leave=False, dynamic_ncols=True) if tqdm else None
        for step in range(steps_per_epoch):
            idx = perm[step]
            x, flip = augment(x_train[idx], aug_gen)
            target = t_train[idx]
            if tm_train is not None:
                target = torch.where(flip[:, None], tm_train[idx], target)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                out = run_model(x)
            loss, cos = distill_loss(out, target, args.relation_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach()
            cos_sum += cos.detach()
            if bar is not None:
                done = (step + 1) * batch
                bar.set_postfix(loss=f"{loss.item():.4f}",
                                img_s=f"{done / (time.monotonic() - t_epoch):.0f}")
                bar.update()
        if bar is not None:
            bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_s = time.monotonic() - t_epoch
        metrics = evaluate(model, x_val, t_val, tm_val, use_amp)
        epoch += 1
        prior_train_s += train_s
        record = {
            "epoch": epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": float(loss_sum) / steps_per_epoch,
            "train_cos": float(cos_sum) / steps_per_epoch,
            **metrics,
            "images_per_s": steps_per_epoch * batch / train_s,
            "epoch_s": train_s,
            "elapsed_s": time.monotonic() - t_start,
        }
        history.append(record)
        improved = metrics["val_cos"] > best_cos
        if improved:
            best_cos = metrics["val_cos"]
        epoch_times.append(time.monotonic() - t_epoch)
        print(f"epoch {epoch}/{total_epochs} loss {record['train_loss']:.4f} "
              f"train_cos {record['train_cos']:.4f} val_cos {metrics['val_cos']:.4f} "
              f"val_cos_flip {metrics['val_cos_flip']:.4f} lr {record['lr']:.4g} "
              f"{record['images_per_s']:.0f} img/s epoch {train_s:.1f} s elapsed "
              f"{record['elapsed_s']:.0f} s{' *' if improved else ''}", flush=True)
        stop = False
        if budget_s is not None:
            elapsed = time.monotonic() - t_start
            per_epoch = epoch_times[-1]
            if args.fit_budget and len(epoch_times) <= 3:
                # Re-plan on each of the first epochs of this process (the first is slowed by
                # warm-up); early on this barely moves the learning rate.
                fit = epoch + int((budget_s - elapsed) // (per_epoch * 1.05))
                fitted = max(epoch, min(args.epochs, fit))
                if fitted != total_epochs:
                    total_epochs = fitted
                    plan.total_steps = total_epochs * steps_per_epoch
                    print(f"budget: schedule set to {total_epochs} epochs "
                          f"({per_epoch:.1f} s an epoch)", flush=True)
            if epoch < total_epochs and elapsed + per_epoch > budget_s:
                print(f"budget: stopping after epoch {epoch} ({elapsed:.0f} s used of "
                      f"{budget_s:.0f} s)", flush=True)
                stop = True
        ckpt = checkpoint(epoch, prior_train_s)
        save_checkpoint(ckpt, last_path)
        if improved:
            save_best_checkpoint(ckpt, best_path)
        save_json(history, out_dir / "history.json")
        if stop:
            break
    return {"epoch": epoch, "best_val_cos": best_cos, "history": history}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        result = train(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"done: {result['epoch']} epochs, best held-out cosine {result['best_val_cos']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
