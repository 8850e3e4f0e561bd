"""The GPU training path keeps every tensor on the data's device (issue 14, run on CPU).

No GPU is at hand when the tests run, and a tensor made without ``device=`` lands on the CPU,
which on a CPU-only machine is also where the data is: a forgotten device never shows. Here
the data stays on the CPU while torch's *default* device is "meta" (``with
torch.device("meta")``), so every tensor a factory (``torch.tensor``, ``arange``, ``zeros``,
``rand``...) makes without an explicit device or ``*_like`` source is a meta tensor, and mixing
it with the real ones raises or leaves a meta result — what a CUDA tensor meeting a CPU one
would do on the GPU. The views, the student's input, the teacher's labels, two optimiser
steps (plain and under the bf16 autocast CUDA uses, which the CPU has too) and the checkpoint
state run that way.

Not covered by this trick: ``torch.from_numpy`` (always the CPU) and ``.numpy()`` (works on
CPU tensors); :func:`test_numpy_leaves_the_device_only_through_cpu` checks the latter in the
source. The one-time setup in ``online_distill.train`` (networks built on the CPU, then
``.to(device)``) cannot run under a meta default (the network itself would be meta); the CPU
tests of ``test_online_distill.py`` run it, and ``test_a_stop_request_checkpoints_then_ends``
the stop path.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the GPU training path needs torch (train extra)")

from torch import nn  # noqa: E402

from faceguard.training import gpu_views  # noqa: E402
from faceguard.training.checkpoints import resume_state, save_progress  # noqa: E402
from faceguard.training.model import ECA, ConvBN, LiteMobileFaceNet  # noqa: E402
from faceguard.training.online_distill import (  # noqa: E402
    OnlineStep,
    OnlineTargets,
    mean_cosine,
    parse_args,
    train,
)
from faceguard.training.optimisation import WarmupCosine, param_groups  # noqa: E402
from faceguard.training.views import DEFAULT_RECIPE  # noqa: E402
from tests.test_online_distill import SmallTeacher, _args, _canvases  # noqa: E402

CPU = torch.device("cpu")
EVERY_STEP = replace(DEFAULT_RECIPE, flip=1.0, occlusion=1.0, colour=1.0, gamma=1.0,
                     low_light=1.0, blur=1.0, low_res=1.0, noise=1.0, jpeg=1.0)
def _on_cpu(*tensors: torch.Tensor) -> None:
    for t in tensors:
        assert t.device == CPU, f"a {tuple(t.shape)} result is on {t.device}"
        assert bool(torch.isfinite(t.float()).all())


def test_the_trick_catches_a_forgotten_device(forgotten_device_is_meta: None) -> None:
    x = torch.ones(4, device=CPU)
    with pytest.raises(RuntimeError, match="device"):
        _ = x + torch.arange(4)  # the kind of constant a GPU run would have on the CPU
    assert (x + torch.arange(4, device=x.device)).device == CPU
    # a generator of the wrong device gives a tensor off the data's device
    assert torch.rand(4, generator=torch.Generator().manual_seed(0)).device.type == "meta"


@pytest.mark.parametrize("recipe", [DEFAULT_RECIPE, EVERY_STEP], ids=["default", "every step"])
def test_views_stay_on_the_canvases_device(forgotten_device_is_meta: None,
                                           recipe: object) -> None:
    canvases = torch.from_numpy(_canvases()[:12])
    views = gpu_views.GpuViews(canvases, recipe, mix=1.0)  # type: ignore[arg-type]
    faces = torch.arange(12, device=CPU)
    generator = torch.Generator(device=CPU).manual_seed(0)
    augmented = views.augmented(faces, generator)
    clean = views.clean(faces)
    student = gpu_views.student_input(augmented)
    _on_cpu(augmented, clean, student)
    assert student.shape == (12, 3, 96, 96) and student.dtype == torch.float32


def _block_student() -> nn.Module:
    """The student's own building blocks (conv + BN + PReLU / hard-swish, ECA, the 1x1 head)
    without its depthwise convolutions, which bf16 runs through a slow per-group fallback on
    CPUs without bf16 instructions (about 10 s a step on the development machine)."""
    return nn.Sequential(ConvBN(3, 16, 3, 2, act="prelu"), ConvBN(16, 32, 3, 2, act="hswish"),
                         ECA(32), nn.AdaptiveAvgPool2d(1), ConvBN(32, 128, 1), nn.Flatten())


@pytest.mark.parametrize("mixed_precision", [False, True], ids=["float32", "bf16 autocast"])
def test_training_steps_stay_on_the_data_device(forgotten_device_is_meta: None,
                                                mixed_precision: bool, tmp_path: Path) -> None:
    with torch.device(CPU):  # built on the CPU as train() builds them, then used under meta
        teacher = SmallTeacher()
        model = _block_student() if mixed_precision else LiteMobileFaceNet()
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    conv_dtypes: list[torch.dtype] = []
    first_conv.register_forward_hook(lambda _m, _i, out: conv_dtypes.append(out.dtype))
    canvases = _canvases()
    views = gpu_views.GpuViews(torch.from_numpy(canvases), mix=0.5)
    targets = OnlineTargets(teacher, CPU, chunk=8, mixed_precision=mixed_precision)
    faces = torch.arange(len(canvases), device=CPU)
    mean = targets.fit_mean(views.clean(faces[:16]))
    generator = torch.Generator(device=CPU).manual_seed(0)
    hardness = torch.full((len(canvases),), 0.5, device=CPU)
    step = OnlineStep(views, targets, faces[8:], hardness, generator, batch=12,
                      hard_fraction=0.5, clean_fraction=0.25, relation_weight=1.0)
    optimizer = torch.optim.SGD(param_groups(model, 5e-4), lr=0.05, momentum=0.9,
                                nesterov=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(1, 4))
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    for _ in range(2):
        loss, cos = step(model, optimizer)
        scheduler.step()
        _on_cpu(loss, cos)
    # the student's convolutions ran in bf16 under autocast, in float32 without
    assert conv_dtypes == [torch.bfloat16 if mixed_precision else torch.float32] * 2
    _on_cpu(mean, hardness, *model.parameters(), *model.buffers())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert bool((hardness != 0.5).any())  # the picked faces' recent 1 - cos was recorded
    val_clean = views.clean(faces[:8])
    assert np.isfinite(mean_cosine(model, val_clean, targets(val_clean)))
    if isinstance(model, LiteMobileFaceNet):  # the checkpoint is of the real student
        args = parse_args(["--bundle", "b", "--out", str(tmp_path), "--device", "cpu"])
        state = resume_state(model, optimizer, scheduler, 2, 4, args, target_mean=mean.cpu(),
                             hardness=hardness.cpu(), train_seconds=1.0, views_seen=24)
        save_progress(tmp_path, {"step": 2, "val_cos": 0.0}, [], state, -2.0)
        assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()


def test_a_stop_request_checkpoints_then_ends(tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    stop.set()  # as main's SIGTERM handler does: the run ends after its current step
    record = train(_args(tmp_path, "--init", "scratch", "--steps", "50"), SmallTeacher(),
                   _canvases(), stop=stop)
    assert record["step"] == 1 and (tmp_path / "last.pt").exists()


GPU_PATH = ("gpu_views.py", "gpu_degrade.py", "gpu_occlusion.py", "online_distill.py",
            "onnx_student.py")


def test_numpy_leaves_the_device_only_through_cpu() -> None:
    """Every ``.numpy()`` on the GPU path is called on ``.cpu()``'s result (on a CUDA tensor
    a bare ``.numpy()`` raises; on the CPU, where the tests run, it would pass)."""
    folder = Path(gpu_views.__file__).parent
    bare = []
    for name in GPU_PATH:
        for node in ast.walk(ast.parse((folder / name).read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "numpy"):
                receiver = node.func.value
                if not (isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Attribute)
                        and receiver.func.attr == "cpu"):
                    bare.append(f"{name}:{node.lineno}")
    assert not bare, f".numpy() without .cpu(): {bare}"
