"""`faceguard --self-test`: proves an installation (source or frozen) works end to end."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable

import cv2
import numpy as np

from faceguard.core.context import AppContext
from faceguard.core.recognition import Recogniser
from faceguard.errors import FaceGuardError, LibraryError
from faceguard.library.backup import check_library_file
from faceguard.library.database import FaceLibrary, recovery_steps
from faceguard.paths import models_dir, resources_dir
from faceguard.vision.image_io import load_image
from faceguard.vision.onnx_model import expected_sha256, file_sha256


def _check(label: str, action: Callable[[], str]) -> bool:
    start = time.perf_counter()
    try:
        detail = action()
    except (FaceGuardError, OSError, ValueError, AssertionError) as error:
        print(f"FAIL  {label}: {error}")
        return False
    print(f"ok    {label}: {detail} ({(time.perf_counter() - start) * 1000:.0f} ms)")
    return True


def run_self_test(base: AppContext) -> int:
    """Run every check, print one line each; 0 when all pass, 1 otherwise."""
    print(f"FaceGuard self-test; resources in {resources_dir()}")
    results: list[bool] = []

    def models() -> str:
        names = sorted(p.name for p in models_dir().glob("*.onnx"))
        for name in names:
            if expected_sha256(models_dir() / name) != file_sha256(models_dir() / name):
                raise AssertionError(f"{name}: SHA-256 does not match the manifest")
        return f"{len(names)} model files match their SHA-256 ({', '.join(names)})"

    results.append(_check("model files", models))

    def library() -> str:
        path = base.library_path
        if not path.is_file():
            return f"no face library at {path} yet"
        try:
            with FaceLibrary.open(path, read_only=True) as opened:
                problems = opened.integrity_check(full=True)
        except LibraryError as error:
            if "needs upgrading" not in str(error):
                raise
            check_library_file(path)  # an older schema: upgraded at the next start
            problems = []
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise AssertionError(f"{path} is damaged: {problems[0]}{more}. "
                                 f"{recovery_steps(path)}")
        return f"{path}: PRAGMA integrity_check ok"

    results.append(_check("face library", library))
    with tempfile.TemporaryDirectory(prefix="faceguard-selftest-") as folder:
        ctx = AppContext(folder, settings=base.settings)
        portrait = resources_dir() / "demo" / "astronaut.png"
        state: dict[str, object] = {}

        def load_models() -> str:
            engine = ctx.engine
            return f"MTCNN + embedder {engine.model_id} loaded"

        def pipeline() -> str:
            image = load_image(portrait)
            faces = ctx.engine.analyze(image)
            assert len(faces) == 1, f"expected 1 face on the demo photo, found {len(faces)}"
            vector = faces[0].embedding
            assert vector is not None and abs(float(np.linalg.norm(vector)) - 1) < 1e-3
            state["image"] = image
            return f"1 face, {vector.shape[0]}-d unit embedding"

        def database() -> str:
            enroller = ctx.enroller(actor="self-test",
                                    consent=ctx.consent_for("self-test (a demo photo)"))
            person, results_ = enroller.enroll_files("Self Test", [portrait])
            assert person is not None, results_[0].reason
            image = state["image"]
            assert isinstance(image, np.ndarray)
            moved = cv2.warpAffine(image, cv2.getRotationMatrix2D((256, 256), 4, 0.9),
                                   (512, 512), borderMode=cv2.BORDER_REPLICATE)
            found = Recogniser(ctx.engine, ctx.matcher, ctx.library).recognise(moved)
            assert found and found[0].person == "Self Test", "enrolled face not recognised"
            return (f"temporary library: enrolled and re-identified "
                    f"(similarity {found[0].match.similarity:.2f})")

        for label, action in (("load models", load_models), ("pipeline on demo photo", pipeline),
                              ("database round trip", database)):
            results.append(_check(label, action))
            if not results[-1]:
                break
        ctx.close()
    passed = all(results)
    print("self-test passed" if passed else "self-test FAILED")
    sys.stdout.flush()
    return 0 if passed else 1

