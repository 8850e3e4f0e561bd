"""Fine-tune the shipped student towards SFace on the teacher-views cache (CPU, resumable).

The shipped model exists only as ONNX (BatchNorm folded, PReLU rewritten), so the student is
rebuilt from it (:mod:`faceguard.training.onnx_student`): :func:`student_from_onnx` loads the
folded weights into :class:`LiteMobileFaceNet` with BatchNorm in an identity form, and
:func:`calibrate_batchnorm` gives every BatchNorm the statistics of real faces while keeping
the function unchanged (eval output equals the ONNX output; train-mode batch statistics then
start close to it).

The student's embedding space is dlib's, the targets are SFace's: :func:`procrustes` finds the
rotation that best maps the student's vectors of the clean views onto the centred SFace vectors
and :func:`rotate_output` folds it into the last linear layer. A rotation changes no cosine,
so the rotated student scores exactly as the shipped one and training starts from there.

Training draws for each face one of the views whose teacher vector is in the cache
(:mod:`faceguard.training.teacher_views`; new chunks are picked up at every checkpoint, so it
can run beside the teacher job), renders its 96x96 student input with
:func:`faceguard.training.views.make_view` (exactly the pixels the teacher saw, resized) and
minimises (1 - cos) + lambda * MSE of the batch's cosine-similarity matrices against the
*centred* targets. Faces with the lowest recent cosine are drawn more often (half of every
batch is drawn in proportion to 1 - cos). Run::

    OMP_NUM_THREADS=1 nice -n 19 python -m faceguard.training.finetune_views \\
        --init resources/models/lite_mobilefacenet_96.onnx --minutes 50

``--out`` (default ``<train cache>/finetune_sface``) holds ``last.pt`` (every
``--every`` steps, atomically; rerun the same command to resume), ``best.pt`` (best held-out
cosine on the clean view) and ``history.json``; the checkpoints load in
``python -m faceguard.training.export``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceguard.paths import train_cache_dir
from faceguard.training.checkpoints import (
    load_checkpoint,
    resume_state,
    save_progress,
)
from faceguard.training.distill_data import split_indices
from faceguard.training.model import LiteMobileFaceNet
from faceguard.training.onnx_student import (
    calibrate_batchnorm,
    procrustes,
    rotate_output,
    student_from_onnx,
)
from faceguard.training.optimisation import WarmupCosine, distill_loss, param_groups
from faceguard.training.student_input import normalise_uint8
from faceguard.training.teacher_views import default_out as default_views
from faceguard.training.teacher_views import load_teacher_views
from faceguard.training.views import make_view


# --------------------------------------------------------------------------- data
class ViewData:
    """Canvases, teacher vectors of the views done so far, and the centring mean."""

    def __init__(self, views_dir: Path, max_views: int) -> None:
        self.views_dir = views_dir
        self.max_views = max_views
        self.canvases = np.load(views_dir / "canvases.npy")
        self.seed = int(json.loads((views_dir / "views" / "meta.json").read_text())["seed"])
        self.refresh()

    def refresh(self) -> None:
        """Re-read the cache (chunks written since the last call become usable)."""
        vectors, done = load_teacher_views(self.views_dir, self.max_views)
        self.vectors, self.done = vectors, done

    def render(self, faces: np.ndarray, views: np.ndarray) -> np.ndarray:
        """uint8 (B, 96, 96, 3) student inputs of these (face, view) pairs."""
        return np.stack([make_view(self.canvases[f], int(f), int(v), self.seed)[1]
                         for f, v in zip(faces, views, strict=True)])


def centring_mean(vectors: np.ndarray, done: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Mean of the L2-normalised teacher vectors of all done views of ``faces``."""
    rows = vectors[faces][done[faces]]
    return rows.astype(np.float64).mean(axis=0).astype(np.float32)


def centred(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """normalise(v - mean) row-wise (vectors are already unit length)."""
    out = vectors.astype(np.float32) - mean
    return out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)


@torch.no_grad()
def embed_batches(model: nn.Module, crops: np.ndarray, batch: int = 128) -> np.ndarray:
    """L2-normalised student vectors of uint8 crops (eval mode)."""
    model.eval()
    out = [F.normalize(model(normalise_uint8(torch.from_numpy(crops[i:i + batch]))), dim=1)
           for i in range(0, len(crops), batch)]
    return torch.cat(out).numpy()


