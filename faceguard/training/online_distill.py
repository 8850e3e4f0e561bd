"""Online distillation: SFace labels every augmented view inside the training loop (GPU or CPU).

The CPU path (:mod:`faceguard.training.finetune_views`) learns from a cache of a few teacher
vectors per face. Here the teacher runs on every view the student sees, so the number of
distinct (view, target) pairs is limited by time, not by a cache: each step draws a batch of
faces (half of it in proportion to the face's recent 1 - cos), makes one augmented 112x112
view of each on the device (:class:`faceguard.training.gpu_views.GpuViews`: geometry, colour,
light, blur, low resolution, noise, JPEG, occlusion, two faces mixed), labels it with SFace
(:func:`faceguard.training.sface_torch.load_sface_torch`, fp32 weights, bf16 autocast on
CUDA), centres the label by the mean of the clean views' SFace vectors (the pilot's 17-point
lesson) and trains the student on the 96x96 area resize of the same pixels with
(1 - cos) + relation_weight x MSE of the batch's cosine matrices.

The student starts from the shipped ONNX (``--init``; rotated onto the centred SFace space,
BatchNorm calibrated, as in ``finetune_views``) or from random weights (``--init scratch``).
Resumable: rerunning the same command continues from ``OUT/last.pt``; SIGTERM (a timeout)
ends a run after its current step with a held-out check and a checkpoint. Run::

    python -m faceguard.training.online_distill --bundle .device/online --out OUT \\
        --device cuda --minutes 7

``tools/device_online.sh`` is the prepared command for a lent GPU (two recipes side by side).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceguard.errors import FaceGuardError
from faceguard.training.checkpoints import (
    build_model_from_checkpoint,
    load_checkpoint,
    resume_state,
    save_progress,
)
from faceguard.training.distill_data import split_indices
from faceguard.training.finetune_views import set_train_mode
from faceguard.training.gpu_views import GpuViews, student_input
from faceguard.training.model import LiteMobileFaceNet
from faceguard.training.onnx_student import (
    calibrate_batchnorm,
    procrustes,
    rotate_output,
    student_from_onnx,
)
from faceguard.training.optimisation import WarmupCosine, distill_loss, param_groups

Teacher = Callable[[torch.Tensor], torch.Tensor]
UNTIMED_STEPS = 5  # first steps of a run, not timed (CUDA warm-up, cuDNN's kernel search)
FIT_STEPS = 30  # steps timed, after those, before the schedule is fitted to the budget
SCRATCH = "scratch"


def bf16_autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bf16 autocast on ``device`` where ``enabled`` (on CUDA in training; the tests also
    switch it on for the CPU, which has the same bf16 autocast, to run that path)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


class OnlineTargets:
    """Centred, L2-normalised teacher vectors of 112x112 views (float 0..255 NCHW)."""

    def __init__(self, teacher: nn.Module, device: torch.device, chunk: int = 256,
                 mixed_precision: bool | None = None) -> None:
        """``mixed_precision``: the teacher under bf16 autocast (default: on CUDA only)."""
        self.teacher = teacher.to(device).eval().requires_grad_(False)
        self.device = device
        self.chunk = chunk
        self.mixed_precision = (device.type == "cuda" if mixed_precision is None
                                else mixed_precision)
        self.mean: torch.Tensor | None = None

    @torch.no_grad()
    def raw(self, views: torch.Tensor) -> torch.Tensor:
        """Unit teacher vectors (no centring, float32), computed in chunks."""
        out = []
        for start in range(0, len(views), self.chunk):
            part = views[start:start + self.chunk]
            with bf16_autocast(self.device, self.mixed_precision):
                vectors = self.teacher(part)
            out.append(F.normalize(vectors.float(), dim=1))
        return torch.cat(out)

    def fit_mean(self, clean: torch.Tensor) -> torch.Tensor:
        """The centring mean from the clean views of (a sample of) the training faces."""
        self.mean = self.raw(clean).mean(dim=0)
        return self.mean

    def __call__(self, views: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            raise RuntimeError("fit_mean first")
        return F.normalize(self.raw(views) - self.mean, dim=1)


@torch.no_grad()
def student_vectors(model: nn.Module, views: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Unit student vectors of 112x112 views (eval mode)."""
    model.eval()
    return torch.cat([F.normalize(model(student_input(views[i:i + chunk])).float(), dim=1)
                      for i in range(0, len(views), chunk)])


