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
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceguard.training.model import INPUT_SIZE, LiteMobileFaceNet

CHECKPOINT_FORMAT = 1


class DataError(ValueError):
    """The data directory does not follow the contract."""


def _load_tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


# ----------------------------------------------------------------------------- data


def _jpeg_decoder() -> Callable[[np.ndarray], np.ndarray]:
    """Return a function decoding JPEG bytes (uint8 1-D) to uint8 (H, W, 3) RGB."""
    try:
        import cv2

        def decode_cv2(buf: np.ndarray) -> np.ndarray:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if img is None:
                raise DataError("a JPEG in crops_jpg.npz does not decode")
            return np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))

        return decode_cv2
    except ImportError:
        pass
    try:
        from torchvision.io import ImageReadMode, decode_jpeg

        def decode_tv(buf: np.ndarray) -> np.ndarray:
            img = decode_jpeg(torch.from_numpy(buf.copy()), mode=ImageReadMode.RGB)
            return img.permute(1, 2, 0).contiguous().numpy()

        return decode_tv
    except ImportError:
        pass
    try:
        from PIL import Image

        def decode_pil(buf: np.ndarray) -> np.ndarray:
            with Image.open(io.BytesIO(buf.tobytes())) as im:
                return np.asarray(im.convert("RGB"))

        return decode_pil
    except ImportError:
        pass
    raise DataError("crops_jpg.npz needs cv2, torchvision or PIL to decode; none is installed")


