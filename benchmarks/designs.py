"""Benchmark designs: (a) a 150-layer, ~170M-parameter conv + MLP; (b) a ~12-billion-parameter MLP; (c) ResNet-50
with residual blocks (25,557,032 parameters); (d) 60 residual blocks of 1024 channels (1.1 billion parameters)."""

from __future__ import annotations

from typing import Any

from builder.design import Design, design_from_dict

# (conv blocks, output channels) per stage of design (a); a MaxPool2d(2) closes each stage.
STAGES: tuple[tuple[int, int], ...] = ((4, 32), (8, 64), (8, 96), (8, 128), (8, 128))
MLP_WIDTH = 4096
MLP_BLOCKS = 8


def _layer(type_: str, **params: Any) -> dict[str, Any]:
    return {"type": type_, "params": params}


def _conv_block(in_channels: int, out_channels: int) -> list[dict[str, Any]]:
    conv = _layer("Conv2d", in_channels=in_channels, out_channels=out_channels, kernel_size=3, padding=1)
    return [conv, _layer("BatchNorm2d", num_features=out_channels), _layer("ReLU")]


def _mlp_block(width: int) -> list[dict[str, Any]]:
    return [
        _layer("Linear", in_features=width, out_features=width),
        _layer("LayerNorm", normalized_shape=[width]),
        _layer("ReLU"),
        _layer("Dropout", p=0.1),
    ]


def conv_mlp_design(batch: int = 8) -> Design:
    """Design (a): a VGG-like conv stack on ImageNet-sized images, then a wide MLP: 150 layers, ~170M params."""
    layers: list[dict[str, Any]] = []
    channels, side = 3, 224
    for blocks, out in STAGES:
        for _ in range(blocks):
            layers += _conv_block(channels, out)
            channels = out
        layers.append(_layer("MaxPool2d", kernel_size=2))
        side //= 2
    layers += [_layer("Flatten"), _layer("Linear", in_features=channels * side * side, out_features=MLP_WIDTH)]
    layers.append(_layer("ReLU"))
    for _ in range(MLP_BLOCKS):
        layers += _mlp_block(MLP_WIDTH)
    layers += [_layer("Dropout", p=0.5), _layer("Linear", in_features=MLP_WIDTH, out_features=1000)]
    data = {"version": 1, "name": "bench-conv-mlp", "input": {"shape": [batch, 3, 224, 224]}, "layers": layers}
    return design_from_dict(data)


def huge_mlp_design() -> Design:
    """Design (b): eleven 32768x32768 Linear layers, about 11.8 billion parameters (44 GiB as float32)."""
    width = 32768
    layers = []
    for _ in range(11):
        layers += [_layer("Linear", in_features=width, out_features=width), _layer("ReLU")]
    data = {"version": 1, "name": "bench-12b", "input": {"shape": [4, width]}, "layers": layers}
    return design_from_dict(data)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> dict[str, Any]:
    params = {"in_channels": cin, "out_channels": cout, "kernel_size": kernel, "padding": kernel // 2, "bias": False}
    return _layer("Conv2d", **params, **({"stride": stride} if stride != 1 else {}))


def _bottleneck(cin: int, width: int, stride: int, label: str) -> dict[str, Any]:
    """torchvision's Bottleneck: 1x1, 3x3 (the stride), 1x1 to 4x width; a projection when the shape changes."""
    out = 4 * width
    body = [_conv(cin, width, 1), _layer("BatchNorm2d", num_features=width), _layer("ReLU"),
            _conv(width, width, 3, stride), _layer("BatchNorm2d", num_features=width), _layer("ReLU"),
            _conv(width, out, 1), _layer("BatchNorm2d", num_features=out)]  # fmt: skip
    block: dict[str, Any] = {"type": "Residual", "label": label, "body": body}
    if stride != 1 or cin != out:
        block["shortcut"] = [_conv(cin, out, 1, stride), _layer("BatchNorm2d", num_features=out)]
    return block


def resnet50_design(batch: int = 8) -> Design:
    """Design (c): ResNet-50 as torchvision builds it, each stage a projection block and a repeated identity block."""
    layers: list[dict[str, Any]] = [_conv(3, 64, 7, 2), _layer("BatchNorm2d", num_features=64), _layer("ReLU"),
                                    _layer("MaxPool2d", kernel_size=3, stride=2, padding=1)]  # fmt: skip
    cin = 64
    for stage, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), start=1):
        identity = {"type": "Sequential", "label": f"identity{stage}", "repeat": blocks - 1,
                    "layers": [_bottleneck(4 * width, width, 1, f"bottleneck{stage}"), _layer("ReLU")]}  # fmt: skip
        stage_layers = [_bottleneck(cin, width, stride, f"down{stage}"), _layer("ReLU"), identity]
        layers.append({"type": "Sequential", "label": f"layer{stage}", "layers": stage_layers})
        cin = 4 * width
    layers += [_layer("AdaptiveAvgPool2d", output_size=1), _layer("Flatten"), _layer("Linear", in_features=2048,
               out_features=1000)]  # fmt: skip
    return design_from_dict({"version": 2, "name": "bench-resnet50", "input": {"shape": [batch, 3, 224, 224]},
                             "layers": layers})  # fmt: skip


def deep_residual_design(blocks: int = 60, channels: int = 1024) -> Design:
    """Design (d): ``blocks`` residual blocks of two 3x3 convolutions, about 1.1 billion parameters."""
    body = [_conv(channels, channels, 3), _layer("BatchNorm2d", num_features=channels), _layer("ReLU"),
            _conv(channels, channels, 3), _layer("BatchNorm2d", num_features=channels)]  # fmt: skip
    layers = [{"type": "Residual", "repeat": blocks, "body": body}, _layer("ReLU")]
    data = {"version": 2, "name": "bench-deep-residual", "input": {"shape": [8, channels, 14, 14]}, "layers": layers}
    return design_from_dict(data)
