"""Shared fixtures: paths to ../shared, a tiny test embedder built here, a fresh library."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from faceguard.core.context import AppContext

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEGUARD_SHARED", REPO.parent / "shared"))
DEMO = SHARED / "datasets" / "demo"
LFW = SHARED / "datasets" / "lfw"


SHIPPED_DEMO = REPO / "resources" / "demo"  # the public-domain photos the product ships


def demo_image(name: str) -> Path:
    """A demo photo: the copy resources/ ships (astronaut, grace_hopper, camera_profile), else
    ../shared's; the test is skipped when neither has it."""
    for folder in (SHIPPED_DEMO, DEMO):
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"needs ../shared/datasets/demo/{name} (not present on this machine)")


def build_test_embedder(path: Path, dimension: int = 128, seed: int = 7) -> str:
    """Write a small deterministic ONNX embedder (pool -> centre -> random projection).

    Not a face model: it maps aligned crops to vectors so that the same aligned face gives
    nearly the same vector and different faces differ. Returns the file's SHA-256.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    pooled = 3 * 24 * 24
    projection = (rng.standard_normal((pooled, dimension)) / np.sqrt(pooled)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[4, 4],
                         strides=[4, 4]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("ReduceMean", ["flat", "axes"], ["mean"], keepdims=1),
        helper.make_node("Sub", ["flat", "mean"], ["centred"]),
        helper.make_node("MatMul", ["centred", "projection"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "test_embedder",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 96, 96])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dimension])],
        initializer=[numpy_helper.from_array(projection, "projection"),
                     numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def test_embedder_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(path, sha256) of the tiny test embedder."""
    path = tmp_path_factory.mktemp("models") / "test_embedder.onnx"
    return path, build_test_embedder(path)


@pytest.fixture(scope="session")
def engine(test_embedder_file: tuple[Path, str]):  # type: ignore[no-untyped-def]
    """A FaceEngine with the real MTCNN and the tiny test embedder."""
    from faceguard.vision.engine import FaceEngine

    path, digest = test_embedder_file
    return FaceEngine.load(min_face=40, embedder_path=path, embedder_sha256=digest)


TEST_THRESHOLD = 0.8  # operating point for the tiny test embedder (pixel-based, not a face model)


@pytest.fixture()
def test_embedder_env(test_embedder_file: tuple[Path, str],
                      monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """Point the app (FACEGUARD_EMBEDDER*) at the tiny test embedder for one test."""
    path, digest = test_embedder_file
    monkeypatch.setenv("FACEGUARD_EMBEDDER", str(path))
    monkeypatch.setenv("FACEGUARD_EMBEDDER_SHA256", digest)
    return path, digest


def make_data_dir(parent: Path, **settings: object) -> Path:
    """A fresh data folder whose settings use the test embedder's operating point.

    Consent records are not required there (``consent.required off``) unless a test asks:
    a new library requires them by default (tests/test_consent_export.py tests that)."""
    from faceguard.settings import Settings, save_settings

    folder = parent / "data"
    folder.mkdir()
    values: dict = {"match_threshold": TEST_THRESHOLD, "match_margin": 0.02,
                    "consent_required": "off", **settings}
    save_settings(Settings(**values), folder)
    return folder


def _delete_closed_widgets() -> None:
    """Let Qt delete the widgets pytest-qt has closed (``deleteLater`` runs only in an event
    loop, so without this they, and their timers, live on into the next test)."""
    import sys

    if "PySide6.QtCore" not in sys.modules:
        return
    from PySide6.QtCore import QCoreApplication, QEvent

    if QCoreApplication.instance() is not None:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture()
def open_context(test_embedder_env: tuple[Path, str]) -> Iterator[Callable[..., AppContext]]:
    """``open_context(folder, **options)``: an AppContext that is closed when the test ends,
    after the test's windows and dialogs: pytest-qt closes the widgets a test registered
    before fixtures are torn down, and they are deleted here before any context closes, so
    no window, timer or queued signal outlives the context it shows."""
    from faceguard.core.context import AppContext

    opened: list[AppContext] = []

    def open_one(folder: Path, **options: object) -> AppContext:
        context = AppContext(folder, **options)  # type: ignore[arg-type]
        opened.append(context)
        return context

    yield open_one
    _delete_closed_widgets()
    for context in reversed(opened):
        context.close()


@pytest.fixture()
def data_dir(tmp_path: Path, test_embedder_env: tuple[Path, str]) -> Path:
    """A fresh data folder for CLI tests, with the test embedder in force."""
    return make_data_dir(tmp_path)


def run_cli(data_dir: Path, *args: str) -> int:
    """``faceguard --data-dir DATA --min-face 40 ARGS...`` in this process; the exit code."""
    from faceguard.cli import main

    return main(["--data-dir", str(data_dir), "--min-face", "40", *args])


@pytest.fixture(scope="session")
def pg_cluster():  # type: ignore[no-untyped-def]
    """A throw-away PostgreSQL cluster for the session (tests/pg_cluster.py); skipped, saying
    why, where PostgreSQL or psycopg is missing."""
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install -e '.[dev]')")
    from tests.pg_cluster import PgCluster, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    cluster = PgCluster(bin_dir)
    yield cluster
    cluster.close()


