"""Where a layer's parameter count comes from: the count as a formula over the shapes torch built.

``LazyLinear(256) on 20 features: 256 x 20 + 256 = 5,376``: one term per parameter tensor, the product of its
shape, read off what torch built (a trace's ``params_after``, or a module), never from a table per layer type.
Buffers (BatchNorm's running statistics) are not trained and not counted as parameters; they are added in
brackets when known: ``BatchNorm2d(64): 64 + 64 = 128 (+ 129 buffer values: 64 + 64 + 1)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from builder.adapters import call_layer
from builder.catalog import call_style, catalog
from builder.design import BLOCK_TYPES, DType, LayerSpec
from builder.layer_run import TORCH_DTYPES, build_layer, torch_params
from builder.layer_table import key_args, split_call
from builder.trace import LayerTrace, ParamInfo, Trace

TIMES = " x "  # the and the book's notation: 256 x 20
TABLE_TERMS = 6  # a table cell shows at most this many terms, then says how many more there are

# How a lazy layer's inferred size reads after "on": LazyLinear(256) on 20 features.
INFERRED_WORDS: dict[str, str] = {
    "in_features": "features",
    "in_channels": "channels",
    "num_features": "features",
}


@dataclass(frozen=True)
class Term:
    """One tensor of a layer: its name and shape (None while it is uninitialized)."""

    name: str
    shape: tuple[int, ...] | None

    @property
    def count(self) -> int:
        """Its number of values (0 while uninitialized)."""
        return 0 if self.shape is None else math.prod(self.shape)

    def product(self) -> str:
        """The shape as a product, ``64 x 3 x 3 x 3``; a 0-d tensor is ``1``."""
        if self.shape is None:
            return "?"
        return TIMES.join(f"{size:,}" for size in self.shape) or "1"


@dataclass(frozen=True)
class Formula:
    """A layer's parameter count as a sum of shape products, with its buffers beside it."""

    head: str  # "Conv2d(3, 64, 3)", "LazyLinear(256) on 20 features"
    params: tuple[Term, ...]
    buffers: tuple[Term, ...] = ()

    @property
    def total(self) -> int:
        """The parameter count: the sum of every parameter's number of values."""
        return sum(term.count for term in self.params)

    @property
    def buffer_total(self) -> int:
        return sum(term.count for term in self.buffers)

    @property
    def pending(self) -> tuple[str, ...]:
        """Names of the parameters still uninitialized (a lazy layer before its first forward pass)."""
        return tuple(term.name for term in self.params if term.shape is None)

    def expression(self, limit: int | None = None) -> str:
        """``256 x 20 + 256 = 5,376``; ``no parameters`` when there are none.

        Args:
            limit: show at most this many terms, then ``+ ... (n more)``; all of them when None.
        """
        if not self.params:
            text = "no parameters"
        elif self.pending:
            names = ", ".join(self.pending)
            text = f"? ({names} uninitialized until the forward pass)"
        else:
            text = f"{_sum(self.params, limit)} = {self.total:,}"
        if self.buffers and not any(term.shape is None for term in self.buffers):
            text += f" (+ {self.buffer_total:,} buffer values: {_sum(self.buffers, limit)})"
        return text

    def text(self, limit: int | None = None) -> str:
        """The head and the expression: ``Conv2d(3, 64, 3): 64 x 3 x 3 x 3 + 64 = 1,792``."""
        return f"{self.head}: {self.expression(limit)}"

    def rows(self) -> list[dict[str, Any]]:
        """One row per tensor, for a table: name, shape, product, count, and whether it is trained."""
        return [
            {
                "tensor": term.name,
                "kind": kind,
                "shape": "?" if term.shape is None else str(term.shape),
                "product": term.product(),
                "values": term.count,
            }
            for kind, terms in (("parameter", self.params), ("buffer", self.buffers))
            for term in terms
        ]


def _sum(terms: Sequence[Term], limit: int | None) -> str:
    shown = terms if limit is None or len(terms) <= limit else terms[:limit]
    text = " + ".join(term.product() for term in shown)
    if len(shown) < len(terms):
        text += f" + ... ({len(terms) - len(shown)} more)"
    return text


# ---------------------------------------------------------------- the layer as the book writes it


def _literal(value: Any) -> str:
    return repr(value)


def call_text(layer_type: str, params: Mapping[str, Any], prefix: str = "") -> str:
    """The layer's constructor call as the book writes it: ``Conv2d(3, 64, 3)``, ``Dropout(p=0.2)``.

    The arguments worth showing (``builder.layer_table.key_args``: required ones and those away from torch's default),
    split between position and keyword as the stack shows them (``builder.layer_table.split_call``), written as
    Python literals.
    """
    shown = key_args(LayerSpec(type=layer_type, params=dict(params)))
    entry = catalog().get(layer_type)
    positional, named = split_call(layer_type, torch_params(entry, shown) if entry else shown)
    args = [*map(_literal, positional), *(f"{name}={_literal(value)}" for name, value in named)]
    return f"{prefix}{layer_type}({', '.join(args)})"


def head_text(layer_type: str, params: Mapping[str, Any], inferred: Mapping[str, Any] | None = None) -> str:
    """``LazyLinear(256) on 20 features``: the call, and what a lazy layer inferred."""
    head = call_text(layer_type, params)
    if not inferred:
        return head
    parts = [
        f"{value:,} {INFERRED_WORDS[name].removesuffix('s') if value == 1 else INFERRED_WORDS[name]}"
        if name in INFERRED_WORDS and isinstance(value, int)
        else f"{name} = {value}"
        for name, value in inferred.items()
    ]
    return f"{head} on {', '.join(parts)}"