def held_out_cosine(model: nn.Module, data: ViewData, faces: np.ndarray,
                    mean: np.ndarray) -> dict[str, float]:
    """Mean cosine to the centred target: clean view 0, and every done augmented view."""
    clean = data.render(faces, np.zeros(len(faces), np.int64))
    result = {"val_cos": float((embed_batches(model, clean)
                                * centred(data.vectors[faces, 0], mean)).sum(1).mean())}
    pairs = [(f, v) for f in faces for v in range(2, data.max_views) if data.done[f, v]]
    if pairs:
        f_idx = np.array([p[0] for p in pairs])
        v_idx = np.array([p[1] for p in pairs])
        e = embed_batches(model, data.render(f_idx, v_idx))
        t = centred(data.vectors[f_idx, v_idx], mean)
        result["val_cos_augmented"] = float((e * t).sum(1).mean())
    return result


# --------------------------------------------------------------------------- training
def prepared_student(init: Path, data: ViewData, train_faces: np.ndarray, mean: np.ndarray,
                     fit_faces: int = 3000, seed: int = 0) -> tuple[LiteMobileFaceNet, dict]:
    """The shipped student, rotated onto the centred SFace space, BatchNorm calibrated."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(train_faces, min(fit_faces, len(train_faces)), replace=False))
    crops = data.render(pick, np.zeros(len(pick), np.int64))
    model = student_from_onnx(init)
    before = embed_batches(model, crops)
    target = centred(data.vectors[pick, 0], mean)
    rotation = procrustes(before, target)
    rotate_output(model, rotation)
    calibrate_batchnorm(model, normalise_uint8(torch.from_numpy(crops[:512])))
    after = embed_batches(model, crops)
    info = {"procrustes_faces": len(pick),
            "fit_cos_rotated": float((after * target).sum(1).mean()),
            "rotation_kept_cosines": float(np.abs(after @ after[:64].T
                                                  - before @ before[:64].T).max())}
    return model, info


def set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    """Train mode; BatchNorm layers stay in eval mode (stored statistics) if ``freeze_bn``."""
    model.train()
    if freeze_bn:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m faceguard.training.finetune_views",
                                description=__doc__.splitlines()[0])
    p.add_argument("--init", type=Path, required=True, help="the shipped student (ONNX)")
    p.add_argument("--views-dir", type=Path, default=None,
                   help="teacher-views cache (default <train cache>/sface_views)")
    p.add_argument("--views", type=int, default=8, help="use views 0..K-1 where done")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--minutes", type=float, default=50.0,
                   help="wall-clock budget; the schedule is fitted to it on the first steps")
    p.add_argument("--steps", type=int, default=None, help="fixed schedule length instead")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--relation-weight", type=float, default=1.0)
    p.add_argument("--anchor-weight", type=float, default=0.0,
                   help="weight of a second target: the starting student itself (frozen), "
                        "so its structure is kept while SFace's is learnt (two teachers "
                        "through their similarity structure)")
    p.add_argument("--hard-fraction", type=float, default=0.5,
                   help="part of a batch drawn in proportion to the face's 1 - cos")
    p.add_argument("--every", type=int, default=150, help="checkpoint every N steps")
    p.add_argument("--val-fraction", type=float, default=0.02)
    p.add_argument("--train-bn", dest="freeze_bn", action="store_false",
                   help="BatchNorm in train mode (default: frozen statistics, the shipped "
                        "function at step 0; batches of 64 make batch statistics noisy)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run or resume the fine-tuning; returns the last record."""
    t_start = time.monotonic()
    torch.set_num_threads(args.threads)
    out: Path = args.out or train_cache_dir() / "finetune_sface"
    out.mkdir(parents=True, exist_ok=True)
    last_path = out / "last.pt"
    data = ViewData(args.views_dir or default_views(), args.views)
    found = np.load(data.views_dir / "found.npy")
    faces = np.flatnonzero(found)
    train_pos, val_pos = split_indices(len(faces), args.seed, args.val_fraction)
    all_train, all_val = faces[train_pos], faces[val_pos]

    def usable() -> tuple[np.ndarray, np.ndarray]:
        return all_train[data.done[all_train].any(axis=1)], all_val[data.done[all_val, 0]]

    train_faces, val_faces = usable()
    if len(train_faces) < 2 * args.batch_size or len(val_faces) < 2:
        raise SystemExit(f"error: only {len(train_faces)} faces have a teacher view yet")
    resume = load_checkpoint(last_path) if last_path.exists() else None
    history: list[dict[str, Any]] = []
    if resume is None:
        mean = centring_mean(data.vectors, data.done, train_faces)
        model, info = prepared_student(args.init, data, train_faces, mean, seed=args.seed)
        print(f"start: {json.dumps(info)}", flush=True)
        start = held_out_cosine(model, data, val_faces, mean)
        print(f"held out before fine-tuning: {json.dumps(start)}", flush=True)
        history.append({"step": 0, **info, **start})
        anchor_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    else:
        mean = resume["target_mean"].numpy()
        model = LiteMobileFaceNet()
        model.load_state_dict(resume["model"])
        anchor_state = resume.get("anchor") or resume["model"]
    anchor: LiteMobileFaceNet | None = None
    if args.anchor_weight > 0:  # the starting student, frozen: its own structure as a target
        anchor = LiteMobileFaceNet()
        anchor.load_state_dict(anchor_state)
        anchor.eval().requires_grad_(False)
    set_train_mode(model, args.freeze_bn)
    optimizer = torch.optim.SGD(param_groups(model, args.weight_decay), lr=args.lr,
                                momentum=0.9, nesterov=True)
    total = int(args.steps or 10**9)
    plan = WarmupCosine(args.warmup_steps, total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, plan)
    hardness = np.full(len(found), 0.5, np.float32)
    step, best, train_s = 0, -2.0, 0.0
    rng = np.random.default_rng(args.seed + 1)
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        step, best = int(resume["step"]), float(resume["best_val_cos"])
        total = int(resume["total_steps"])
        plan.total_steps = total
        hardness = resume["hardness"].numpy()
        history, train_s = list(resume["history"]), float(resume["train_seconds"])
        rng = np.random.default_rng([args.seed + 1, step])
        print(f"resumed at step {step} of {total}", flush=True)
    budget = args.minutes * 60.0
    fitted = args.steps is not None or resume is not None
    t_loop, steps_here = time.monotonic(), 0
    loss_sum = cos_sum = 0.0
    since_record = 0  # steps summed in loss_sum / cos_sum
    batch = args.batch_size
    hard = round(batch * args.hard_fraction)
    record: dict[str, Any] = {}
    while step < total:
        weights = hardness[train_faces] + 1e-3
        pick = np.concatenate([
            rng.choice(train_faces, batch - hard, replace=False),
            rng.choice(train_faces, hard, replace=False, p=weights / weights.sum())])
        done = data.done[pick]
        views = np.array([rng.choice(np.flatnonzero(row)) for row in done])
        x = normalise_uint8(torch.from_numpy(data.render(pick, views)))
        target = torch.from_numpy(centred(data.vectors[pick, views], mean))
        output = model(x)
        loss, cos = distill_loss(output, target, args.relation_weight)
        if anchor is not None:
            with torch.no_grad():
                anchored = F.normalize(anchor(x), dim=1)
            loss = loss + args.anchor_weight * distill_loss(output, anchored,
                                                            args.relation_weight)[0]
        with torch.no_grad():
            per_face = 1.0 - (F.normalize(output.detach(), dim=1) * target).sum(1)
        hardness[pick] = 0.7 * hardness[pick] + 0.3 * per_face.numpy()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        steps_here += 1
        since_record += 1
        loss_sum += float(loss.detach())
        cos_sum += float(cos.detach())
        elapsed = time.monotonic() - t_start
        if not fitted and steps_here == 30:
            per_step = (time.monotonic() - t_loop) / steps_here
            total = step + int((budget - elapsed) / per_step * 0.93)
            plan.total_steps = total
            fitted = True
            print(f"schedule: {total} steps ({per_step:.2f} s a step, {batch / per_step:.0f} "
                  "images/s)", flush=True)
        if step % args.every == 0 or step >= total or elapsed > budget:
            train_s += time.monotonic() - t_loop
            t_loop = time.monotonic()
            data.refresh()
            train_faces, val_faces = usable()
            metrics = held_out_cosine(model, data, val_faces, mean)
            set_train_mode(model, args.freeze_bn)
            n_every = max(1, since_record)
            record = {"step": step, "total_steps": total, "lr": optimizer.param_groups[0]["lr"],
                      "train_loss": loss_sum / n_every, "train_cos": cos_sum / n_every,
                      **metrics, "views_done": int(data.done.sum()),
                      "train_seconds": round(train_s, 1), "elapsed_s": round(elapsed, 1)}
            loss_sum = cos_sum = 0.0
            since_record = 0
            state = resume_state(model, optimizer, scheduler, step, total, args,
                                 target_mean=torch.from_numpy(mean),
                                 hardness=torch.from_numpy(hardness), anchor=anchor_state,
                                 train_seconds=train_s)
            best = save_progress(out, record, history, state, best)
            if elapsed > budget:
                print(f"budget: stopping at step {step} of {total}", flush=True)
                break
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    record = train(args)
    print(f"done: {json.dumps(record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
