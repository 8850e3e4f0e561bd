"""The fp32 PyTorch SFace matches onnxruntime on the block-quantised file (real faces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the train extra (torch)")

from faceguard.training.sface import SFACE_SIZE, SFaceTeacher, prepared_sface_path, to_nchw  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "demo"


def test_module_shapes_without_weights() -> None:
    from faceguard.training.sface_torch import SFaceNet

    net = SFaceNet().eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 3, 112, 112))
    assert out.shape == (2, 128)


@pytest.mark.shared
def test_fp32_matches_onnxruntime_on_real_faces() -> None:
    if not prepared_sface_path().is_file():
        pytest.skip("SFace not fetched (run `python tools/fetch_sface.py`)")
    names = ("obama.jpg", "obama2.jpg", "biden.jpg", "grace_hopper.jpg")
    if not all((DEMO / n).is_file() for n in names):
        pytest.skip("needs ../shared/datasets/demo")
    from faceguard.training.sface_torch import load_sface_torch
    from faceguard.vision.alignment import align_face
    from faceguard.vision.image_io import load_image
    from faceguard.vision.mtcnn import MtcnnDetector

    detector = MtcnnDetector(min_face=40, threads=1)
    crops = []
    for name in names:
        image = load_image(DEMO / name)
        crops.append(align_face(image, detector.detect(image)[0].landmarks, SFACE_SIZE))
    data = to_nchw(np.stack(crops))
    reference = SFaceTeacher(threads=1).session.run(None, {"data": data})[0]
    with torch.no_grad():
        ours = load_sface_torch()(torch.from_numpy(data)).numpy()
    assert np.abs(ours - reference).max() < 1e-3
