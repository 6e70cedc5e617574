"""Sample arguments: a minimal design per catalog layer (the tests' oracle), and the arguments a new layer starts with.

The sample of a layer starts from the catalog's own sample values for its required arguments
(``LayerEntry.sample_params``), shrinks the few optional ones whose torch defaults are large, and takes its input
shape from the layer's spatial suffix ("2d" -> (N, C, H, W)) or, failing that, from its palette group. The odd
layers whose input or arguments follow no rule are listed in ``OVERRIDES``. A lazy layer borrows the sample of the
class it becomes, minus the sizes it infers.

A layer added to a stack starts with the same sample values, except for the sizes torch asks of the tensor it will
receive (``INCOMING_SIZES``): a Conv2d dropped after a (1, 6, 14, 14) output starts with ``in_channels=6``. That
shape comes from a forward pass the caller already has, or from a meta-device pass of the built-in layers before
it; custom-layer code is never run for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from builder.catalog import Category, LayerEntry, catalog
from builder.design import Design, DesignError, DType, InputSpec, LayerSpec
from builder.inference import infer_shapes
from builder.tensor_ops import TOKEN_INPUTS
from builder.trace import Trace

Shape = tuple[int, ...]

BATCH = 2
CHANNELS = 3  # matches the catalog's sample in_channels / num_features / num_channels
SPATIAL: dict[int, int] = {1: 16, 2: 16, 3: 8}  # side length per number of spatial dimensions

# Input shapes for layers without a spatial suffix, by palette group.
CATEGORY_INPUTS: dict[Category, Shape] = {
    Category.LINEAR: (BATCH, 20),  # the catalog's sample in_features
    Category.ACTIVATION: (BATCH, 20),
    Category.DROPOUT: (BATCH, 20),
    Category.NORMALIZATION: (BATCH, CHANNELS, 16),  # LayerNorm's sample normalized_shape is [16]
    Category.RECURRENT: (5, BATCH, 16),  # (L, N, input_size), batch_first=False
    Category.TRANSFORMER: (5, BATCH, 16),  # (L, N, d_model)
    Category.EMBEDDING: (BATCH, 8),  # token ids
    Category.SHAPE: (BATCH, CHANNELS, 8, 8),
    Category.TENSOR_OPS: (BATCH, 4, 16),  # (N, L, D): a sequence, as a class token or a position embedding takes
}
INT_CATEGORIES: frozenset[Category] = frozenset({Category.EMBEDDING})

# Optional arguments whose torch default is too large (or absent) for a quick sample; set wherever a layer has them.
SMALL_VALUES: dict[str, Any] = {
    "d_model": 16,
    "nhead": 2,
    "dim_feedforward": 32,
    "num_encoder_layers": 1,
    "num_decoder_layers": 1,
    "scale_factor": 2.0,  # Upsample and friends need a size or a scale factor
    "output_ratio": 0.5,  # FractionalMaxPool needs an output size or ratio
}


@dataclass(frozen=True)
class Override:
    """Arguments and input shape for a layer that follows no rule."""

    params: dict[str, Any] = field(default_factory=dict)
    shape: Shape | None = None


OVERRIDES: dict[str, Override] = {
    "Fold": Override({"output_size": [4, 4], "kernel_size": 2}, (BATCH, CHANNELS * 2 * 2, 9)),  # 3x3 blocks
    "Unfold": Override({"kernel_size": 2}, (BATCH, CHANNELS, 4, 4)),
    "Unflatten": Override(shape=(BATCH, 20)),  # the catalog's sample unflattened_size is [4, 5]
    "PixelShuffle": Override(shape=(BATCH, CHANNELS * 2 * 2, 8, 8)),  # channels divisible by upscale_factor**2
    "ChannelShuffle": Override({"groups": CHANNELS}),
    "Softmax": Override({"dim": -1}),  # dim=None is deprecated and warns
    "Softmin": Override({"dim": -1}),
    "LogSoftmax": Override({"dim": -1}),
    "LSTMCell": Override(shape=(BATCH, 16)),  # one time step: (N, input_size)
    "GRUCell": Override(shape=(BATCH, 16)),
    "RNNCell": Override(shape=(BATCH, 16)),
    "Reshape": Override({"shape": [-1, 16]}),
    "Slice": Override({"start": 1, "end": 3}),
}


def spatial_dims(layer_type: str) -> int | None:
    """1, 2 or 3 for a layer named "...1d", "...2d" or "...3d"; None otherwise."""
    match = re.search(r"([123])d$", layer_type)
    return int(match.group(1)) if match else None


def _concrete_name(entry: LayerEntry) -> str:
    """The class a lazy layer becomes (LazyLinear -> Linear); the entry's own name otherwise."""
    return getattr(nn, entry.name).cls_to_become.__name__ if entry.lazy else entry.name


def _input_shape(entry: LayerEntry) -> Shape:
    override = OVERRIDES.get(entry.name)
    if override is not None and override.shape is not None:
        return override.shape
    dims = spatial_dims(entry.name)
    if dims is not None:
        return (BATCH, CHANNELS, *[SPATIAL[dims]] * dims)
    return CATEGORY_INPUTS.get(entry.category, (BATCH, CHANNELS, 16, 16))


def _params(entry: LayerEntry) -> dict[str, Any]:
    params = entry.sample_params()
    params.update({name: value for name, value in SMALL_VALUES.items() if entry.param(name) is not None})
    params.update(OVERRIDES.get(entry.name, Override()).params)
    return params


