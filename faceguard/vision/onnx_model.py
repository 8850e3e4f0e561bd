"""One base class for every ONNX network FaceGuard runs.

At load it checks the file exists, that its SHA-256 matches the model manifest (or an
explicitly given digest), that the declared input/output shapes are the ones the caller
expects, and it pins onnxruntime's thread counts (unpinned threads make latency jumpy).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

from faceguard.errors import ModelError
from faceguard.paths import models_dir

MANIFEST_NAME = "manifest.json"
Dim = int | None  # None: any size (a dynamic axis)


@dataclass(frozen=True)
class TensorSpec:
    """Expected name and shape of one model input or output (None = dynamic axis)."""

    name: str
    shape: tuple[Dim, ...]


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


SHA256_DIGITS = re.compile(r"[0-9a-fA-F]{64}")


def manifest_path(model: Path) -> Path:
    """The manifest that describes a model file: the one beside it."""
    return model.resolve().parent / MANIFEST_NAME


def manifest_error(model: Path, field: str, problem: str) -> ModelError:
    """The error for a damaged field of a model's manifest entry, naming the manifest file,
    the model and the field (``problem``: "must be a number (it is "abc")")."""
    return ModelError(f"model manifest {manifest_path(model)} is damaged: "
                      f"{model.name}'s {field} {problem}")


@lru_cache(maxsize=8)
def _read_manifest(folder: Path) -> dict[str, dict[str, object]]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"model manifest {path} is unreadable: {error}") from error
    models = data.get("models", {}) if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ModelError(f"model manifest {path} is damaged: it must be a JSON object whose "
                         '"models" maps each model file to its entry')
    for name, entry in models.items():
        if not isinstance(entry, dict):
            raise ModelError(f"model manifest {path} is damaged: the entry of {name} must be "
                             f"a JSON object (it is {json.dumps(entry)})")
        if "sha256" in entry and not (isinstance(entry["sha256"], str)
                                      and SHA256_DIGITS.fullmatch(entry["sha256"])):
            raise manifest_error(folder / name, "sha256", "must be 64 hexadecimal digits "
                                 f"(it is {json.dumps(entry['sha256'])})")
    return dict(models)


def manifest_entry(path: Path) -> dict[str, object] | None:
    """The manifest record for a model file, looked up in the manifest beside it (its
    structure and SHA-256 checked; ModelError, naming the field, when they are damaged)."""
    return _read_manifest(path.resolve().parent).get(path.name)


def expected_sha256(path: Path) -> str | None:
    """SHA-256 recorded for a model file in its folder's manifest, if any."""
    entry = manifest_entry(path)
    return str(entry["sha256"]) if entry and "sha256" in entry else None


class OnnxModel:
    """An onnxruntime session with verified file, verified shapes and pinned threads."""

    inputs: Sequence[TensorSpec] = ()
    outputs: Sequence[TensorSpec] = ()

    def __init__(self, path: str | Path, *, sha256: str | None = None, threads: int = 1,
                 verify: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        self.sha256 = file_sha256(self.path)
        if verify:
            wanted = sha256 or expected_sha256(self.path)
            if wanted is None:
                raise ModelError(
                    f"model file {self.path.name} is not listed in {MANIFEST_NAME}; "
                    "its checksum cannot be verified")
            if wanted.lower() != self.sha256:
                raise ModelError(
                    f"model file {self.path} is damaged or not the expected version "
                    f"(SHA-256 {self.sha256[:12]}…, expected {wanted[:12]}…)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise ModelError(f"model file {self.path} cannot be loaded: {error}") from error
        self.threads = options.intra_op_num_threads
        self._check_signature()

    def _check_signature(self) -> None:
        for kind, expected, actual in (
            ("input", self.inputs, self.session.get_inputs()),
            ("output", self.outputs, self.session.get_outputs()),
        ):
            actual_by_name = {a.name: a for a in actual}
            for spec in expected:
                found = actual_by_name.get(spec.name)
                if found is None:
                    raise ModelError(
                        f"{self.path.name}: missing {kind} '{spec.name}' "
                        f"(has {sorted(actual_by_name)})")
                if not _shape_matches(spec.shape, found.shape):
                    raise ModelError(
                        f"{self.path.name}: {kind} '{spec.name}' has shape {found.shape}, "
                        f"expected {list(spec.shape)}")

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the network; returns the outputs by name."""
        names = [o.name for o in self.outputs] or [o.name for o in self.session.get_outputs()]
        values = self.session.run(names, dict(feeds))
        return dict(zip(names, values, strict=True))


def _shape_matches(expected: Sequence[Dim], declared: Sequence[object]) -> bool:
    if len(expected) != len(declared):
        return False
    for want, have in zip(expected, declared, strict=True):
        if want is None:
            continue
        if isinstance(have, int) and have != want:
            return False
    return True


def default_model_path(file_name: str) -> Path:
    """Path of a bundled model file."""
    return models_dir() / file_name