def mean_cosine(model: nn.Module, views: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean cosine between the student's vectors of ``views`` and ``targets``."""
    return float((student_vectors(model, views) * targets).sum(1).mean())


class OnlineStep:
    """One training step: a batch of faces (part drawn in proportion to their recent
    1 - cos), one view each (some clean, the rest augmented), the teacher's labels and one
    optimiser update of the student; every random draw comes from ``generator``."""

    def __init__(self, gpu_views: GpuViews, targets: OnlineTargets, train_faces: torch.Tensor,
                 hardness: torch.Tensor, generator: torch.Generator, batch: int,
                 hard_fraction: float, clean_fraction: float, relation_weight: float) -> None:
        """``hardness``: (faces,) recent 1 - cos of every face, updated in place."""
        self.gpu_views = gpu_views
        self.targets = targets
        self.train_faces = train_faces
        self.hardness = hardness
        self.generator = generator
        self.batch = batch
        self.hard = round(batch * hard_fraction)
        self.clean_count = round(batch * clean_fraction)
        self.relation_weight = relation_weight

    def pick(self) -> torch.Tensor:
        """(batch,) face indices: uniform draws, then draws weighted by hardness."""
        faces, device = self.train_faces, self.train_faces.device
        uniform = faces[torch.randint(len(faces), (self.batch - self.hard,),
                                      generator=self.generator, device=device)]
        weights = self.hardness[faces] + 1e-3
        hardest = faces[torch.multinomial(weights, self.hard, replacement=True,
                                          generator=self.generator)]
        return torch.cat([uniform, hardest])

    def __call__(self, model: nn.Module,
                 optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the step; (loss, mean cosine), detached, on the device."""
        pick = self.pick()
        views = torch.cat([self.gpu_views.clean(pick[:self.clean_count]),
                           self.gpu_views.augmented(pick[self.clean_count:], self.generator)])
        target = self.targets(views)
        x = student_input(views)  # float32, outside autocast: the exact area resize
        with bf16_autocast(self.targets.device, self.targets.mixed_precision):
            output = model(x)
        loss, cos = distill_loss(output.float(), target, self.relation_weight)
        with torch.no_grad():
            per_face = 1.0 - (F.normalize(output.detach().float(), dim=1) * target).sum(1)
            self.hardness[pick] = 0.7 * self.hardness[pick] + 0.3 * per_face
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach(), cos.detach()


def initial_student(init: str, gpu_views: GpuViews, targets: OnlineTargets,
                    fit_faces: torch.Tensor) -> tuple[LiteMobileFaceNet, dict[str, Any]]:
    """The shipped student rotated onto the centred teacher space, or a fresh network."""
    if init == SCRATCH:
        return LiteMobileFaceNet(), {"init": SCRATCH}
    model = student_from_onnx(Path(init)).to(targets.device)
    clean = gpu_views.clean(fit_faces)
    before = student_vectors(model, clean).cpu().numpy()
    goal = targets(clean).cpu().numpy()
    rotate_output(model, procrustes(before, goal))
    calibrate_batchnorm(model, student_input(clean[:512]))
    after = student_vectors(model, clean).cpu().numpy()
    return model, {"init": init, "procrustes_faces": len(fit_faces),
                   "fit_cos_rotated": float((after * goal).sum(1).mean())}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m faceguard.training.online_distill",
                                description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True,
                   help="canvas bundle (python -m faceguard.training.canvas_bundle)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--init", default="resources/models/lite_mobilefacenet_96.onnx",
                   help=f"the student to start from (ONNX), or '{SCRATCH}'")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--minutes", type=float, default=7.0,
                   help="wall-clock budget; the schedule is fitted to it on the first steps")
    p.add_argument("--steps", type=int, default=None, help="fixed schedule length instead")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--relation-weight", type=float, default=1.0)
    p.add_argument("--hard-fraction", type=float, default=0.5,
                   help="part of a batch drawn in proportion to the face's 1 - cos")
    p.add_argument("--clean-fraction", type=float, default=0.15,
                   help="part of a batch shown as the clean aligned crop")
    p.add_argument("--mix", type=float, default=0.1, help="probability of mixing two faces")
    p.add_argument("--mean-faces", type=int, default=4096,
                   help="training faces whose clean views give the centring mean")
    p.add_argument("--every-seconds", type=float, default=60.0,
                   help="held-out check and checkpoint at least this often")
    p.add_argument("--val-fraction", type=float, default=0.02)
    p.add_argument("--train-bn", dest="freeze_bn", action="store_false",
                   help="BatchNorm in train mode (default for --init scratch; a fine-tune "
                        "keeps the stored statistics unless this is given)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's own)")
    return p.parse_args(argv)


def load_bundle_canvases(bundle: Path) -> tuple[np.ndarray, Path]:
    """Canvases (found faces only, uint8 N x 144 x 144 x 3) and the teacher file of a bundle."""
    from faceguard.training.canvas_bundle import load_canvas_bundle

    loaded = load_canvas_bundle(bundle)
    return loaded.canvases, loaded.teacher_path


def train(args: argparse.Namespace, teacher: nn.Module | None = None,
          canvases: np.ndarray | None = None,
          stop: threading.Event | None = None) -> dict[str, Any]:
    """Run or resume; returns the last record. ``teacher``/``canvases`` default to the bundle's.

    ``stop``, once set (``main`` sets it on SIGTERM), ends the run after the current step
    with a held-out check and a checkpoint, as the budget does.
    """
    t_start = time.monotonic()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        # fixed batch shapes: pick the fastest kernels. float32 matrix products stay exact
        # (torch's default, no TF32): the views' resizes, JPEG and geometry are matrix
        # products; the networks run under bf16 autocast, and cuDNN's float32 convolutions
        # (the held-out checks) use TF32 by torch's default.
        torch.backends.cudnn.benchmark = True
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    last_path = out / "last.pt"
    if canvases is None or teacher is None:
        from faceguard.training.sface_torch import load_sface_torch

        bundle_canvases, teacher_path = load_bundle_canvases(args.bundle)
        canvases = bundle_canvases if canvases is None else canvases
        teacher = teacher if teacher is not None else load_sface_torch(teacher_path)
    print(f"data: {len(canvases)} canvases, device {device}, "
          f"{time.monotonic() - t_start:.1f} s to load", flush=True)
    gpu_views = GpuViews(torch.from_numpy(canvases).to(device), mix=args.mix)
    targets = OnlineTargets(teacher, device)
    train_faces_np, val_faces_np = split_indices(len(canvases), args.seed, args.val_fraction)
    train_faces = torch.from_numpy(train_faces_np).to(device)
    val_faces = torch.from_numpy(val_faces_np).to(device)
    generator = torch.Generator(device=device)
    generator.manual_seed(args.seed)
    pick_mean = train_faces[torch.randperm(len(train_faces), generator=generator,
                                           device=device)[:args.mean_faces]]
    resume = load_checkpoint(last_path, device) if last_path.exists() else None
    history: list[dict[str, Any]] = []
    if resume is None:
        targets.fit_mean(gpu_views.clean(pick_mean))
        model, info = initial_student(args.init, gpu_views, targets, pick_mean[:3000])
    else:
        targets.mean = resume["target_mean"].to(device)
        model = build_model_from_checkpoint(resume)
        info = {"resumed_at": int(resume["step"])}
    model = model.to(device)
    val_clean = gpu_views.clean(val_faces)
    val_targets = targets(val_clean)
    freeze_bn = args.freeze_bn and args.init != SCRATCH
    start = {"val_cos": mean_cosine(model, val_clean, val_targets)}
    print(f"start: {json.dumps({**info, **start})}", flush=True)
    optimizer = torch.optim.SGD(param_groups(model, args.weight_decay), lr=args.lr,
                                momentum=0.9, nesterov=True)
    total = int(args.steps or 10**9)
    plan = WarmupCosine(args.warmup_steps, total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, plan)
    hardness = torch.full((len(canvases),), 0.5, device=device)
    step, best, train_s, views_seen = 0, -2.0, 0.0, 0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        step, best = int(resume["step"]), float(resume["best_val_cos"])
        # a resumed run keeps its schedule unless --steps sets a new length
        total = plan.total_steps = int(args.steps or resume["total_steps"])
        hardness = resume["hardness"].to(device)
        history, train_s = list(resume["history"]), float(resume["train_seconds"])
        views_seen = int(resume.get("views_seen", 0))
        generator.manual_seed(args.seed * 1_000_003 + step)
    else:
        history.append({"step": 0, **info, **start})
    budget = args.minutes * 60.0
    fitted = args.steps is not None or resume is not None
    batch = args.batch_size
    train_step = OnlineStep(gpu_views, targets, train_faces, hardness, generator, batch,
                            args.hard_fraction, args.clean_fraction, args.relation_weight)
    set_train_mode(model, freeze_bn)
    print(f"setup: {time.monotonic() - t_start:.1f} s", flush=True)
    # t_fit: the schedule's rate, checks included; restarted once after the untimed steps
    t_loop = t_check = t_fit = time.monotonic()
    steps_here, since, loss_sum, cos_sum = 0, 0, 0.0, 0.0
    record: dict[str, Any] = {}
    while step < total:
        loss, cos = train_step(model, optimizer)
        scheduler.step()
        step += 1
        steps_here += 1
        since += 1
        views_seen += batch
        loss_sum += float(loss)
        cos_sum += float(cos)
        elapsed = time.monotonic() - t_start
        if steps_here == UNTIMED_STEPS:
            t_fit = time.monotonic()
        if not fitted and steps_here == UNTIMED_STEPS + FIT_STEPS:
            per_step = (time.monotonic() - t_fit) / FIT_STEPS
            total = plan.total_steps = step + int((budget - elapsed) / per_step * 0.93)
            fitted = True
            print(f"schedule: {total} steps ({per_step * 1000:.0f} ms a step, "
                  f"{batch / per_step:.0f} views/s)", flush=True)
        due = time.monotonic() - t_check >= args.every_seconds
        stopped = stop is not None and stop.is_set()
        if due or step >= total or elapsed > budget or stopped:
            train_s += time.monotonic() - t_loop
            val_cos = mean_cosine(model, val_clean, val_targets)
            set_train_mode(model, freeze_bn)
            record = {"step": step, "total_steps": total, "lr": optimizer.param_groups[0]["lr"],
                      "train_loss": loss_sum / max(1, since), "train_cos": cos_sum / max(1, since),
                      "val_cos": val_cos, "views_seen": views_seen,
                      "passes": round(views_seen / len(train_faces), 1),
                      "train_seconds": round(train_s, 1), "elapsed_s": round(elapsed, 1)}
            loss_sum = cos_sum = 0.0
            since = 0
            assert targets.mean is not None
            state = resume_state(model, optimizer, scheduler, step, total, args,
                                 target_mean=targets.mean.cpu(), hardness=hardness.cpu(),
                                 train_seconds=train_s, views_seen=views_seen)
            best = save_progress(out, record, history, state, best)
            t_loop = t_check = time.monotonic()
            if elapsed > budget or stopped:
                print(f"{'signal' if stopped else 'budget'}: stopping at step {step} of {total}",
                      flush=True)
                break
    if device.type == "cuda":
        print(f"cuda: peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB allocated",
              flush=True)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    fresh = not (args.out / "last.pt").exists()
    if fresh and args.init != SCRATCH and not Path(args.init).is_file():
        print(f"error: the student to start from, {args.init}, does not exist", file=sys.stderr)
        return 2  # before loading the bundle: on a lent GPU every minute counts
    stop = threading.Event()  # SIGTERM (timeout, a device run's limit): checkpoint, then stop
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        record = train(args, stop=stop)
    except (FaceGuardError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"done: {json.dumps(record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
