"""Narrow the shipped embedder's bottlenecks: fewer mult-adds, the same function.

Issue 15 asks for an embedder 30x faster than dlib's ResNet on an AVX2 CPU, where the float32
network already runs near the CPU's matrix-product peak: the lever left is fewer mult-adds.
This keeps the network (same input, output, layout and activations) and removes hidden
channels of its inverted bottlenecks, where most of its work is:

1. Each bottleneck, in order, on clean UTKFace views: its hidden channels are ranked by what
   they bring to the block's output (energy of the channel x squared norm of its column in
   the projection), the weakest go, and the projection is refitted by ridge least squares to
   the original block's output, computed from the narrowed network's own input so that the
   errors of earlier blocks are corrected as it goes (the channel pruning of He, Zhang & Sun
   2017, data-driven and closed form).
2. The narrow network is trained to give the original network's embeddings (cosine) and
   block outputs (relative squared error) on augmented views of the same faces (the online
   views of :mod:`faceguard.training.gpu_views`), resumable, held-out faces checked.

CPU run (canvases from the teacher-views cache or a canvas bundle; never LFW)::

    python -m faceguard.training.prune --keep 0.75 --minutes 45 \\
        --canvases ~/.cache/faceguard-train/sface_views --out ~/.cache/faceguard-train/prune75

It writes ``best.pt`` / ``last.pt`` / ``history.json`` and ``student.onnx`` (exported, checked
against PyTorch); the product takes the file through ``FACEGUARD_EMBEDDER``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
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
from faceguard.training.model import Bottleneck, ConvBN, LiteMobileFaceNet
from faceguard.training.onnx_student import student_from_onnx
from faceguard.training.optimisation import WarmupCosine
from faceguard.vision.onnx_model import default_model_path

WIDTH_STEP = 16  # hidden widths stay multiples of 16: onnxruntime's blocked CPU layout


def narrowed_width(hidden: int, keep: float) -> int:
    """``keep`` of ``hidden`` channels, rounded to a multiple of :data:`WIDTH_STEP`."""
    return max(WIDTH_STEP, round(hidden * keep / WIDTH_STEP) * WIDTH_STEP)


def bottlenecks(model: LiteMobileFaceNet) -> list[Bottleneck]:
    """The model's bottlenecks in forward order."""
    return [m for m in model.modules() if isinstance(m, Bottleneck)]


def _layers(block: Bottleneck) -> tuple[ConvBN, ConvBN, ConvBN]:
    """A bottleneck's expand, depthwise and projection layers."""
    expand, depthwise, project = block.body
    assert isinstance(expand, ConvBN) and isinstance(depthwise, ConvBN)
    assert isinstance(project, ConvBN)
    return expand, depthwise, project


def _parts(layer: ConvBN) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """A conv + BN layer's convolution and BatchNorm."""
    conv, bn = layer[0], layer[1]
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    return conv, bn


def _folded(layer: ConvBN) -> tuple[torch.Tensor, torch.Tensor]:
    """A conv + eval-mode BN as one 2-d weight (out, in) and bias (1x1 convs only)."""
    conv, bn = _parts(layer)
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.weight[:, :, 0, 0] * scale[:, None]
    return weight, bn.bias - bn.running_mean * scale


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N*H*W, C), float64."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]).double()


def _copy_channels(source: ConvBN, target: ConvBN, rows: torch.Tensor) -> None:
    """Copy output channels ``rows`` of a conv + BN (all its input channels)."""
    (source_conv, source_bn), (target_conv, target_bn) = _parts(source), _parts(target)
    with torch.no_grad():
        target_conv.weight.copy_(source_conv.weight[rows])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(target_bn, name).copy_(getattr(source_bn, name)[rows])


