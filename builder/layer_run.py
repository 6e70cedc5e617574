"""One layer of a dummy forward pass: build it, run it (on the meta device, or on small real tensors when it
needs values or is small enough to skip the meta device's start-up), and record what it did.

``builder.inference`` walks a design's stacks and blocks with these; ``builder.values`` and the sandbox use the
builders and the dummy input.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter
from torch.utils.flop_counter import FlopCounterMode

from builder.adapters import call_layer
from builder.catalog import CallStyle, Category, LayerEntry, ParamKind, call_style, catalog
from builder.design import Design, DType, LayerSpec, is_block, walk
from builder.fast_path import run_small
from builder.tensor_ops import TOKEN_INPUTS, inferred_arguments
from builder.trace import LayerTrace, ParamInfo

TORCH_DTYPES: dict[DType, torch.dtype] = {
    DType.FLOAT32: torch.float32,
    DType.FLOAT64: torch.float64,
    DType.INT64: torch.int64,
}
FLOP_CATEGORIES = frozenset(
    {Category.LINEAR, Category.CONVOLUTION, Category.RECURRENT, Category.TRANSFORMER, Category.EMBEDDING, Category.LAZY}
)
# Real values cost real memory: a layer that needs them runs on the CPU only up to these sizes.
REAL_INPUT_LIMIT = 2**24  # elements of the input (64 MB as float32)
REAL_PARAM_LIMIT = 2**28  # elements of the layer's parameters (1 GB as float32)
# Errors that mean "this op needs real values", not "these shapes do not fit".
NEEDS_VALUES = ("meta tensor", "on meta", "'meta'", "meta device", "data-dependent", "data dependent")


def torch_params(entry: LayerEntry | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """Design params as torch wants them: JSON lists become tuples, except list-valued shapes."""
    converted = {}
    for name, value in params.items():
        spec = entry.param(name) if entry else None
        keep_list = spec is not None and spec.kind is ParamKind.SHAPE
        converted[name] = tuple(value) if isinstance(value, list) and not keep_list else value
    return converted


def build_layer(spec: LayerSpec, custom: Mapping[str, type[nn.Module]], device: str, dtype: DType) -> nn.Module:
    """Construct one layer on ``device``; float64 designs get float64 layers."""
    entry = catalog().get(spec.type)
    factory = entry.factory if entry else custom[spec.type]
    with torch.device(device):
        module = factory(**torch_params(entry, spec.params))
    if dtype is DType.FLOAT64:
        module = module.to(torch.float64)
    return module.eval()


def param_state(module: nn.Module) -> tuple[ParamInfo, ...]:
    """Every parameter's name and shape (None while uninitialized), in registration order."""
    return tuple(
        ParamInfo(name, None if isinstance(p, UninitializedParameter) else tuple(p.shape))
        for name, p in module.named_parameters()
    )


def inferred_sizes(spec: LayerSpec, module: nn.Module) -> dict[str, Any]:
    """Constructor arguments a lazy layer inferred (``in_features=20``), read off the materialized module."""
    entry = catalog().get(spec.type)
    if entry is not None and not entry.builtin:
        return inferred_arguments(spec.type, spec.params, module)
    if entry is None or not entry.lazy:
        return {}
    concrete = inspect.signature(type(module).__init__).parameters
    known = {p.name for p in entry.params}
    return {
        name: getattr(module, name)
        for name in concrete
        if name not in known and name not in ("self", "device", "dtype") and hasattr(module, name)
    }


def count_params(module: nn.Module) -> tuple[int, int]:
    numel = nbytes = 0
    for p in module.parameters():
        if not isinstance(p, UninitializedParameter):
            numel += p.numel()
            nbytes += p.numel() * p.element_size()
    return numel, nbytes


def token_range(design: Design) -> int:
    """Token ids for an int64 input are drawn below the smallest Embedding's vocabulary (or OneHot's classes)."""
    sizes = [
        located.entry.params.get("num_classes" if located.entry.type in TOKEN_INPUTS else "num_embeddings", 2)
        for located in walk(design.layers)
        if located.entry.type in ("Embedding", "EmbeddingBag", *TOKEN_INPUTS) and not is_block(located.entry)
    ]
    return max(1, min(sizes, default=2))


def dummy_input(design: Design, device: str) -> torch.Tensor:
    """The dummy input tensor (random values when real; meta tensors have none)."""
    shape, dtype = design.input.shape, TORCH_DTYPES[design.input.dtype]
    if device == "meta":
        return torch.empty(shape, dtype=dtype, device="meta")
    generator = torch.Generator().manual_seed(0)
    if dtype is torch.int64:
        return torch.randint(0, token_range(design), shape, generator=generator)
    return torch.randn(shape, dtype=dtype, generator=generator)


