"""The shipped student back in PyTorch, from its ONNX file, and the two changes that keep its
function: BatchNorm calibration and a rotation of its output.

The shipped model exists only as ONNX (BatchNorm folded, PReLU and ECA rewritten for the CPU):
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

from faceguard.training.cpu_graph import kernel_from_band
from faceguard.training.model import ECA, Bottleneck, ConvBN, LiteMobileFaceNet

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
    convs, slopes = model_weights(graph, tensors)
    model = LiteMobileFaceNet(hidden_widths=_hidden_widths(convs)).eval()
    pairs = conv_pairs(model)
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    if len(convs) != len(pairs) or len(slopes) != len(prelus):
        raise ValueError(f"{path}: {len(convs)} Conv and {len(slopes)} PReLU nodes, the model "
                         f"has {len(pairs)} and {len(prelus)}")
    for (name, weight, bias), (conv, bn) in zip(convs, pairs, strict=True):
        target = conv.weight
        assert isinstance(target, torch.Tensor)
        if tuple(weight.shape) != tuple(target.shape):
            raise ValueError(f"{path}: Conv {name} is {weight.shape}, the model "
                             f"expects {tuple(target.shape)}")
        with torch.no_grad():
            target.copy_(torch.from_numpy(weight.copy()))
        if bn is not None:
            if bias is None:
                raise ValueError(f"{path}: Conv {name} has no bias")
            _set_identity_bn(bn, bias)
    for prelu, slope in zip(prelus, slopes, strict=True):
        with torch.no_grad():
            prelu.weight.copy_(torch.from_numpy(slope.reshape(-1).copy()))
    return model


ConvWeights = tuple[str, np.ndarray, np.ndarray | None]


def _hidden_widths(convs: list[ConvWeights]) -> list[int] | None:
    """Each bottleneck's hidden width, read from its expand convolution (None where the file
    does not have the layout's number of convolutions: the caller reports that)."""
    layout = LiteMobileFaceNet()
    pairs = conv_pairs(layout)
    if len(convs) != len(pairs):
        return None
    expands = {id(conv) for block in layout.modules() if isinstance(block, Bottleneck)
               for conv in block.body[0].modules() if isinstance(conv, nn.Conv2d)}
    return [int(weight.shape[0]) for (_, weight, _), (conv, _) in zip(convs, pairs, strict=True)
            if id(conv) in expands]


def model_weights(graph: Any, tensors: dict[str, np.ndarray]
                  ) -> tuple[list[ConvWeights], list[np.ndarray]]:
    """The network's own convolutions (name, weight, bias) and PReLU slopes in graph order.

    Reads every form the exporter has written: PRelu nodes, the older Relu/Neg/Mul/Sub form
    (its slope is the 3-d constant of the Mul) and the CPU form of
    :mod:`faceguard.training.cpu_graph` (``prelu<k>/slope`` convolutions; ECA as a banded
    ``eca<k>/band`` convolution, read back as its 1-d kernel).
    """
    convs: list[ConvWeights] = []
    slopes: list[np.ndarray] = []
    for node in graph.node:
        name = node.name or node.output[0]
        if node.op_type == "PRelu" or (node.op_type == "Mul" and name.endswith("/slope")):
            slopes.append(tensors[node.input[1]])
        elif node.op_type == "Mul":
            slopes += [tensors[i] for i in node.input if i in tensors and tensors[i].ndim == 3]
        elif node.op_type != "Conv" or name.endswith("/rest"):
            continue
        elif name.endswith("/slope"):
            slopes.append(tensors[node.input[1]])
        elif name.endswith("/band"):
            band = tensors[node.input[1]]
            kernel = kernel_from_band(band.reshape(band.shape[0], band.shape[1]))
            convs.append((name, kernel.reshape(1, 1, -1), None))
        else:
            bias = tensors[node.input[2]] if len(node.input) > 2 else None
            convs.append((name, tensors[node.input[1]], bias))
    return convs, slopes


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
    r = torch.from_numpy(np.asarray(rotation, np.float32)).to(weight)  # on the model's device
    model.linear.weight.copy_((r.T @ weight)[:, :, None, None])
    _set_identity_bn(bn, (r.T @ shift).cpu().numpy())

