"""The shipped student back in PyTorch, from its ONNX file, and the two changes that keep its
function: BatchNorm calibration and a rotation of its output.

The shipped model exists only as ONNX (BatchNorm folded, PReLU rewritten):
:func:`student_from_onnx` loads the folded weights into :class:`LiteMobileFaceNet` with
BatchNorm in an identity form, and :func:`calibrate_batchnorm` gives every BatchNorm the
statistics of real faces while keeping the function unchanged (eval output equals the ONNX
output; train-mode batch statistics then start close to it). :func:`procrustes` finds the
rotation that best maps one set of vectors onto another and :func:`rotate_output` folds it
into the last linear layer (a rotation changes no cosine). Used by
:mod:`~faceguard.training.finetune_views`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from faceguard.training.model import ECA, ConvBN, LiteMobileFaceNet

ConvPair = tuple[nn.Module, nn.BatchNorm2d | None]


def conv_pairs(model: LiteMobileFaceNet) -> list[ConvPair]:
    """Every convolution in graph order with the BatchNorm folded into it (None for ECA)."""
    pairs: list[ConvPair] = []
    for module in model.modules():
        if isinstance(module, ConvBN):
            bn = module[1]
            assert isinstance(bn, nn.BatchNorm2d)
            pairs.append((module[0], bn))
        elif isinstance(module, ECA):
            pairs.append((module.conv, None))
    pairs.append((model.linear, model.bn))
    return pairs


def _set_identity_bn(bn: nn.BatchNorm2d, bias: np.ndarray) -> None:
    """BN that adds ``bias`` and does nothing else in eval mode."""
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.copy_(torch.from_numpy(np.array(bias, np.float32)))
        bn.running_mean.zero_()  # type: ignore[union-attr,unused-ignore]
        bn.running_var.fill_(1.0 - bn.eps)  # type: ignore[union-attr,unused-ignore]


def student_from_onnx(path: Path) -> LiteMobileFaceNet:
    """The exported lite MobileFaceNet back in PyTorch (BatchNorm in identity form)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    slopes = [tensors[name] for node in graph.node if node.op_type == "Mul"
              for name in node.input if name in tensors and tensors[name].ndim == 3]
    model = LiteMobileFaceNet().eval()
    pairs = conv_pairs(model)
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    if len(convs) != len(pairs) or len(slopes) != len(prelus):
        raise ValueError(f"{path}: {len(convs)} Conv and {len(slopes)} PReLU nodes, the model "
                         f"has {len(pairs)} and {len(prelus)}")
    for node, (conv, bn) in zip(convs, pairs, strict=True):
        weight = tensors[node.input[1]]
        target = conv.weight
        assert isinstance(target, torch.Tensor)
        if tuple(weight.shape) != tuple(target.shape):
            raise ValueError(f"{path}: Conv {node.output[0]} is {weight.shape}, the model "
                             f"expects {tuple(target.shape)}")
        with torch.no_grad():
            target.copy_(torch.from_numpy(weight.copy()))
        if bn is not None:
            _set_identity_bn(bn, tensors[node.input[2]])
    for prelu, slope in zip(prelus, slopes, strict=True):
        with torch.no_grad():
            prelu.weight.copy_(torch.from_numpy(slope.reshape(-1).copy()))
    return model


@torch.no_grad()
def calibrate_batchnorm(model: LiteMobileFaceNet, x: torch.Tensor) -> None:
    """Give each BatchNorm the statistics of its input on ``x`` without changing the output.

    The eval-mode map of a BatchNorm is ``scale * z + shift``; with the statistics (mu, var)
    of ``z`` on ``x`` it becomes running stats (mu, var), weight ``scale * sqrt(var + eps)``
    and bias ``shift + scale * mu``: the same map, and train-mode batch statistics start near
    the stored ones.
    """
    model.eval()
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for index, (conv, bn) in enumerate(conv_pairs(model)):
        if bn is None:
            continue

        def hook(_m: nn.Module, _i: Any, out: torch.Tensor, index: int = index) -> None:
            stats[index] = (out.mean(dim=(0, 2, 3)), out.var(dim=(0, 2, 3), unbiased=False))

        handles.append(conv.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    for index, (_conv, bn) in enumerate(conv_pairs(model)):
        if bn is None:
            continue
        mu, var = stats[index]
        rm, rv = bn.running_mean, bn.running_var
        assert rm is not None and rv is not None
        scale = bn.weight / torch.sqrt(rv + bn.eps)  # current eval map: scale * z + shift
        shift = bn.bias - rm * scale
        new_weight = scale * torch.sqrt(var + bn.eps)
        bn.running_mean.copy_(mu)  # type: ignore[union-attr,unused-ignore]
        bn.running_var.copy_(var)  # type: ignore[union-attr,unused-ignore]
        bn.weight.copy_(new_weight)
        bn.bias.copy_(shift + scale * mu)


def procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Orthogonal R (D, D) minimising ||source @ R - target|| (rows are vectors)."""
    u, _s, vt = np.linalg.svd(source.astype(np.float64).T @ target.astype(np.float64))
    return (u @ vt).astype(np.float32)


@torch.no_grad()
def rotate_output(model: LiteMobileFaceNet, rotation: np.ndarray) -> None:
    """Make the model output ``output @ rotation`` (last layer with BatchNorm in identity form).

    Call before :func:`calibrate_batchnorm` (the last BatchNorm must be the identity plus a
    bias, as :func:`student_from_onnx` leaves it).
    """
    bn = model.bn
    rm, rv = bn.running_mean, bn.running_var
    assert rm is not None and rv is not None
    scale = bn.weight / torch.sqrt(rv + bn.eps)
    shift = bn.bias - rm * scale
    weight = model.linear.weight[:, :, 0, 0] * scale[:, None]  # (128, 512)
    r = torch.from_numpy(rotation)
    model.linear.weight.copy_((r.T @ weight)[:, :, None, None])
    _set_identity_bn(bn, (r.T @ shift).numpy())