def narrow_block(block: Bottleneck, x_narrow: torch.Tensor, target: torch.Tensor, width: int,
                 ridge: float = 1e-3) -> tuple[Bottleneck, torch.Tensor]:
    """``block`` with ``width`` hidden channels and its projection refitted so that, from
    ``x_narrow`` (the narrowed network's input to it), its body gives ``target`` (the original
    body's output); returns the block and the chosen channels."""
    expand, depthwise, project = _layers(block)
    with torch.no_grad():
        hidden = depthwise(expand(x_narrow))
        weight, _ = _folded(project)
        energy = hidden.pow(2).mean(dim=(0, 2, 3))
        importance = energy * weight.pow(2).sum(dim=0)
        keep = torch.sort(torch.argsort(importance, descending=True)[:width]).values
        h = _pixels(hidden[:, keep])
        h = torch.cat([h, torch.ones(len(h), 1, dtype=h.dtype, device=h.device)], dim=1)
        t = _pixels(target)
        gram = h.T @ h
        gram += ridge * torch.diag(gram).mean() * torch.eye(len(gram), dtype=gram.dtype,
                                                            device=gram.device)
        solution = torch.linalg.solve(gram, h.T @ t)  # (width + 1, out)
    in_ch, out_ch = _parts(expand)[0].in_channels, _parts(project)[0].out_channels
    stride = _parts(depthwise)[0].stride[0]
    eca = not isinstance(block.eca, nn.Identity)
    with torch.device(x_narrow.device):  # built where the data is
        narrow = Bottleneck(in_ch, out_ch, stride, 1, eca, hidden=width).eval()
    narrow.use_shortcut = block.use_shortcut
    new_expand, new_depthwise, new_project = _layers(narrow)
    _copy_channels(expand, new_expand, keep)
    _copy_channels(depthwise, new_depthwise, keep)
    if eca:
        narrow.eca.load_state_dict(block.eca.state_dict())
    conv, bn = _parts(new_project)
    assert bn.running_var is not None and bn.running_mean is not None
    with torch.no_grad():
        conv.weight.copy_(solution[:-1].T.float()[:, :, None, None])
        bn.weight.fill_(1.0)
        bn.bias.copy_(solution[-1].float())
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
    return narrow, keep


def narrowed_model(original: LiteMobileFaceNet, x: torch.Tensor, keep: float,
                   ridge: float = 1e-3) -> LiteMobileFaceNet:
    """A copy of ``original`` (eval mode) with every bottleneck narrowed to ``keep`` of its
    hidden channels, fitted block by block on the model inputs ``x``."""
    original = original.eval()
    blocks = bottlenecks(original)
    widths = [narrowed_width(_parts(_layers(b)[0])[0].out_channels, keep) for b in blocks]
    with torch.device(x.device):
        model = LiteMobileFaceNet(original.embedding_size, original.repeats, widths).eval()
    model.load_state_dict({k: v for k, v in original.state_dict().items()
                           if k.startswith(("stem.", "conv_sep.", "gdconv.", "linear.", "bn."))},
                          strict=False)
    with torch.no_grad():
        x_original = original.stem(x)
        x_narrow = x_original.clone()
        for group_index, group in enumerate(original.groups):
            assert isinstance(group, nn.Sequential)
            for block_index, block in enumerate(group):
                assert isinstance(block, Bottleneck)
                target = block.body(x_original)
                narrow, _ = narrow_block(block, x_narrow, target, widths.pop(0), ridge)
                narrowed_group = model.groups[group_index]
                assert isinstance(narrowed_group, nn.Sequential)
                narrowed_group[block_index] = narrow
                x_original = block(x_original)
                x_narrow = narrow(x_narrow)
    return model


