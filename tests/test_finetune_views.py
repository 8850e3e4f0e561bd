"""Fine-tuning the shipped student towards SFace (issue 14): the student rebuilt from its
ONNX file computes what the file computes, the Procrustes rotation and the BatchNorm
calibration change no cosine, and the view order of the teacher job changes no view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceguard.training.model import ConvBN, LiteMobileFaceNet  # noqa: E402
from faceguard.training.onnx_student import (  # noqa: E402
    calibrate_batchnorm,
    procrustes,
    rotate_output,
    student_from_onnx,
)
from faceguard.training.teacher_views import view_order  # noqa: E402
from faceguard.vision.onnx_model import default_model_path  # noqa: E402

SHIPPED = default_model_path("lite_mobilefacenet_96.onnx")


def _faces(count: int, seed: int = 0) -> np.ndarray:
    """Smooth random images in the model's input range (normalised NCHW)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(-1, 1, (count, 3, 12, 12)).astype(np.float32)
    return np.ascontiguousarray(small.repeat(8, axis=2).repeat(8, axis=3))


def _onnx(x: np.ndarray) -> np.ndarray:
    from faceguard.training.export import _session

    return np.asarray(_session(SHIPPED).run(["embedding"], {"input": x})[0])


def _torch(model: LiteMobileFaceNet, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_student_from_onnx_computes_the_shipped_model() -> None:
    x = _faces(6)
    model = student_from_onnx(SHIPPED)
    assert np.abs(_torch(model, x) - _onnx(x)).max() < 1e-4
    calibrate_batchnorm(model, torch.from_numpy(_faces(32, seed=1)))
    assert np.abs(_torch(model, x) - _onnx(x)).max() < 1e-4  # the same function
    stem = model.stem[0]
    assert isinstance(stem, ConvBN)
    bn = stem[1]
    assert isinstance(bn, torch.nn.BatchNorm2d) and bn.running_mean is not None
    assert bn.running_var is not None
    assert float(bn.running_var.min()) > 0 and not torch.allclose(  # real statistics now
        bn.running_mean, torch.zeros_like(bn.running_mean))


def test_rotation_keeps_every_cosine_and_procrustes_finds_it() -> None:
    rng = np.random.default_rng(2)
    rotation = np.linalg.qr(rng.standard_normal((128, 128)))[0].astype(np.float32)
    x = _faces(8, seed=3)
    before = _onnx(x)
    model = student_from_onnx(SHIPPED)
    rotate_output(model, rotation)
    after = _torch(model, x)
    assert np.abs(after - before @ rotation).max() < 1e-4
    unit = before / np.linalg.norm(before, axis=1, keepdims=True)
    points = rng.standard_normal((300, 128)).astype(np.float32)
    np.testing.assert_allclose(procrustes(points, points @ rotation), rotation, atol=1e-4)
    cos_before = unit @ unit.T
    unit_after = after / np.linalg.norm(after, axis=1, keepdims=True)
    np.testing.assert_allclose(unit_after @ unit_after.T, cos_before, atol=1e-5)


def test_view_order_puts_the_chosen_views_first() -> None:
    assert view_order(6) == [0, 1, 2, 3, 4, 5]
    assert view_order(6, [0, 2, 3]) == [0, 2, 3, 1, 4, 5]
    assert view_order(3, [5, 2, 2]) == [2, 0, 1]  # unknown and repeated views ignored


def test_training_runs_checkpoints_and_resumes(tmp_path: Path) -> None:
    import json

    from faceguard.training.finetune_views import main
    from faceguard.training.teacher_views import run_views
    from faceguard.training.views import CANVAS_SIZE

    rng = np.random.default_rng(0)
    count = 120
    small = rng.integers(0, 256, (count, 9, 9, 3), dtype=np.uint8)
    canvases = small.repeat(16, axis=1).repeat(16, axis=2)
    assert canvases.shape[1] == CANVAS_SIZE
    np.save(tmp_path / "canvases.npy", canvases)
    np.save(tmp_path / "found.npy", np.ones(count, bool))

    def teacher(crops: np.ndarray) -> np.ndarray:  # a stand-in teacher: colour statistics
        flat = crops.reshape(len(crops), -1, 3).astype(np.float32)
        vectors = np.concatenate([flat.mean(1), flat.std(1), np.ones((len(crops), 122))], 1)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    run_views(tmp_path, 3, 0, teacher, "sha", chunk=64)
    out = tmp_path / "ckpt"
    argv = ["--init", str(SHIPPED), "--views-dir", str(tmp_path), "--views", "3", "--out",
            str(out), "--steps", "4", "--every", "2", "--batch-size", "16",
            "--warmup-steps", "1", "--val-fraction", "0.1"]
    assert main(argv) == 0
    history = json.loads((out / "history.json").read_text())
    assert [r["step"] for r in history] == [0, 2, 4]
    assert all(-1.0 <= r["val_cos"] <= 1.0 for r in history)
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    assert main(argv) == 0  # resumed at the end: nothing more to do, nothing lost
    assert json.loads((out / "history.json").read_text()) == history
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert checkpoint["step"] == 4 and checkpoint["total_steps"] == 4
    # with the starting student as a second target: trains, and keeps it for a resume
    anchored = tmp_path / "anchored"
    argv_anchor = [*argv[:7], str(anchored), *argv[8:], "--anchor-weight", "1.0"]
    assert main(argv_anchor) == 0
    saved = torch.load(anchored / "last.pt", weights_only=True)
    assert set(saved["anchor"]) == set(saved["model"])
    assert not all(torch.equal(saved["anchor"][k], saved["model"][k]) for k in saved["model"])