def _entry(layer_type: str) -> LayerEntry:
    entry = catalog().get(layer_type)
    if entry is None:
        raise KeyError(f"no catalog layer named '{layer_type}'; builder.catalog.catalog() lists the layer names")
    return entry


def sample_design(layer_type: str) -> Design:
    """A one-layer design for ``layer_type`` whose dummy forward pass succeeds.

    Args:
        layer_type: a catalog name, such as "Conv2d" or "LazyLinear".

    Returns:
        A design named "<layer_type> sample" with that layer alone and an input that fits it.

    Raises:
        KeyError: the catalog has no layer of that name.
    """
    entry = _entry(layer_type)
    source = _entry(_concrete_name(entry))  # a lazy layer takes the sample of the class it becomes
    params = {name: value for name, value in _params(source).items() if entry.param(name) is not None}
    dtype = DType.INT64 if source.category in INT_CATEGORIES or layer_type in TOKEN_INPUTS else DType.FLOAT32
    return Design(
        name=f"{layer_type} sample",
        input=InputSpec(shape=_input_shape(source), dtype=dtype),
        layers=(LayerSpec(type=layer_type, params=params),),
    )


# ---------------------------------------------------------------- a new layer's arguments, fitted to its input


def _last(layer_type: str, shape: Shape) -> int:
    return shape[-1]


def _channels(layer_type: str, shape: Shape) -> int | None:
    """The channel size: dim 1 of a batch for the norms that need one, else the size before the spatial dims
    (a Conv1d also takes an unbatched (C, L), so (2, 20) has 2 channels)."""
    dims = spatial_dims(layer_type)
    if dims is None or "BatchNorm" in layer_type:
        return shape[1] if len(shape) >= 2 else None
    return shape[-dims - 1] if len(shape) > dims else None


# Required arguments that are a size of the incoming tensor (batch first), and how to read them from its shape.
INCOMING_SIZES: dict[str, Callable[[str, Shape], Any]] = {
    "in_features": _last,
    "in1_features": _last,  # Bilinear gets the stack's tensor twice
    "in2_features": _last,
    "input_size": _last,
    "d_model": _last,
    "embed_dim": _last,
    "normalized_shape": lambda layer_type, shape: [shape[-1]],
    "in_channels": _channels,
    "num_features": _channels,
    "num_channels": _channels,
}
# Head counts and the size they must divide.
HEADS: dict[str, str] = {"nhead": "d_model", "num_heads": "embed_dim"}


def _divisor(size: int, at_most: int) -> int:
    """The largest divisor of ``size`` not above ``at_most`` (1 at least)."""
    return max(n for n in range(1, max(1, at_most) + 1) if size % n == 0)


def fitted_params(layer_type: str, incoming: Shape | None) -> dict[str, Any]:
    """The arguments a new catalog layer starts with when it will receive a tensor of shape ``incoming``.

    Args:
        layer_type: a catalog name, such as "Conv2d".
        incoming: the shape of the tensor it receives, batch first; None when unknown.

    Returns:
        The catalog's sample values for its required arguments, with the sizes torch asks of the input read from
        ``incoming`` (``in_channels``, ``in_features``, ``num_features``, ``normalized_shape``, ...). Without a
        shape, or where the shape has too few dimensions to read a size from, the sample value stays.

    Raises:
        KeyError: the catalog has no layer of that name.
    """
    params = _entry(layer_type).sample_params()
    if not incoming:
        return params
    for name in params:
        read = INCOMING_SIZES.get(name)
        size = read(layer_type, incoming) if read else None
        if size is not None and min(size if isinstance(size, list) else [size]) >= 1:
            params[name] = size
    for heads, size_name in HEADS.items():
        if heads in params and size_name in params:
            params[heads] = _divisor(params[size_name], params[heads])
    return params


def _traced_output(design: Design, index: int, trace: Trace) -> Shape | None:
    """The output of layer ``index - 1`` in ``trace``, if it traced the same input and the same layers up to it."""
    same_input = (trace.input_shape, trace.input_dtype) == (design.input.shape, design.input.dtype)
    traced = [(t.id, t.type) for t in trace.layers[:index]]
    if not (trace.ran and same_input and traced == [(s.id, s.type) for s in design.layers[:index]]):
        return None
    return trace.layers[index - 1].output_shape


def incoming_shape(design: Design, index: int, trace: Trace | None = None) -> Shape | None:
    """The shape a layer inserted at position ``index`` of ``design`` would receive, if it can be known safely.

    Args:
        design: the design before the insertion.
        index: where the new layer goes (0 is first; ``len(design.layers)`` appends).
        trace: a forward pass the caller already has, of ``design`` or of a design whose layers before ``index``
            are these ones with these arguments; used when it got that far.

    Returns:
        The design's input shape at position 0; else the output shape of the layer before, from ``trace`` or from
        a meta-device forward pass of the layers before ``index``. None when that pass fails, or when a layer
        before ``index`` is a custom layer the trace does not cover: its code is never run for this.
    """
    if index == 0:
        return design.input.shape
    known = _traced_output(design, index, trace) if trace is not None else None
    if known is not None:
        return known
    before = design.layers[:index]
    if any(layer.type not in catalog() for layer in before):
        return None
    try:
        return infer_shapes(design.model_copy(update={"layers": before, "custom_layers": ()})).output_shape
    except DesignError:
        return None