def needs_values(error: Exception) -> bool:
    """Whether a meta-device failure means the op needs real values rather than other shapes."""
    text = str(error).lower()
    return isinstance(error, NotImplementedError) or any(marker in text for marker in NEEDS_VALUES)


def real_like(x: torch.Tensor, high: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if x.dtype in (torch.int64, torch.int32):
        return torch.randint(0, high, tuple(x.shape), generator=generator)
    return torch.randn(tuple(x.shape), dtype=x.dtype, generator=generator)


def counts_flops(layer_type: str) -> bool:
    """Whether to run a layer under FlopCounterMode, which has formulas only for matmul, conv and attention.

    The other built-in families (activations, pooling, normalization, dropout, padding, shape) never reach
    those ops, and counting slows the meta pass by a third; custom layers are always counted.
    """
    entry = catalog().get(layer_type)
    return entry is None or entry.category in FLOP_CATEGORIES


def forward_once(module: nn.Module, style: CallStyle, x: torch.Tensor, count: bool) -> tuple[torch.Tensor, int]:
    counter = FlopCounterMode(display=False) if count else nullcontext()
    with torch.no_grad(), counter:
        out = call_layer(module, style, x)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"returned {type(out).__name__}, but a layer in a stack must return one tensor")
    return out, counter.get_total_flops() if count else 0


@dataclass
class LayerRun:
    """The run of one layer: the module that ran, its output, its FLOPs and where it ran."""

    module: nn.Module
    out: torch.Tensor
    flops: int
    device: str = "meta"
    notes: list[str] = field(default_factory=list)


def run_layer(
    spec: LayerSpec, custom: Mapping[str, type[nn.Module]], design: Design, module: nn.Module, x: torch.Tensor
) -> LayerRun:
    """Run on meta; when the layer needs real values, run it alone on small real tensors instead."""
    style, count = call_style(spec.type, spec.params), counts_flops(spec.type)
    if spec.type in catalog():  # a small built-in layer runs on the CPU: meta's first use costs a process 1.5 s
        build = partial(build_layer, spec, custom, "cpu", design.input.dtype)
        small = run_small(module, x, style, count, build, lambda t: real_like(t, token_range(design)), spec.params)
        if small is not None:
            return LayerRun(small.module, small.out, small.flops)
    try:
        out, flops = forward_once(module, style, x, count)
        return LayerRun(module, out, flops)
    except Exception as error:
        if not needs_values(error):
            raise
        reason = str(error).splitlines()[0]
    check_real_size(module, x, reason)
    real = build_layer(spec, custom, "cpu", design.input.dtype)
    out, flops = forward_once(real, style, real_like(x, token_range(design)), count)
    note = f"ran on small real tensors: the meta device has no values ({reason})"
    return LayerRun(real, out.to("meta"), flops, "cpu", [note])


def check_real_size(module: nn.Module, x: torch.Tensor, reason: str) -> None:
    """Refuse to run a layer on real values when its input or parameters would take too much memory."""
    params = sum(p.numel() for p in module.parameters() if not isinstance(p, UninitializedParameter))
    if x.numel() > REAL_INPUT_LIMIT or params > REAL_PARAM_LIMIT:
        raise RuntimeError(
            f"this layer needs real values ({reason}), but running it for real would take an input of "
            f"{x.numel():,} elements and {params:,} parameters; the builder does that only up to "
            f"{REAL_INPUT_LIMIT:,} input elements and {REAL_PARAM_LIMIT:,} parameters: use a smaller input shape"
        )


def layer_record(
    index: int, spec: LayerSpec, x: torch.Tensor, step: LayerRun, before: tuple[ParamInfo, ...]
) -> LayerTrace:
    numel, nbytes = count_params(step.module)
    inferred = inferred_sizes(spec, step.module)
    notes = [f"{name} inferred = {value}" for name, value in inferred.items()] + step.notes
    return LayerTrace(
        index=index,
        id=spec.id,
        type=spec.type,
        input_shape=tuple(x.shape),
        output_shape=tuple(step.out.shape),
        params=numel,
        params_before=before,
        params_after=param_state(step.module),
        inferred=inferred,
        flops=step.flops,
        param_bytes=nbytes,
        activation_bytes=step.out.numel() * step.out.element_size(),
        device=step.device,
        notes=tuple(notes),
    )
