"""Benchmark designs: (a) a 150-layer, ~170M-parameter conv + MLP; (b) a ~12-billion-parameter MLP."""

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
