"""Functions on a tensor that a layer computes: F.relu -> nn.ReLU, with their arguments renamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from builder.importer.syntax import FUNCTIONAL, NN


@dataclass(frozen=True)
class Functional:
    """A function on a tensor that an nn layer computes: the layer and the function's arguments after the input."""

    layer: str
    args: tuple[str, ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()  # the function's defaults that differ from the layer's


def _functional_table() -> dict[str, Functional]:
    table = {
        name: Functional(layer, ("inplace",))
        for name, layer in {
            "relu": "ReLU", "relu6": "ReLU6", "selu": "SELU", "silu": "SiLU", "mish": "Mish",
            "hardswish": "Hardswish", "hardsigmoid": "Hardsigmoid",
        }.items()
    }  # fmt: skip
    table |= {name: Functional(layer) for name, layer in {
        "sigmoid": "Sigmoid", "tanh": "Tanh", "logsigmoid": "LogSigmoid", "softsign": "Softsign",
        "tanhshrink": "Tanhshrink",
    }.items()}  # fmt: skip
    table |= {name: Functional(layer, ("dim",)) for name, layer in {
        "softmax": "Softmax", "log_softmax": "LogSoftmax", "softmin": "Softmin", "glu": "GLU",
    }.items()}  # fmt: skip
    table |= {
        "elu": Functional("ELU", ("alpha", "inplace")),
        "celu": Functional("CELU", ("alpha", "inplace")),
        "leaky_relu": Functional("LeakyReLU", ("negative_slope", "inplace")),
        "gelu": Functional("GELU", ("approximate",)),
        "hardtanh": Functional("Hardtanh", ("min_val", "max_val", "inplace")),
        "softplus": Functional("Softplus", ("beta", "threshold")),
        "dropout": Functional("Dropout", ("p", "training", "inplace")),
        "pixel_shuffle": Functional("PixelShuffle", ("upscale_factor",)),
        "interpolate": Functional("Upsample", ("size", "scale_factor", "mode", "align_corners")),
        "flatten": Functional("Flatten", ("start_dim", "end_dim"), (("start_dim", 0),)),
    }
    for d in "123":
        table[f"dropout{d}d"] = Functional(f"Dropout{d}d", ("p", "training", "inplace"))
        table[f"max_pool{d}d"] = Functional(
            f"MaxPool{d}d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
        )
        table[f"avg_pool{d}d"] = Functional(
            f"AvgPool{d}d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
        )
        table[f"adaptive_avg_pool{d}d"] = Functional(f"AdaptiveAvgPool{d}d", ("output_size",))
        table[f"adaptive_max_pool{d}d"] = Functional(f"AdaptiveMaxPool{d}d", ("output_size", "return_indices"))
    return table


# torch.nn.functional.<name>(x, ...) -> the nn layer computing the same thing.
FUNCTIONALS: dict[str, Functional] = _functional_table()
# torch.<name>(x, ...) and x.<name>(...) for the few tensor functions that are layers.
TORCH_FUNCTIONS: frozenset[str] = frozenset({"relu", "sigmoid", "tanh", "softmax", "log_softmax", "flatten"})
# Transformer `activation=` values: functions and modules the catalog stores by name.
ACTIVATIONS: dict[str, str] = {
    f"{FUNCTIONAL}.relu": "relu",
    f"{FUNCTIONAL}.gelu": "gelu",
    f"{NN}.ReLU": "relu",
    f"{NN}.GELU": "gelu",
}

TENSOR_METHODS: frozenset[str] = TORCH_FUNCTIONS | {"view", "reshape"}


def _functional_for(qualified: str) -> Functional | None:
    module, _, name = qualified.rpartition(".")
    if module == FUNCTIONAL or (module == "torch" and name in TORCH_FUNCTIONS):
        return FUNCTIONALS.get(name)
    return None
