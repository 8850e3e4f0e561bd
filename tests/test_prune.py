"""Narrowing the embedder's bottlenecks (issue 15): the closed-form refit keeps the function
where channels go, a narrowed network trains, resumes, exports and reads back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="narrowing the embedder needs the train extra (torch)")
onnxruntime = pytest.importorskip("onnxruntime")

from faceguard.training.checkpoints import build_model_from_checkpoint, load_checkpoint  # noqa: E402
from faceguard.training.model import LiteMobileFaceNet  # noqa: E402
from faceguard.training.onnx_student import student_from_onnx  # noqa: E402
from faceguard.training.prune import (  # noqa: E402
    BlockOutputs,
    bottlenecks,
    mimic_loss,
    narrow_block,
    narrowed_model,
    narrowed_width,
    parse_args,
    train,
)
from faceguard.training.views import CANVAS_SIZE  # noqa: E402
from faceguard.vision.onnx_model import default_model_path  # noqa: E402

SHIPPED = default_model_path("lite_mobilefacenet_96.onnx")


def _smooth_inputs(n: int, seed: int = 0) -> torch.Tensor:
    """Model inputs with image-like (smooth) structure, never dataset images."""
    rng = np.random.default_rng(seed)
    small = torch.from_numpy(rng.uniform(-1, 1, (n, 3, 12, 12)).astype(np.float32))
    return torch.nn.functional.interpolate(small, size=(96, 96), mode="bilinear",
                                           align_corners=False)


def test_widths_stay_multiples_of_sixteen() -> None:
    assert [narrowed_width(h, 0.75) for h in (128, 256, 512)] == [96, 192, 384]
    assert narrowed_width(128, 0.5) == 64 and narrowed_width(64, 0.01) == 16


def test_the_refit_beats_dropping_the_channels() -> None:
    model = student_from_onnx(SHIPPED).eval()
    block = bottlenecks(model)[2]  # 64 -> 256 -> 128 at 24x24
    with torch.no_grad():
        x = model.groups[0](model.stem(_smooth_inputs(24)))
        target = block.body(x)
        full, kept = narrow_block(block, x, target, 256, ridge=1e-9)
        assert len(kept) == 256
        # every channel kept: the refit gives the original projection back
        assert float((full.body(x) - target).abs().max()) < 1e-3
        narrow, kept = narrow_block(block, x, target, 128)
        refit_error = float((narrow.body(x) - target).pow(2).mean())
        # the same channels without the refit: the original projection's columns only
        dropped = block.body[2][0].weight[:, kept]
        hidden = block.body[1](block.body[0](x))[:, kept]
        plain = block.body[2][1](torch.nn.functional.conv2d(hidden, dropped))
        plain_error = float((plain - target).pow(2).mean())
    assert narrow.body[0][0].out_channels == 128 and narrow.body[2][0].in_channels == 128
    assert refit_error < 0.5 * plain_error


def test_keeping_every_channel_keeps_the_embeddings() -> None:
    original = student_from_onnx(SHIPPED).eval()
    copy = narrowed_model(original, _smooth_inputs(16), keep=1.0, ridge=1e-9)
    assert copy.hidden_widths == original.hidden_widths
    with torch.no_grad():
        x = _smooth_inputs(8, seed=1)
        cosine = torch.nn.functional.cosine_similarity(copy(x), original(x), dim=1)
    assert float(cosine.min()) > 0.9999


def _cache(folder: Path, faces: int = 40) -> Path:
    """A teacher-views cache folder of smooth synthetic canvases (one not found)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (faces, 9, 9, 3)).astype(np.float32)
    canvases = np.stack([np.kron(img.transpose(2, 0, 1), np.ones((16, 16))).transpose(1, 2, 0)
                         for img in small])[:, :CANVAS_SIZE, :CANVAS_SIZE].astype(np.uint8)
    found = np.ones(faces, bool)
    found[3] = False
    folder.mkdir(parents=True)
    np.save(folder / "canvases.npy", canvases)
    np.save(folder / "found.npy", found)
    return folder