def decode_jpeg_crops(data: np.ndarray, offsets: np.ndarray, workers: int = 4) -> np.ndarray:
    """Decode concatenated JPEGs (see faceguard.training.packing) to uint8 (N, H, W, 3)."""
    n = len(offsets) - 1
    if n <= 0:
        raise DataError("crops_jpg.npz holds no images")
    if offsets[0] != 0 or offsets[-1] != data.size or np.any(np.diff(offsets) <= 0):
        raise DataError("crops_jpg.npz: offsets do not cut data into non-empty pieces")
    decode = _jpeg_decoder()
    first = decode(data[offsets[0] : offsets[1]])
    out = np.empty((n, *first.shape), dtype=np.uint8)
    out[0] = first

    def work(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            img = decode(data[offsets[i] : offsets[i + 1]])
            if img.shape != first.shape:
                raise DataError(f"crops_jpg.npz: image {i} is {img.shape}, not {first.shape}")
            out[i] = img

    workers = max(1, workers)
    bounds = np.linspace(1, n, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(work, int(a), int(b)) for a, b in itertools.pairwise(bounds)]:
            f.result()
    return out


@dataclass
class FaceData:
    """Crops and raw teacher targets of the usable rows."""

    crops: np.ndarray  # uint8 (N, 96, 96, 3) RGB
    targets: np.ndarray  # float32 (N, D)
    targets_mirrored: np.ndarray | None  # float32 (N, D) or None


def load_crops(data_dir: Path, workers: int = 4) -> np.ndarray:
    """uint8 (N, 96, 96, 3) RGB crops from crops.npy (memory-mapped) or crops_jpg.npz."""
    crops: np.ndarray
    if (data_dir / "crops.npy").exists():
        crops = np.load(data_dir / "crops.npy", mmap_mode="r")
    elif (data_dir / "crops_jpg.npz").exists():
        with np.load(data_dir / "crops_jpg.npz") as z:
            crops = decode_jpeg_crops(
                np.ascontiguousarray(z["data"], dtype=np.uint8),
                np.asarray(z["offsets"], dtype=np.int64),
                workers,
            )
    else:
        raise DataError(f"{data_dir} has neither crops.npy nor crops_jpg.npz")
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (
        INPUT_SIZE,
        INPUT_SIZE,
        3,
    ):
        raise DataError(f"crops must be uint8 (N, 96, 96, 3), got {crops.dtype} {crops.shape}")
    return crops


def load_data(data_dir: Path, workers: int = 4) -> FaceData:
    """Load and check a data directory; keep valid rows with finite, non-zero targets."""
    crops = load_crops(data_dir, workers)
    n = crops.shape[0]
    if not (data_dir / "targets.npy").exists():
        raise DataError(f"{data_dir} has no targets.npy")
    targets = np.load(data_dir / "targets.npy")
    mirrored_path = data_dir / "targets_mirrored.npy"
    mirrored = np.load(mirrored_path) if mirrored_path.exists() else None
    for name, arr in (("targets", targets), ("targets_mirrored", mirrored)):
        if arr is not None and (arr.ndim != 2 or arr.shape[0] != n):
            raise DataError(f"{name}.npy must be (N={n}, D), got {arr.shape}")
    if mirrored is not None and mirrored.shape != targets.shape:
        raise DataError("targets.npy and targets_mirrored.npy differ in shape")
    keep = np.ones(n, dtype=bool)
    if (data_dir / "valid.npy").exists():
        valid = np.load(data_dir / "valid.npy")
        if valid.shape != (n,):
            raise DataError(f"valid.npy must be (N={n},), got {valid.shape}")
        keep &= valid.astype(bool)
    for arr in (targets, mirrored):
        if arr is not None:
            a = arr.astype(np.float32)
            keep &= np.isfinite(a).all(axis=1) & (np.linalg.norm(a, axis=1) > 1e-6)
    if keep.sum() < 2:
        raise DataError(f"only {int(keep.sum())} usable rows in {data_dir}")
    idx = np.flatnonzero(keep)
    return FaceData(
        crops=np.ascontiguousarray(crops[idx]),
        targets=targets[idx].astype(np.float32),
        targets_mirrored=None if mirrored is None else mirrored[idx].astype(np.float32),
    )


def split_indices(n: int, seed: int, fraction: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) row indices; at least one held-out row."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * fraction)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _l2n(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centre_targets(
    targets: np.ndarray, mirrored: np.ndarray | None, train_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Normalise, subtract the training split's mean normalised target, renormalise."""
    t = _l2n(targets.astype(np.float64))
    pool = t[train_idx]
    if mirrored is not None:
        pool = np.concatenate([pool, _l2n(mirrored[train_idx].astype(np.float64))])
    mean = pool.mean(axis=0).astype(np.float32)
    return apply_centre(targets, mean), apply_centre(mirrored, mean), mean


def apply_centre(targets: np.ndarray | None, mean: np.ndarray) -> Any:
    """normalise(normalise(targets) - mean) as float32 (None stays None)."""
    if targets is None:
        return None
    t = _l2n(targets.astype(np.float64))
    return _l2n(t - mean.astype(np.float64)).astype(np.float32)


# ----------------------------------------------------------------------------- augmentation


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
        x = ((x.clamp(0.0, 255.0) - 127.5) / 128.0).contiguous(memory_format=torch.channels_last)
        return x, flip

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


def normalise_uint8(x_u8: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC RGB -> float32 NCHW (x - 127.5) / 128, channels_last (the model's input)."""
    x = (x_u8.permute(0, 3, 1, 2).float() - 127.5) / 128.0
    return x.contiguous(memory_format=torch.channels_last)


# ----------------------------------------------------------------------------- training


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


def _atomic_write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(obj: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file, then rename over ``path``."""
    _atomic_write_bytes(path, lambda f: torch.save(obj, f))


def save_json(obj: Any, path: Path) -> None:
    """Write JSON atomically."""
    _atomic_write_bytes(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by this script (tensors and plain Python values only)."""
    ckpt: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a distill checkpoint (format {ckpt.get('format')})")
    return ckpt


def build_model_from_checkpoint(ckpt: dict[str, Any]) -> LiteMobileFaceNet:
    """Rebuild the model a checkpoint describes and load its weights (on CPU)."""
    cfg = ckpt["model_config"]
    model = LiteMobileFaceNet(cfg["embedding_size"], cfg["repeats"])
    model.load_state_dict({k: v.cpu() for k, v in ckpt["model"].items()})
    return model


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
            "format": CHECKPOINT_FORMAT,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "model_config": {"embedding_size": model.embedding_size,
                             "repeats": list(model.repeats)},
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
            save_checkpoint({k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler")},
                            best_path)
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