# ---------------------------------------------------------------- formulas from what torch built


def formula(
    layer_type: str,
    params: Mapping[str, Any],
    tensors: Sequence[ParamInfo],
    buffers: Sequence[ParamInfo] = (),
    inferred: Mapping[str, Any] | None = None,
) -> Formula:
    """A layer's parameter count as a formula over the shapes torch built.

    Args:
        layer_type: the catalog name or custom layer's name (for the head).
        params: the layer's arguments as the design holds them.
        tensors: its parameters' names and shapes, e.g. a trace's ``LayerTrace.params_after``.
        buffers: its buffers' names and shapes, when known (``layer_buffers``, ``module_tensors``).
        inferred: sizes a lazy layer inferred (``LayerTrace.inferred``), shown in the head.

    Returns:
        A Formula whose ``total`` is the sum of the tensors' numbers of values.
    """
    return Formula(
        head=head_text(layer_type, params, inferred),
        params=tuple(Term(t.name, t.shape) for t in tensors),
        buffers=tuple(Term(b.name, b.shape) for b in buffers),
    )


def trace_formula(layer: LayerTrace, spec: LayerSpec | None = None, buffers: Sequence[ParamInfo] = ()) -> Formula:
    """The formula of a traced layer (its parameters after the forward pass, or as built before it).

    ``spec`` (the design's layer) gives the head its arguments; without it the head is the bare type.
    """
    params = spec.params if spec is not None else {}
    return formula(layer.type, params, layer.params_after, buffers, layer.inferred)


def table_formula(layer: LayerTrace, trace: Trace | None = None) -> str:
    """A table cell: ``256 x 20 + 256 = 5,376``, at most ``TABLE_TERMS`` terms (buffers left out).

    A block's cell adds up its layers' counts (``584 + 584 = 1,168``) when ``trace`` holds them.
    """
    if is_block_record(layer):
        return block_sum(trace, layer, TABLE_TERMS) if trace is not None else f"{layer.params:,} (its layers' sum)"
    return Formula("", tuple(Term(t.name, t.shape) for t in layer.params_after)).expression(TABLE_TERMS)


def is_block_record(layer: LayerTrace) -> bool:
    """Whether a trace record is a block's (Sequential, Residual, Parallel): it holds layers, not tensors."""
    return layer.type in BLOCK_TYPES and not layer.params_after


def block_layers(trace: Trace, record: LayerTrace) -> list[LayerTrace]:
    """The layers inside a block (every copy of a repeated one), as they ran, blocks within left out."""
    prefix = record.path or record.id
    inside = [t for t in trace.inner if t.path.startswith((f"{prefix}/", f"{prefix}#"))]
    return [t for t in inside if not is_block_record(t)]


def block_sum(trace: Trace, record: LayerTrace, limit: int | None = None) -> str:
    """A block's count as the sum of its layers' (those with parameters): ``584 + 584 = 1,168``."""
    counts = [t.params for t in block_layers(trace, record) if t.params]
    if not counts:
        return "no parameters"
    shown = counts if limit is None or len(counts) <= limit else counts[:limit]
    text = " + ".join(f"{count:,}" for count in shown)
    if len(shown) < len(counts):
        text += f" + ... ({len(counts) - len(shown)} more)"
    return f"{text} = {sum(counts):,}"


def module_tensors(module: nn.Module) -> tuple[tuple[ParamInfo, ...], tuple[ParamInfo, ...]]:
    """A module's (parameters, buffers) as names and shapes; None for the uninitialized ones."""

    def shape(tensor: torch.Tensor) -> tuple[int, ...] | None:
        uninitialized = isinstance(tensor, UninitializedParameter | UninitializedBuffer)
        return None if uninitialized else tuple(tensor.shape)

    params = tuple(ParamInfo(name, shape(p)) for name, p in module.named_parameters())
    buffers = tuple(ParamInfo(name, shape(b)) for name, b in module.named_buffers())
    return params, buffers


def layer_buffers(spec: LayerSpec, input_shape: Sequence[int] | None, dtype: DType = DType.FLOAT32) -> tuple:
    """A built-in layer's buffers (names and shapes), read off the layer built on the meta device.

    A lazy layer is run once on a meta input of ``input_shape`` so its buffers take their sizes. Custom layers
    (never run here) and layers that cannot be built give ``()``.
    """
    if spec.type not in catalog():
        return ()
    key = json.dumps(spec.params, sort_keys=True, default=str)
    return _buffers(spec.type, key, tuple(input_shape) if input_shape else None, dtype)


@lru_cache(maxsize=1024)
def _buffers(layer_type: str, params: str, input_shape: tuple[int, ...] | None, dtype: DType) -> tuple:
    spec = LayerSpec(type=layer_type, params=json.loads(params))
    try:
        module = build_layer(spec, {}, "meta", dtype)
        _, buffers = module_tensors(module)
        if any(b.shape is None for b in buffers) and input_shape is not None:
            x = torch.empty(input_shape, dtype=TORCH_DTYPES[dtype], device="meta")
            with torch.no_grad():
                call_layer(module, call_style(spec.type, spec.params), x)
            _, buffers = module_tensors(module)
    except Exception:  # the buffers are an aside: a layer that cannot be built here simply shows none
        return ()
    return buffers


def design_formula(spec: LayerSpec, layer: LayerTrace, dtype: DType = DType.FLOAT32) -> Formula:
    """The whole formula for the selected layer: its arguments, its parameters as traced, its buffers."""
    return trace_formula(layer, spec, layer_buffers(spec, layer.input_shape, dtype))