@pytest.fixture()
def pg_dsn(pg_cluster) -> str:  # type: ignore[no-untyped-def]
    """The superuser DSN of a fresh, empty database in the session's cluster."""
    return str(pg_cluster.new_database())


@pytest.fixture(params=["float32 rows", "float16 scan"])
def both_search_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on both 1:N search paths: the float32 rows small indexes keep, and the
    float16 scan with its float32 re-rank that large ones use."""
    from faceguard.library import template_index

    if request.param == "float16 scan":
        monkeypatch.setattr(template_index, "EXACT_ROWS_LIMIT", 0)
    return str(request.param)


# -- a model with a calibration table (strictness levels) -------------------------------------

CALIBRATION_TABLE = {"0.001": 0.61, "0.0001": 0.72, "1e-05": 0.83}


def model_with_manifest(parent: Path, test_embedder_file: tuple[Path, str],
                        entry: dict[str, object]) -> Path:
    """The tiny test embedder copied into a folder with a manifest holding ``entry``."""
    source, digest = test_embedder_file
    folder = parent / "models"
    folder.mkdir()
    path = folder / "site_model.onnx"
    shutil.copyfile(source, path)
    manifest = {"models": {path.name: {"sha256": digest, "margin": 0.04, **entry}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return path


@pytest.fixture()
def calibrated_model(tmp_path: Path, test_embedder_file: tuple[Path, str],
                     monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test embedder with a full calibration table, in force for the app."""
    path = model_with_manifest(tmp_path, test_embedder_file, {
        "threshold": 0.61, "threshold_far": 1e-3, "thresholds": CALIBRATION_TABLE})
    monkeypatch.setenv("FACEGUARD_EMBEDDER", str(path))
    monkeypatch.setenv("FACEGUARD_EMBEDDER_SHA256", test_embedder_file[1])
    return path


@pytest.fixture()
def calibrated_ctx(tmp_path: Path, calibrated_model: Path) -> Iterator[Any]:
    """An application context on that model, at its calibrated (standard) level."""
    from faceguard.core.context import AppContext

    context = AppContext(make_data_dir(tmp_path, match_threshold=None))
    yield context
    context.close()


@pytest.fixture()
def forgotten_device_is_meta() -> Iterator[None]:
    """Torch's default device is "meta" inside the test (see tests/test_device_placement.py):
    a tensor made without the data's device fails. The training modules' per-device caches
    are emptied before (so their tensors are made under it) and after (so no other test
    sees them)."""
    torch = pytest.importorskip("torch", reason="the training path needs torch (train extra)")
    from faceguard.training import gpu_degrade, gpu_views

    caches = (gpu_degrade.low_res_matrices, gpu_degrade.dct_matrix,
              gpu_degrade._ycc_matrices, gpu_views._student_area)
    for cache in caches:
        cache.cache_clear()
    try:
        with torch.device("meta"):
            yield
    finally:
        for cache in caches:
            cache.cache_clear()
