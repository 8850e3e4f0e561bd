"""Canvas bundle: round trip, size refusal, damaged and missing files (synthetic canvases)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceguard.paths import TRAIN_CACHE_ENV
from faceguard.training.canvas_bundle import (
    CANVASES_FILE,
    MANIFEST_FILE,
    BundleError,
    build_canvas_bundle,
    decode_canvases,
    encode_canvases,
    load_canvas_bundle,
    main,
)
from faceguard.training.sface import PREPARED_NAME
from faceguard.training.views import CANVAS_SIZE, VIEWS_VERSION

FOUND = np.array([True, False, True, True, False, True])


def _canvases(count: int) -> np.ndarray:
    """Smooth synthetic canvases (gradients and a bright disc), different per row."""
    y, x = np.mgrid[:CANVAS_SIZE, :CANVAS_SIZE].astype(np.float32)
    out = []
    for i in range(count):
        disc = 80.0 * (((x - 50 - 8 * i) ** 2 + (y - 72) ** 2) < 30**2)
        image = np.stack([x * 1.2 + disc, y * 1.1 + 10 * i, (x + y) * 0.5 + disc], axis=2)
        out.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    """A canvases folder as teacher_views writes it, with a fake teacher file beside it."""
    folder = tmp_path / "views"
    folder.mkdir()
    np.save(folder / "canvases.npy", _canvases(len(FOUND)))
    np.save(folder / "found.npy", FOUND)
    (folder / "names.txt").write_text("".join(f"face_{i}.jpg\n" for i in range(len(FOUND))))
    (folder / "teacher.onnx").write_bytes(b"not really an onnx graph" * 100)
    return folder


def _build(source: Path, out: Path, **options: object) -> dict[str, object]:
    return build_canvas_bundle(source, out, source / "teacher.onnx", **options)  # type: ignore[arg-type]


def test_round_trip_keeps_found_faces_in_order(source: Path, tmp_path: Path) -> None:
    manifest = _build(source, tmp_path / "bundle", quality=90)
    bundle = load_canvas_bundle(tmp_path / "bundle", workers=3)
    assert bundle.canvases.shape == (4, CANVAS_SIZE, CANVAS_SIZE, 3)
    assert bundle.canvases.dtype == np.uint8
    assert bundle.indices.tolist() == [0, 2, 3, 5]
    assert bundle.names == ["face_0.jpg", "face_2.jpg", "face_3.jpg", "face_5.jpg"]
    assert bundle.teacher_path.read_bytes() == (source / "teacher.onnx").read_bytes()
    assert bundle.teacher_path.name == PREPARED_NAME
    original = np.load(source / "canvases.npy")[bundle.indices].astype(np.float32)
    assert np.abs(bundle.canvases - original).mean() < 3.0
    assert manifest["faces"] == 4 and manifest["source_faces"] == 6
    assert manifest["views_version"] == VIEWS_VERSION and manifest["quality"] == 90
    on_disk = sum(p.stat().st_size for p in (tmp_path / "bundle").iterdir())
    assert manifest["total_bytes"] == on_disk
    assert json.loads((tmp_path / "bundle" / MANIFEST_FILE).read_text()) == manifest


def test_smaller_side_is_scaled_back_up(source: Path, tmp_path: Path) -> None:
    full = _build(source, tmp_path / "full", quality=90)
    small = _build(source, tmp_path / "small", quality=90, side=96)
    assert small["side"] == 96
    assert small["bytes_per_face"] < full["bytes_per_face"]  # type: ignore[operator]
    bundle = load_canvas_bundle(tmp_path / "small")
    assert bundle.canvases.shape == (4, CANVAS_SIZE, CANVAS_SIZE, 3)
    original = np.load(source / "canvases.npy")[bundle.indices].astype(np.float32)
    assert np.abs(bundle.canvases - original).mean() < 6.0


def test_jpeg_format_round_trips() -> None:
    canvases = _canvases(3)
    data, offsets = encode_canvases(canvases, 90, fmt="jpg")
    assert bytes(data[:2]) == b"\xff\xd8"
    decoded = decode_canvases(data, offsets, workers=2)
    assert np.abs(decoded.astype(np.float32) - canvases).mean() < 3.0


def test_oversized_bundle_is_refused_and_removed(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(BundleError, match=r"over the 0\.0 MiB limit"):
        _build(source, out, quality=90, limit_bytes=1000)
    assert list(out.iterdir()) == []
    assert _build(source, out, quality=90, limit_bytes=None)["faces"] == 4


def test_cli_refuses_oversized_bundle_with_exit_2(source: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # an empty training cache: no SFace source file, so the teacher checksum is not checked
    monkeypatch.setenv(TRAIN_CACHE_ENV, str(tmp_path / "cache"))
    # the synthetic canvases are tiny: a teacher file over the limit makes the bundle too big
    big = tmp_path / "big.onnx"
    with big.open("wb") as handle:
        handle.truncate(61 * 2**20)
    argv = ["--source", str(source), "--teacher", str(big), "--out", str(tmp_path / "b")]
    assert main(argv) == 2
    assert "MiB limit (64 MiB less the checkout" in capsys.readouterr().err
    assert main([*argv, "--allow-large"]) == 0
    assert "MiB" in capsys.readouterr().out


def test_damaged_file_is_caught(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    _build(source, out, quality=90)
    teacher = out / PREPARED_NAME
    damaged = bytearray(teacher.read_bytes())
    damaged[10] ^= 0xFF
    teacher.write_bytes(bytes(damaged))
    with pytest.raises(BundleError, match=f"{PREPARED_NAME} is damaged"):
        load_canvas_bundle(out)


def test_missing_file_is_named(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    _build(source, out, quality=90)
    (out / CANVASES_FILE).unlink()
    with pytest.raises(BundleError, match=f"{CANVASES_FILE} is missing"):
        load_canvas_bundle(out)
    (out / MANIFEST_FILE).unlink()
    with pytest.raises(BundleError, match="not a canvas bundle"):
        load_canvas_bundle(out)


def test_wrong_teacher_checksum_is_refused(source: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="expected 00"):
        _build(source, tmp_path / "bundle", teacher_sha256="00" * 32)


def test_missing_source_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="teacher_views"):
        build_canvas_bundle(tmp_path, tmp_path / "out", tmp_path / "t.onnx")
