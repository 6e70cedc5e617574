"""The builder's own layers: tensor operations and learnable tensors that ``forward`` uses between modules.

torch.nn has no module for ``x.permute(0, 2, 1)``, ``x[:, 0]``, ``F.one_hot(x, n)`` or a class token, so these
tiny modules stand for them in a stack, each a single torch call. They are plain PyTorch: the sequential export
copies a class's source into the generated file (``inspect.getsource``), so they use only ``torch`` and ``nn``.

The learnable ones are lazy when their size is ``"auto"``: an ``UninitializedParameter`` that takes its shape from
the first input, as torch's own lazy layers do (``LazyModuleMixin``), so inference on the meta device materializes
them and reports the size they took (``inferred_arguments``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class Permute(nn.Module):
    """Reorder the dimensions, x.permute(*dims): dims lists every dimension of the input once.

    Shape:
        - Input: (*) with one size per entry of dims
        - Output: the same sizes, in the order dims gives
    """

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


class Transpose(nn.Module):
    """Swap two dimensions, x.transpose(dim0, dim1) (the book's swapaxes).

    Shape:
        - Input: (*), any number of dimensions
        - Output: the same sizes with dim0 and dim1 swapped
    """

    def __init__(self, dim0: int, dim1: int) -> None:
        super().__init__()
        self.dim0 = dim0
        self.dim1 = dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)


class Reshape(nn.Module):
    """Give the tensor a new shape, batch included, x.reshape(*shape): one size may be -1, inferred from the rest.

    Shape:
        - Input: (*), as many elements as shape holds
        - Output: shape, its -1 replaced by the size that fits
    """

    def __init__(self, shape: list[int]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.shape)


class Select(nn.Module):
    """Pick one index along a dimension and drop that dimension, x.select(dim, index): x[:, 0] is Select(1, 0).

    Shape:
        - Input: (*), at least dim + 1 dimensions
        - Output: the input's sizes without dim
    """

    def __init__(self, dim: int, index: int) -> None:
        super().__init__()
        self.dim = dim
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.select(self.dim, self.index)


class Slice(nn.Module):
    """Keep a range of indices along a dimension, x[:, start:end:step] for dim 1 (None: from the start, to the end).

    Shape:
        - Input: (*), at least dim + 1 dimensions
        - Output: the input's sizes, dim cut to the indices kept
    """

    def __init__(self, dim: int, start: int | None = None, end: int | None = None, step: int = 1) -> None:
        super().__init__()
        self.dim = dim
        self.start = start
        self.end = end
        self.step = step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        part = slice(self.start, self.end, self.step)
        if self.dim >= 0:
            return x[(slice(None),) * self.dim + (part,)]
        return x[(..., part) + (slice(None),) * (-self.dim - 1)]


class Mean(nn.Module):
    """Average over dimensions, x.mean(dims, keepdim): Mean([2, 3]) is global average pooling of (N, C, H, W).

    Shape:
        - Input: (*)
        - Output: the input's sizes without dims (kept as 1 with keepdim)
    """

    def __init__(self, dims: list[int], keepdim: bool = False) -> None:
        super().__init__()
        self.dims = tuple(dims)
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(self.dims, keepdim=self.keepdim)


class OneHot(nn.Module):
    """Turn integer token ids into one-hot float vectors, F.one_hot(x, num_classes).float(): (*) -> (*, num_classes).

    Shape:
        - Input: (*), integer token ids below num_classes
        - Output: (*, num_classes), float32
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x, self.num_classes).float()


class MulConstant(nn.Module):
    """Multiply by a constant, x * factor (such as attention's 1 / sqrt(d)).

    Shape:
        - Input: (*)
        - Output: (*), same shape as the input
    """

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class AddParameter(nn.modules.lazy.LazyModuleMixin, nn.Module):
    """Add a learned tensor, broadcast over the batch (a position embedding), x + parameter; shape "auto" is the
    input's shape with a batch of 1.

    Shape:
        - Input: (N, *)
        - Output: (N, *), same shape as the input
    """

    def __init__(self, shape: list[int] | str = "auto") -> None:
        super().__init__()
        self.shape = shape
        self.parameter = nn.UninitializedParameter() if shape == "auto" else nn.Parameter(torch.zeros(shape))

    def initialize_parameters(self, x: torch.Tensor) -> None:
        if self.has_uninitialized_params():
            with torch.no_grad():
                self.parameter.materialize((1, *x.shape[1:]))
                self.parameter.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.parameter


