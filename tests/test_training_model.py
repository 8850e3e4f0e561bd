"""Tests for the lite MobileFaceNet, its distillation script and the ONNX export."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceguard.training import distill  # noqa: E402
from faceguard.training.checkpoints import (  # noqa: E402
    build_model_from_checkpoint,
    load_checkpoint,
)
from faceguard.training.distill_data import centre_targets, load_data, split_indices  # noqa: E402
from faceguard.training.model import (  # noqa: E402
    ECA,
    Bottleneck,
    LiteMobileFaceNet,
    count_mult_adds,
    count_parameters,
    eca_kernel_size,
)
from faceguard.training.student_input import DeviceAugment, normalise_uint8  # noqa: E402

TRAINING_DIR = Path(distill.__file__).parent
N_FACES = 48


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model() -> LiteMobileFaceNet:
    torch.manual_seed(0)
    return LiteMobileFaceNet().eval()


def _write_synthetic(data_dir: Path, n: int = N_FACES, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    np.save(data_dir / "crops.npy", rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8))
    targets = (rng.normal(size=(n, 128)) + 2.0).astype(np.float16)
    mirrored = (targets + 0.1 * rng.normal(size=targets.shape)).astype(np.float16)
    np.save(data_dir / "targets.npy", targets)
    np.save(data_dir / "targets_mirrored.npy", mirrored)
    valid = np.ones(n, dtype=bool)
    valid[3] = False
    np.save(data_dir / "valid.npy", valid)


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--batch-size", "16", "--device", "cpu",
            "--threads", "1", "--no-progress", "--seed", "0", *extra]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("distill_data")
    _write_synthetic(path)
    return path


@pytest.fixture(scope="module")
def one_epoch_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    assert distill.main(_args(data_dir, out, "--epochs", "1")) == 0
    return out


# ----------------------------------------------------------------------------- model


def test_output_shape_and_not_normalised(model: LiteMobileFaceNet) -> None:
    with torch.no_grad():
        out = model(torch.randn(2, 3, 96, 96))
    assert out.shape == (2, 128)
    assert not torch.allclose(out.norm(dim=1), torch.ones(2))


def test_size_and_cost(model: LiteMobileFaceNet) -> None:
    params = count_parameters(model)
    assert 600_000 < params < 1_000_000
    assert 100e6 < count_mult_adds(model) < 125e6


def test_eca_in_first_and_last_group_only_and_hardswish(model: LiteMobileFaceNet) -> None:
    groups = list(model.groups.children())
    assert len(groups) == 5
    for i, group in enumerate(groups):
        has_eca = [isinstance(block.eca, ECA) for block in group.children()]
        assert all(has_eca) if i in (0, 4) else not any(has_eca)
    assert eca_kernel_size(64) == 3 and eca_kernel_size(128) == 5
    for block in model.modules():
        if isinstance(block, Bottleneck):
            acts = [m for m in block.body.modules() if isinstance(m, torch.nn.Hardswish)]
            assert len(acts) == 2  # expand and depthwise; the projection stays linear
            projection = list(block.body.children())[-1]
            assert not isinstance(list(projection.children())[-1], torch.nn.Hardswish)


def test_count_mult_adds_counts_a_single_conv() -> None:
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert count_mult_adds(conv) == 96 * 96 * 8 * 3 * 9


def _training_imports(tree: ast.Module) -> set[str]:
    """File names of the faceguard.training modules a module imports."""
    return {f"{node.module.rsplit('.', 1)[1]}.py" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            and node.module.startswith("faceguard.training.")}


def test_training_modules_import_only_light_dependencies() -> None:
    allowed = set(sys.stdlib_module_names) | {"numpy", "torch", "faceguard"}
    lazy_ok = allowed | {"tqdm", "cv2", "torchvision", "PIL"}
    # distill.py and every training module it needs: it runs from a bare checkout.
    todo, seen = ["distill.py"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((TRAINING_DIR / name).read_text())
        todo += _training_imports(tree)
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= (allowed if id(node) in top else lazy_ok), (name, roots)
    assert {"model.py", "distill_data.py", "checkpoints.py"} <= seen


# ----------------------------------------------------------------------------- data side


def test_split_and_centring() -> None:
    tr, va = split_indices(100, seed=3)
    tr2, va2 = split_indices(100, seed=3)
    assert len(va) == 2 and np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert not set(tr) & set(va)
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(100, 16)) + 5.0
    tc, mc, mean = centre_targets(raw, raw[:, ::-1].copy(), tr)
    assert np.allclose(np.linalg.norm(tc, axis=1), 1.0, atol=1e-5)
    assert mc is not None
    # Centred targets no longer share the large common direction of the raw ones.
    raw_n = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert (raw_n @ raw_n.T).mean() > 0.9 > 0.2 > abs((tc @ tc.T).mean())
    assert mean.shape == (16,)


def test_augment_identity_and_mirror_are_exact() -> None:
    x = torch.randint(0, 256, (6, 96, 96, 3), dtype=torch.uint8)
    aug = DeviceAugment(max_scale=0, max_shift_px=0, max_rotation_deg=0,
                        brightness=0, contrast=(1, 1), blur_p=0, grey_p=0)
    y, flip = aug(x, torch.Generator().manual_seed(0))
    ref = normalise_uint8(x)
    ref = torch.where(flip.view(-1, 1, 1, 1), ref.flip(-1), ref)
    assert torch.allclose(y, ref, atol=1e-4)
    y, _ = DeviceAugment()(x, torch.Generator().manual_seed(1))
    assert y.shape == (6, 3, 96, 96) and y.abs().max() <= 127.5 / 128 + 1e-6


def test_jpeg_pack_round_trip_and_loading(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    from faceguard.training.packing import pack_crops_jpeg

    yy, xx = np.mgrid[0:96, 0:96]
    crops = np.stack([np.stack([xx * 2, yy * 2, (xx + yy) + 10 * i], -1) for i in range(4)])
    crops = crops.clip(0, 255).astype(np.uint8)
    data, offsets = pack_crops_jpeg(crops, quality=90)
    assert offsets.shape == (5,) and offsets[-1] == data.size
    np.savez(tmp_path / "crops_jpg.npz", data=data, offsets=offsets)
    np.save(tmp_path / "targets.npy", np.ones((4, 128), np.float32))
    loaded = load_data(tmp_path, workers=2)
    assert loaded.crops.shape == (4, 96, 96, 3) and loaded.targets_mirrored is None
    assert np.abs(loaded.crops.astype(int) - crops).mean() < 3.0


# ----------------------------------------------------------------------------- training


def test_distill_writes_checkpoints_and_resumes(
    one_epoch_run: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("last.pt", "best.pt", "history.json"):
        assert (one_epoch_run / name).exists()
    history = json.loads((one_epoch_run / "history.json").read_text())
    assert len(history) == 1
    assert {"train_loss", "val_cos", "val_cos_flip", "images_per_s", "elapsed_s"} <= set(
        history[0]
    )
    ckpt = load_checkpoint(one_epoch_run / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["target_mean"].shape == (128,)
    assert ckpt["data_rows"] == N_FACES - 1  # one row marked invalid

    resumed = one_epoch_run.parent / (one_epoch_run.name + "_resumed")
    resumed.mkdir()
    (resumed / "last.pt").write_bytes((one_epoch_run / "last.pt").read_bytes())
    capsys.readouterr()
    assert distill.main(_args(data_dir, resumed, "--epochs", "2")) == 0
    assert "resumed from" in capsys.readouterr().out
    history = json.loads((resumed / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def test_budget_stop_then_resume_equals_an_uninterrupted_run(
    data_dir: Path, tmp_path: Path
) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert distill.main(_args(data_dir, straight, "--epochs", "2")) == 0
    assert distill.main(_args(data_dir, split, "--epochs", "2", "--budget-minutes", "1e-6")) == 0
    assert load_checkpoint(split / "last.pt")["epoch"] == 1
    assert distill.main(_args(data_dir, split, "--epochs", "2")) == 0
    a = load_checkpoint(straight / "last.pt")["model"]
    b = load_checkpoint(split / "last.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ----------------------------------------------------------------------------- export


def test_export_matches_pytorch(one_epoch_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from faceguard.training import export

    out = tmp_path / "lite.onnx"
    assert export.main(["--checkpoint", str(one_epoch_run), "--out", str(out)]) == 0
    model = build_model_from_checkpoint(load_checkpoint(one_epoch_run / "best.pt"))
    assert export.verify_onnx(model, out, batch_sizes=(1, 7)) < 1e-4
    session = export._session(out)
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "input" and inp.shape[1:] == [3, 96, 96]
    assert isinstance(inp.shape[0], str)  # dynamic batch
    assert outp.name == "embedding" and outp.shape[1:] == [128]


def test_fit_budget_shortens_the_schedule(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit"
    extra = ("--epochs", "5", "--budget-minutes", "1e-6", "--fit-budget")
    assert distill.main(_args(data_dir, out, *extra)) == 0
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 1
    # The cosine schedule was re-planned to end with the one epoch that fits.
    plan = ckpt["scheduler"]["lr_lambdas"][0]
    assert plan["total_steps"] == ckpt["scheduler"]["last_epoch"] == 2  # 46 rows // 16