def _run(cache: Path, out: Path, steps: int) -> dict:  # type: ignore[type-arg]
    return train(parse_args(["--canvases", str(cache), "--out", str(out), "--keep", "0.5",
                             "--steps", str(steps), "--check-every", "2", "--batch-size", "8",
                             "--fit-faces", "16", "--val-faces", "6", "--threads", "2"]))


def test_a_narrowed_run_trains_resumes_and_exports(tmp_path: Path) -> None:
    cache, out = _cache(tmp_path / "cache"), tmp_path / "run"
    first = _run(cache, out, 4)
    assert first["step"] == 4 and np.isfinite(first["val_cos"])
    second = _run(cache, out, 6)  # resumed at step 4, with a longer schedule
    history = json.loads((out / "history.json").read_text())
    assert [r["step"] for r in history] == [2, 4, 6] and second["step"] == 6
    model = build_model_from_checkpoint(load_checkpoint(out / "best.pt"))
    assert isinstance(model, LiteMobileFaceNet)
    assert model.hidden_widths == (64, 64, 128, 128, 128, 128, 128, 256, 128, 128)
    back = student_from_onnx(out / "student.onnx").eval()
    assert back.hidden_widths == model.hidden_widths
    x = _smooth_inputs(3, seed=2)
    session = onnxruntime.InferenceSession(str(out / "student.onnx"),
                                           providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        assert np.abs(back(x).numpy() - onnx_out).max() < 1e-4
        assert np.abs(model.eval()(x).numpy() - onnx_out).max() < 1e-4


def test_a_fresh_model_exports(tmp_path: Path) -> None:
    """A model straight from its constructor (equal PReLU slopes, shared by the exporter)."""
    from faceguard.training.export import export_onnx, verify_onnx

    model = LiteMobileFaceNet().eval()
    export_onnx(model, tmp_path / "fresh.onnx")
    assert verify_onnx(model, tmp_path / "fresh.onnx") < 1e-4


def test_narrowing_and_training_keep_the_data_device(forgotten_device_is_meta: None) -> None:
    """Under a "meta" default device (see tests/test_device_placement.py) every tensor made
    without the data's device fails: the narrowing and a training step make none."""
    cpu = torch.device("cpu")
    with torch.device(cpu):
        original = student_from_onnx(SHIPPED).eval()
        x = _smooth_inputs(6)
    model = narrowed_model(original, x, keep=0.5)
    assert all(p.device == cpu for p in model.parameters())
    teacher_blocks, student_blocks = BlockOutputs(original), BlockOutputs(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with torch.no_grad():
        target = original(x)
    model.train()
    loss = mimic_loss(model(x), target, student_blocks.take(), teacher_blocks.take(), 0.5)
    loss.backward()
    optimizer.step()
    assert loss.device == cpu and bool(torch.isfinite(loss))


def test_missing_canvases_are_named_before_anything_loads(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from faceguard.training.prune import main

    code = main(["--canvases", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert code == 2
    assert str(tmp_path / "nowhere" / "canvases.npy") in capsys.readouterr().err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_stop_request_checkpoints_exports_then_ends(tmp_path: Path) -> None:
    import threading

    cache, out = _cache(tmp_path / "cache"), tmp_path / "run"
    stop = threading.Event()
    stop.set()  # as SIGTERM would, before the first step ends
    args = parse_args(["--canvases", str(cache), "--out", str(out), "--keep", "0.5",
                       "--steps", "50", "--check-every", "20", "--batch-size", "8",
                       "--fit-faces", "16", "--val-faces", "6", "--threads", "2"])
    record = train(args, stop)
    assert record["step"] == 1
    assert (out / "last.pt").exists() and (out / "student.onnx").exists()
