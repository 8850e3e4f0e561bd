"""Online distillation (issue 14): the loop runs on CPU end to end, writes resumable
checkpoints that export, and a resumed run continues where the first one stopped."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="online distillation needs the train extra (torch)")

from torch import Tensor, nn  # noqa: E402

from faceguard.training.checkpoints import build_model_from_checkpoint, load_checkpoint  # noqa: E402
from faceguard.training.online_distill import parse_args, train  # noqa: E402
from faceguard.training.views import CANVAS_SIZE  # noqa: E402
from faceguard.vision.onnx_model import default_model_path  # noqa: E402

FACES = 48


class SmallTeacher(nn.Module):
    """A fixed random network from 112x112 views to 128-d vectors: a stand-in for SFace that
    still depends on the pixels (so different views get different targets)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.features = nn.Sequential(nn.Conv2d(3, 16, 5, 4), nn.ReLU(), nn.Conv2d(16, 32, 3, 2),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Linear(32 * 16, 128)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x / 255.0 - 0.5))


def _canvases() -> np.ndarray:
    """Smooth synthetic canvases (never dataset images), each face a different pattern."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (FACES, 9, 9, 3)).astype(np.float32)
    up = np.stack([np.kron(img.transpose(2, 0, 1), np.ones((16, 16))).transpose(1, 2, 0)
                   for img in small])
    return up[:, :CANVAS_SIZE, :CANVAS_SIZE].clip(0, 255).astype(np.uint8)


def _args(out: Path, *extra: str) -> argparse.Namespace:
    return parse_args(["--bundle", str(out / "no-bundle"), "--out", str(out), "--device", "cpu",
                       "--batch-size", "16", "--warmup-steps", "2", "--mean-faces", "32",
                       "--val-fraction", "0.1", "--every-seconds", "1e9", "--threads", "2",
                       *extra])


def test_scratch_run_checkpoints_and_resumes(tmp_path: Path) -> None:
    canvases, teacher = _canvases(), SmallTeacher()
    first = train(_args(tmp_path, "--init", "scratch", "--steps", "8", "--lr", "0.05",
                        "--train-bn"), teacher, canvases)
    assert first["step"] == 8 and np.isfinite(first["val_cos"])
    assert first["views_seen"] == 8 * 16
    for name in ("last.pt", "best.pt", "history.json"):
        assert (tmp_path / name).exists()
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["step"] == 8 and "optimizer" in last
    assert "optimizer" not in load_checkpoint(tmp_path / "best.pt")
    build_model_from_checkpoint(last)  # loads into a fresh network
    # the same command with a longer fixed schedule continues from step 8
    second = train(_args(tmp_path, "--init", "scratch", "--steps", "12", "--lr", "0.05",
                         "--train-bn"), teacher, canvases)
    assert second["step"] == 12 and second["views_seen"] == 12 * 16
    history = json.loads((tmp_path / "history.json").read_text())
    assert [r["step"] for r in history] == [0, 8, 12]  # start, first run, resumed run


def test_the_student_moves_towards_the_teacher(tmp_path: Path) -> None:
    canvases, teacher = _canvases(), SmallTeacher()
    record = train(_args(tmp_path, "--init", "scratch", "--steps", "30", "--lr", "0.1",
                         "--train-bn", "--relation-weight", "0"), teacher, canvases)
    history = json.loads((tmp_path / "history.json").read_text())
    assert record["val_cos"] > history[0]["val_cos"] + 0.05


def test_fine_tune_starts_from_the_shipped_student_rotated(tmp_path: Path) -> None:
    canvases, teacher = _canvases(), SmallTeacher()
    train(_args(tmp_path, "--init", str(default_model_path("lite_mobilefacenet_96.onnx")),
                "--steps", "2", "--lr", "0.01"), teacher, canvases)
    start = json.loads((tmp_path / "history.json").read_text())[0]
    assert start["init"].endswith("lite_mobilefacenet_96.onnx")
    assert start["procrustes_faces"] > 0 and np.isfinite(start["fit_cos_rotated"])


def test_a_missing_start_student_is_refused_before_any_data_loads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from faceguard.training.online_distill import main

    code = main(["--bundle", str(tmp_path / "no-bundle"), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--init", str(tmp_path / "missing.onnx")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    code = main(["--bundle", str(tmp_path / "no-bundle"), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--init", "scratch"])
    assert code == 2 and "not a canvas bundle" in capsys.readouterr().err


def test_the_schedule_fitted_to_the_budget_counts_every_step_it_times(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """With frequent checks, the fitted schedule still ends inside the budget: the
    learning rate decays to its end instead of the budget cutting the run short. The loop's
    clock is a counter (each reading 0.05 s later), so the outcome does not depend on load."""
    from types import SimpleNamespace

    from faceguard.training import online_distill

    readings = iter(range(10**6))
    monkeypatch.setattr(online_distill, "time",
                        SimpleNamespace(monotonic=lambda: 0.05 * next(readings)))
    monkeypatch.setattr(online_distill, "FIT_STEPS", 8)
    canvases, teacher = _canvases(), SmallTeacher()
    args = _args(tmp_path, "--init", "scratch", "--minutes", "0.06", "--lr", "0.05",
                 "--train-bn", "--batch-size", "8")
    args.every_seconds = 0.3  # a held-out check and checkpoint every other step or so
    record = online_distill.train(args, teacher, canvases)
    out = capsys.readouterr().out
    assert "schedule:" in out and "budget: stopping" not in out
    assert record["step"] == record["total_steps"] > 8