class BlockOutputs:
    """Forward hooks keeping every bottleneck's output of the last forward pass."""

    def __init__(self, model: LiteMobileFaceNet) -> None:
        self.outputs: list[torch.Tensor] = []
        for block in bottlenecks(model):
            block.register_forward_hook(self._keep)

    def _keep(self, _module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:
        self.outputs.append(out)

    def take(self) -> list[torch.Tensor]:
        """The outputs since the last call, in forward order."""
        outputs, self.outputs = self.outputs, []
        return outputs


def mimic_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor,
               student_blocks: Sequence[torch.Tensor], teacher_blocks: Sequence[torch.Tensor],
               block_weight: float) -> torch.Tensor:
    """1 - cosine of the embeddings + ``block_weight`` x the mean relative squared error of
    the block outputs."""
    loss = (1.0 - F.cosine_similarity(student_emb, teacher_emb, dim=1)).mean()
    if block_weight and student_blocks:
        errors = [F.mse_loss(s, t) / t.pow(2).mean().clamp_min(1e-8)
                  for s, t in zip(student_blocks, teacher_blocks, strict=True)]
        loss = loss + block_weight * torch.stack(errors).mean()
    return loss


def held_out_cosine(student: nn.Module, teacher: nn.Module, x: torch.Tensor,
                    chunk: int = 256) -> float:
    """Mean cosine between the two networks' embeddings of ``x``."""
    student.eval()
    values = []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            part = x[start:start + chunk]
            values.append(F.cosine_similarity(student(part), teacher(part), dim=1))
    return float(torch.cat(values).mean())


