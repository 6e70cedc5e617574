"""A minimal design per catalog layer whose dummy forward pass succeeds: the palette's preview and the tests' oracle.

The sample of a layer starts from the catalog's own sample values for its required arguments
(``LayerEntry.sample_params``), shrinks the few optional ones whose torch defaults are large, and takes its input
shape from the layer's spatial suffix ("2d" -> (N, C, H, W)) or, failing that, from its palette group. The odd
layers whose input or arguments follow no rule are listed in ``OVERRIDES``. A lazy layer borrows the sample of the
class it becomes, minus the sizes it infers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from builder.catalog import Category, LayerEntry, catalog
from builder.design import Design, DType, InputSpec, LayerSpec

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
    dtype = DType.INT64 if source.category in INT_CATEGORIES else DType.FLOAT32
    return Design(
        name=f"{layer_type} sample",
        input=InputSpec(shape=_input_shape(source), dtype=dtype),
        layers=(LayerSpec(type=layer_type, params=params),),
    )
