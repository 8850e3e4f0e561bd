"""SFace as an fp32 PyTorch network (for GPU distillation), loaded from the prepared ONNX file.

The network is rebuilt from our own module definitions: a 3x3 stem (3 -> 32), then 13
depthwise-separable blocks (depthwise 3x3 + BN + PReLU, pointwise 1x1 + BN + PReLU; stride 2
in blocks 2, 4, 6 and 12, so 112 -> 7), BN, flatten (1024 x 7 x 7), a 50176 -> 128 linear
layer and BN. No shortcuts. Weights are the block-quantised ONNX ones dequantised here
(``(q - zero_point) * scale`` per block of the input axis) and checked by name and shape.

Input: float32 NCHW RGB in 0..255 (the network subtracts 127.5 and scales by 1/128 itself,
as the ONNX graph does). Output: the raw 128-d vector (L2-normalise it yourself).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

# (output channels, depthwise stride) of the 13 separable blocks conv_2 .. conv_14
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
STEM_CHANNELS = 32
BN_EPS = 1e-3
HEAD_BN_EPS = 2e-5
FEATURE_SIDE = 7


class ConvBnPrelu(nn.Module):
    """Conv (no bias) + BN + PReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SFaceNet(nn.Module):
    """SFace's MobileNet-style network, fp32."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBnPrelu(3, STEM_CHANNELS, 3, 1, 1)]
        channels = STEM_CHANNELS
        for cout, stride in BLOCKS:
            layers.append(ConvBnPrelu(channels, channels, 3, stride, channels))
            layers.append(ConvBnPrelu(channels, cout, 1, 1, 1))
            channels = cout
        self.features = nn.Sequential(*layers)
        self.bn1 = nn.BatchNorm2d(channels, eps=HEAD_BN_EPS)
        self.fc = nn.Linear(channels * FEATURE_SIDE * FEATURE_SIDE, 128)
        self.fc_bn = nn.BatchNorm1d(128, eps=HEAD_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 127.5) * 0.0078125
        x = self.bn1(self.features(x))
        return self.fc_bn(self.fc(torch.flatten(x, 1)))


def _onnx_names() -> list[str]:
    """ONNX layer prefixes in the order of :attr:`SFaceNet.features`."""
    names = ["conv_1"]
    for index in range(2, 2 + len(BLOCKS)):
        names += [f"conv_{index}_dw", f"conv_{index}"]
    return names


def dequantised_weights(path: Path) -> dict[str, np.ndarray]:
    """Every float tensor of the prepared SFace file, block-quantised weights dequantised.

    Keys are the ONNX output names of the DequantizeLinear nodes (``*_dequantized``) and the
    initialiser names of the float tensors.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out = {name: value for name, value in tensors.items() if value.dtype == np.float32}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        q = tensors[node.input[0]].astype(np.float32)
        scale = tensors[node.input[1]].astype(np.float32)
        zero = (tensors[node.input[2]].astype(np.float32) if len(node.input) > 2
                else np.zeros_like(scale))
        axis, block = int(attrs.get("axis", 1)), int(attrs.get("block_size", 0))
        if block:
            scale = np.repeat(scale, block, axis=axis).take(range(q.shape[axis]), axis=axis)
            zero = np.repeat(zero, block, axis=axis).take(range(q.shape[axis]), axis=axis)
        out[node.output[0]] = ((q - zero) * scale).astype(np.float32)
    return out


def _reshaped(weights: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    flat = weights[f"{name}_conv2d_weight_dequantized"]
    if flat.size != int(np.prod(shape)):
        raise ValueError(f"{name}: {flat.shape} does not fit {shape}")
    return flat.reshape(shape)


def load_sface_torch(path: Path | None = None) -> SFaceNet:
    """SFaceNet in eval mode with the dequantised weights of the prepared file."""
    from faceguard.training.sface import prepared_sface_path

    weights = dequantised_weights(path or prepared_sface_path())
    net = SFaceNet().eval()
    state: dict[str, torch.Tensor] = {}

    def put(key: str, value: np.ndarray) -> None:
        state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

    def put_bn(key: str, prefix: str) -> None:
        put(f"{key}.weight", weights[f"{prefix}_gamma"])
        put(f"{key}.bias", weights[f"{prefix}_beta"])
        put(f"{key}.running_mean", weights[f"{prefix}_moving_mean"])
        put(f"{key}.running_var", weights[f"{prefix}_moving_var"])

    for index, name in enumerate(_onnx_names()):
        layer = net.features[index]
        assert isinstance(layer, ConvBnPrelu)
        put(f"features.{index}.conv.weight",
            _reshaped(weights, name, tuple(layer.conv.weight.shape)))
        put_bn(f"features.{index}.bn", f"{name}_batchnorm")
        put(f"features.{index}.act.weight", weights[f"{name}_relu_gamma"].reshape(-1))
    put_bn("bn1", "bn1")
    put("fc.weight", weights["pre_fc1_weight_dequantized"])
    put("fc.bias", weights["pre_fc1_bias_dequantized"])
    put_bn("fc_bn", "fc1")
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()
                if not k.endswith("num_batches_tracked")}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        raise ValueError(f"SFace weights do not fit SFaceNet: {set(expected) ^ set(got)}")
    net.load_state_dict(state, strict=False)
    return net