def load_canvases(args: argparse.Namespace) -> np.ndarray:
    """uint8 (N, 144, 144, 3) canvases of found faces: a cache folder or a canvas bundle."""
    if args.canvases is not None:
        canvases = np.load(args.canvases / "canvases.npy", mmap_mode="r")
        found = np.load(args.canvases / "found.npy")
        return np.ascontiguousarray(canvases[np.flatnonzero(found)])
    from faceguard.training.canvas_bundle import load_canvas_bundle

    return load_canvas_bundle(args.bundle).canvases


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m faceguard.training.prune",
                                     description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--canvases", type=Path, help="teacher-views cache folder "
                        "(canvases.npy, found.npy)")
    source.add_argument("--bundle", type=Path, help="canvas bundle folder")
    parser.add_argument("--init", type=Path, default=None,
                        help="the ONNX embedder to narrow (default: the shipped one)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep", type=float, default=0.75,
                        help="share of each bottleneck's hidden channels kept")
    parser.add_argument("--fit-faces", type=int, default=512,
                        help="clean views the closed-form refit uses")
    parser.add_argument("--minutes", type=float, default=30.0, help="training time budget")
    parser.add_argument("--steps", type=int, default=0, help="fixed step count (0: budget)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--block-weight", type=float, default=0.5)
    parser.add_argument("--check-every", type=int, default=100)
    parser.add_argument("--val-faces", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def train(args: argparse.Namespace, stop: threading.Event | None = None) -> dict[str, Any]:
    """Narrow (or resume), train against the original, export; returns the last record.

    ``stop``, once set (``main`` sets it on SIGTERM), ends the run after the current step
    with a held-out check, a checkpoint and the export."""
    if args.threads:
        torch.set_num_threads(args.threads)
    init = args.init or default_model_path("lite_mobilefacenet_96.onnx")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    teacher = student_from_onnx(init).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    canvases = load_canvases(args)
    views = GpuViews(torch.from_numpy(canvases).to(device))
    train_faces_np, val_faces_np = split_indices(len(canvases), args.seed,
                                                 args.val_faces / len(canvases))
    train_faces = torch.from_numpy(train_faces_np).to(device)
    val_x = student_input(views.clean(torch.from_numpy(val_faces_np).to(device)))
    generator = torch.Generator(device=device).manual_seed(args.seed)
    last_path = out / "last.pt"
    history: list[dict[str, Any]] = []
    step, best, total = 0, -2.0, args.steps
    resume = load_checkpoint(last_path) if last_path.exists() else None
    if resume is None:
        fit = train_faces[torch.randperm(len(train_faces), generator=generator,
                                         device=device)[:args.fit_faces]]
        started = time.monotonic()
        model = narrowed_model(teacher, student_input(views.clean(fit)), args.keep)
        record = {"step": 0, "fit_s": round(time.monotonic() - started, 1),
                  "val_cos": held_out_cosine(model, teacher, val_x)}
        print(json.dumps({"start": record, "hidden_widths": model.hidden_widths}), flush=True)
    else:
        model = build_model_from_checkpoint(resume).to(device)
        # a resumed run keeps its schedule unless --steps sets a new length
        step, best = int(resume["step"]), float(resume["best_val_cos"])
        total = int(args.steps or resume["total_steps"])
        history = list(resume["history"])
        generator.manual_seed(args.seed * 1_000_003 + step)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    plan = WarmupCosine(args.warmup_steps, total or 10**9)  # the budget fits it after 10 steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, plan)
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        plan.total_steps = total  # the loaded state holds the first run's length
    teacher_blocks, student_blocks = BlockOutputs(teacher), BlockOutputs(model)
    budget_s, started, timed = args.minutes * 60.0, time.monotonic(), 0
    stopped = False
    while (total == 0 or step < total) and not stopped:
        faces = train_faces[torch.randint(len(train_faces), (args.batch_size,),
                                          generator=generator, device=device)]
        x = student_input(views.augmented(faces, generator))
        with torch.no_grad():
            target = teacher(x)
        set_train_mode(model, freeze_bn=True)
        loss = mimic_loss(model(x), target, student_blocks.take(), teacher_blocks.take(),
                          args.block_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        timed += 1
        if total == 0 and timed == 10:  # fit the schedule to the budget from 10 timed steps
            per_step = (time.monotonic() - started) / timed
            total = step + max(1, int((budget_s - (time.monotonic() - started)) / per_step))
            plan.total_steps = total
            print(json.dumps({"per_step_s": round(per_step, 3), "total_steps": total}),
                  flush=True)
        stopped = stop is not None and stop.is_set()
        if step % args.check_every == 0 or step == total or stopped:
            if stopped:
                print(f"signal: stopping at step {step} of {total}", flush=True)
            record = {"step": step, "loss": round(loss.item(), 5),
                      "val_cos": round(held_out_cosine(model, teacher, val_x), 5),
                      "elapsed_s": round(time.monotonic() - started, 1)}
            teacher_blocks.take()
            student_blocks.take()
            ckpt = resume_state(model, optimizer, scheduler, step, total, args)
            best = save_progress(out, record, history, ckpt, best)
    best_model = build_model_from_checkpoint(load_checkpoint(out / "best.pt"))
    export_student(best_model.eval(), out / "student.onnx")
    return history[-1] if history else {}


def export_student(model: LiteMobileFaceNet, path: Path) -> None:
    """Export to ONNX in the product's CPU form and check it against PyTorch."""
    from faceguard.training.export import export_onnx, verify_onnx

    export_onnx(model, path)
    difference = verify_onnx(model, path)
    if difference > 1e-3:
        raise RuntimeError(f"{path}: ONNX differs from PyTorch by {difference:.2e}")
    print(json.dumps({"exported": str(path), "max_abs_difference": difference}), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit 2 with a message when the inputs are missing or damaged."""
    args = parse_args(argv)
    init = args.init or default_model_path("lite_mobilefacenet_96.onnx")
    needed = [init] if args.init is not None else []
    if args.canvases is not None:
        needed += [args.canvases / "canvases.npy", args.canvases / "found.npy"]
    missing = [str(p) for p in needed if not Path(p).is_file()]
    if missing and not (args.out / "last.pt").exists():
        print(f"error: missing {', '.join(missing)}", file=sys.stderr)
        return 2  # before loading the canvases: on a lent GPU every minute counts
    stop = threading.Event()  # SIGTERM (timeout, a device run's limit): checkpoint, then stop
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        train(args, stop)
    except (FaceGuardError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