class MulParameter(nn.modules.lazy.LazyModuleMixin, nn.Module):
    """Multiply by a learned tensor, broadcast (a layer scale), x * parameter, starting at init; shape "auto" is
    the input's last dimension (one factor per feature, channels last).

    Shape:
        - Input: (*)
        - Output: (*), same shape as the input
    """

    def __init__(self, shape: list[int] | str = "auto", init: float = 1.0) -> None:
        super().__init__()
        self.shape = shape
        self.init = init
        self.parameter = nn.UninitializedParameter() if shape == "auto" else nn.Parameter(torch.full(shape, init))

    def initialize_parameters(self, x: torch.Tensor) -> None:
        if self.has_uninitialized_params():
            with torch.no_grad():
                self.parameter.materialize((x.shape[-1],))
                self.parameter.fill_(self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.parameter


class PrependToken(nn.modules.lazy.LazyModuleMixin, nn.Module):
    """Put a learned token in front of a sequence (a class token): (N, L, dim) -> (N, L + 1, dim); dim "auto" is
    the input's last dimension.

    Shape:
        - Input: (N, L, dim)
        - Output: (N, L + 1, dim)
    """

    def __init__(self, dim: int | str = "auto") -> None:
        super().__init__()
        self.dim = dim
        self.token = nn.UninitializedParameter() if dim == "auto" else nn.Parameter(torch.zeros(1, 1, dim))

    def initialize_parameters(self, x: torch.Tensor) -> None:
        if self.has_uninitialized_params():
            with torch.no_grad():
                self.token.materialize((1, 1, x.shape[-1]))
                self.token.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.token.expand(x.shape[0], -1, -1), x), dim=1)


# The layers, in palette order: the operations, then the learnable tensors.
TENSOR_OPS: dict[str, type[nn.Module]] = {
    cls.__name__: cls
    for cls in (
        Permute,
        Transpose,
        Reshape,
        Select,
        Slice,
        Mean,
        OneHot,
        MulConstant,
        AddParameter,
        MulParameter,
        PrependToken,
    )
}
# torch.nn layers that are tensor operations too: listed in the Tensor ops group as well as in their own.
ALSO_TENSOR_OPS: tuple[str, ...] = ("Flatten", "Unflatten", "ChannelShuffle")

AUTO = "auto"
# Arguments whose words or range the signature cannot state: {(layer, argument): ParamSpec fields}.
ARGUMENT_RULES: dict[tuple[str, str], dict[str, Any]] = {
    ("Reshape", "shape"): {"minimum": -1},
    ("Slice", "step"): {"minimum": 1},
    ("OneHot", "num_classes"): {"minimum": 1},
    ("AddParameter", "shape"): {"choices": (AUTO,), "minimum": 1},
    ("MulParameter", "shape"): {"choices": (AUTO,), "minimum": 1},
    ("PrependToken", "dim"): {"choices": (AUTO,), "minimum": 1},
}
# Values a newly added layer starts with, for its required arguments.
SAMPLES: dict[str, dict[str, Any]] = {
    "Permute": {"dims": [0, 2, 1]},
    "Transpose": {"dim0": 0, "dim1": 1},
    "Reshape": {"shape": [-1]},
    "Select": {"dim": 1, "index": 0},
    "Slice": {"dim": 1},
    "Mean": {"dims": [-1]},
    "OneHot": {"num_classes": 10},
    "MulConstant": {"factor": 0.5},
}
# Layers that take integer token ids.
TOKEN_INPUTS: frozenset[str] = frozenset({"OneHot"})
# Where each layer's torch call is documented.
DOCS: dict[str, str] = {
    "Permute": "torch.permute", "Transpose": "torch.transpose", "Reshape": "torch.reshape",
    "Select": "torch.select", "Slice": "torch.narrow", "Mean": "torch.mean",
    "OneHot": "torch.nn.functional.one_hot", "MulConstant": "torch.mul", "AddParameter": "torch.nn.parameter.Parameter",
    "MulParameter": "torch.nn.parameter.Parameter", "PrependToken": "torch.cat",
}  # fmt: skip
# What an "auto" argument became, read off the materialized layer.
AUTO_ARGUMENTS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "AddParameter": ("shape", lambda layer: list(layer.parameter.shape)),
    "MulParameter": ("shape", lambda layer: list(layer.parameter.shape)),
    "PrependToken": ("dim", lambda layer: int(layer.token.shape[-1])),
}


def doc_url(name: str) -> str:
    """The PyTorch documentation of the call a tensor op stands for."""
    return f"https://pytorch.org/docs/stable/generated/{DOCS[name]}.html"


def inferred_arguments(layer_type: str, params: dict[str, Any], layer: nn.Module) -> dict[str, Any]:
    """The size an "auto" argument took at the first forward pass (``{"shape": [1, 65, 192]}``), else nothing."""
    rule = AUTO_ARGUMENTS.get(layer_type)
    if rule is None or params.get(rule[0], AUTO) != AUTO:
        return {}
    if any(isinstance(p, nn.UninitializedParameter) for p in layer.parameters()):
        return {}  # the layer did not run
    name, read = rule
    return {name: read(layer)}
