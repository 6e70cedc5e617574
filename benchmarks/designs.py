"""Benchmark designs: (a) a ~150-layer, ~170M-parameter conv + MLP; (b) a ~12-billion-parameter MLP."""

from __future__ import annotations

from typing import Any

from builder.design import Design, design_from_dict


def _layer(type_: str, **params: Any) -> dict[str, Any]:
    return {"type": type_, "params": params}


def conv_mlp_design() -> Design:
    """Design (a): 16 conv blocks on a 64x64 image, then a wide MLP (about 150 layers, 170M parameters)."""
    layers = []
    channels = 3
    for block in range(16):
        out = 64 if block < 8 else 128
        layers += [_layer("Conv2d", in_channels=channels, out_channels=out, kernel_size=3, padding=1),
                   _layer("BatchNorm2d", num_features=out), _layer("ReLU")]  # fmt: skip
        if block in (3, 7, 11, 15):
            layers.append(_layer("MaxPool2d", kernel_size=2))
        channels = out
    layers.append(_layer("Flatten"))
    width = 4096
    layers += [_layer("Linear", in_features=128 * 4 * 4, out_features=width), _layer("ReLU")]
    for _ in range(9):
        layers += [
            _layer("Linear", in_features=width, out_features=width),
            _layer("LayerNorm", normalized_shape=[width]),
            _layer("ReLU"),
            _layer("Dropout", p=0.1),
        ]
    layers += [_layer("Identity")] * (150 - len(layers) - 1) + [_layer("Linear", in_features=width, out_features=1000)]
    data = {"version": 1, "name": "bench-conv-mlp", "input": {"shape": [8, 3, 64, 64]}, "layers": layers}
    return design_from_dict(data)


def huge_mlp_design() -> Design:
    """Design (b): eleven 32768x32768 Linear layers, about 11.8 billion parameters (47 GB as float32)."""
    width = 32768
    layers = []
    for _ in range(11):
        layers += [_layer("Linear", in_features=width, out_features=width), _layer("ReLU")]
    data = {"version": 1, "name": "bench-12b", "input": {"shape": [4, width]}, "layers": layers}
    return design_from_dict(data)
