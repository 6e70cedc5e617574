"""Shape inference by a real dummy forward pass, layer by layer, on the meta device.

``infer_shapes`` is the pipeline: build each layer, run it on the previous layer's output, record what torch
reports (shapes, parameters, FLOPs, memory, lazy sizes), stop at the first failure with a diagnosis. On the
meta device no storage is allocated, so a design with billions of parameters costs no memory. A layer that
needs real values (``.item()``, a data-dependent ``if``) is re-run alone on small real tensors, and the result
says so.

A block runs each of its stacks on its input and merges their outputs (``builder.blocks.merge``), once per copy.
The records are ``builder.trace``'s. ``Trace.layers`` keeps one per top-level entry (a block's holds the
parameters and FLOPs of all its copies, merges included); ``Trace.inner`` holds one for every entry inside a block
and for each copy of a repeated block, each with its ``path`` (``layer-5/body/2``, ``layer-5#2/body/2`` for the
second copy).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter
from torch.utils.flop_counter import FlopCounterMode

from builder.adapters import call_layer
from builder.blocks.merge import merge_flops, merge_tensors
from builder.catalog import CallStyle, Category, LayerEntry, ParamKind, call_style, catalog
from builder.design import (
    BlockSpec,
    Design,
    DesignError,
    DType,
    Entry,
    LayerSpec,
    ResidualBlock,
    SharedSpec,
    Stack,
    block_dim,
    block_merge,
    has_shared,
    is_block,
    is_shared,
    shape_problem,
    validate_design,
    walk,
)
from builder.diagnose import LayerError, MergeInput, diagnose_build, diagnose_merge, diagnose_run, precheck
from builder.fast_path import meta_only, run_small
from builder.reuse import diagnose_again, diagnose_tied
from builder.tensor_ops import TOKEN_INPUTS, inferred_arguments
from builder.trace import LayerTrace, ParamInfo, Shape, Trace

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


def _count(module: nn.Module) -> tuple[int, int]:
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


def _real_like(x: torch.Tensor, high: int) -> torch.Tensor:
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


def _forward(module: nn.Module, style: CallStyle, x: torch.Tensor, count: bool) -> tuple[torch.Tensor, int]:
    counter = FlopCounterMode(display=False) if count else nullcontext()
    with torch.no_grad(), counter:
        out = call_layer(module, style, x)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"returned {type(out).__name__}, but a layer in a stack must return one tensor")
    return out, counter.get_total_flops() if count else 0


@dataclass
class _Step:
    """The run of one layer: the module that ran, its output, its FLOPs and where it ran."""

    module: nn.Module
    out: torch.Tensor
    flops: int
    device: str = "meta"
    notes: list[str] = field(default_factory=list)


def _run_layer(
    spec: LayerSpec, custom: Mapping[str, type[nn.Module]], design: Design, module: nn.Module, x: torch.Tensor
) -> _Step:
    """Run on meta; when the layer needs real values, run it alone on small real tensors instead."""
    style, count = call_style(spec.type, spec.params), counts_flops(spec.type)
    if spec.type in catalog():  # a small built-in layer runs on the CPU: meta's first use costs a process 1.5 s
        build = partial(build_layer, spec, custom, "cpu", design.input.dtype)
        small = run_small(module, x, style, count, build, lambda t: _real_like(t, token_range(design)), spec.params)
        if small is not None:
            return _Step(small.module, small.out, small.flops)
    try:
        out, flops = _forward(module, style, x, count)
        return _Step(module, out, flops)
    except Exception as error:
        if not needs_values(error):
            raise
        reason = str(error).splitlines()[0]
    _check_real_size(module, x, reason)
    real = build_layer(spec, custom, "cpu", design.input.dtype)
    out, flops = _forward(real, style, _real_like(x, token_range(design)), count)
    note = f"ran on small real tensors: the meta device has no values ({reason})"
    return _Step(real, out.to("meta"), flops, "cpu", [note])


def _check_real_size(module: nn.Module, x: torch.Tensor, reason: str) -> None:
    """Refuse to run a layer on real values when its input or parameters would take too much memory."""
    params = sum(p.numel() for p in module.parameters() if not isinstance(p, UninitializedParameter))
    if x.numel() > REAL_INPUT_LIMIT or params > REAL_PARAM_LIMIT:
        raise RuntimeError(
            f"this layer needs real values ({reason}), but running it for real would take an input of "
            f"{x.numel():,} elements and {params:,} parameters; the builder does that only up to "
            f"{REAL_INPUT_LIMIT:,} input elements and {REAL_PARAM_LIMIT:,} parameters: use a smaller input shape"
        )


def _trace_layer(
    index: int, spec: LayerSpec, x: torch.Tensor, step: _Step, before: tuple[ParamInfo, ...]
) -> LayerTrace:
    numel, nbytes = _count(step.module)
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


def resolve_custom(design: Design) -> dict[str, type[nn.Module]]:
    """Classes of the design's custom layers, defined in this process (trusted sources only)."""
    if not design.custom_layers:
        return {}
    from builder.custom import define_trusted

    return define_trusted(design.custom_layers)


class _Stop(Exception):
    """Raised through the blocks when an entry fails: the error names it, the records so far are kept."""

    def __init__(self, error: LayerError) -> None:
        super().__init__(error.problem)
        self.error = error


def _copy_paths(block: BlockSpec, path: str) -> list[str]:
    """Where each copy of a block runs: its own path, or ``path#1``, ``path#2``... when it is repeated."""
    return [path] if block.repeat == 1 else [f"{path}#{copy}" for copy in range(1, block.repeat + 1)]


def _entry_path(copy_path: str, stack: Stack, position: int) -> str:
    return f"{copy_path}/{stack.key}/{position}"


def _block_record(
    index: int, block: BlockSpec, path: str, parts: list[LayerTrace], shapes: tuple[Shape | None, Shape | None]
) -> LayerTrace:
    """A copy's record: totals of its parts (its entries' records and its merge's)."""
    return LayerTrace(
        index=index,
        id=block.id,
        type=block.type,
        input_shape=shapes[0],
        output_shape=shapes[1],
        params=sum(p.params for p in parts),
        flops=sum(p.flops for p in parts),
        param_bytes=sum(p.param_bytes for p in parts),
        activation_bytes=sum(p.activation_bytes for p in parts),
        path=path,
    )


def _whole_record(
    index: int, block: BlockSpec, path: str, copies: list[LayerTrace], shapes: tuple[Shape | None, Shape | None]
) -> LayerTrace:
    """A block's record: the totals of all its copies."""
    record = _block_record(index, block, path, copies, shapes)
    return (
        replace(record, notes=(f"{block.repeat} copies, each with its own parameters",)) if len(copies) > 1 else record
    )


@dataclass
class _Inspector:
    """Builds every layer of a tree without running it (construct-only trace)."""

    design: Design
    custom: Mapping[str, type[nn.Module]]
    inner: list[LayerTrace] = field(default_factory=list)

    def entry(self, index: int, entry: Entry, path: str) -> LayerTrace:
        if is_block(entry):
            return self.block(index, entry, path)
        if is_shared(entry):
            return LayerTrace(index, entry.id, entry.type, notes=(shared_note(self.design, entry),), shares=entry.of)
        try:
            module = build_layer(entry, self.custom, "meta", self.design.input.dtype)
        except Exception as error:
            raise _Stop(replace(diagnose_build(index, entry, error), path=path if "/" in path else "")) from None
        state = param_state(module)
        numel, nbytes = _count(module)
        return LayerTrace(
            index, entry.id, entry.type, params=numel, params_before=state, params_after=state, param_bytes=nbytes,
            path=path if "/" in path else "",
        )  # fmt: skip

    def block(self, index: int, block: BlockSpec, path: str) -> LayerTrace:
        copies = []
        for copy_path in _copy_paths(block, path):
            parts = []
            for stack in block.stacks():
                for position, entry in enumerate(stack.entries):
                    parts.append(self.entry(index, entry, _entry_path(copy_path, stack, position)))
                    self.inner.append(parts[-1])
            copies.append(_block_record(index, block, copy_path, parts, (None, None)))
        if block.repeat > 1:
            self.inner += copies
        return _whole_record(index, block, path, copies, (None, None))


def inspect_design(design: Design, custom: Mapping[str, type[nn.Module]] | None = None) -> Trace:
    """Build every layer without running it: parameter shapes, lazy parameters still uninitialized."""
    validate_design(design)
    custom = resolve_custom(design) if custom is None else custom
    inspector = _Inspector(design, custom)
    layers = []
    for index, spec in enumerate(design.layers):
        try:
            record = inspector.entry(index, spec, spec.id)
        except _Stop as stop:
            return _trace(design, layers, stop.error, inspector.inner, ran=False)
        layers.append(replace(record, path=""))
    return _trace(design, layers, None, inspector.inner, ran=False)


def _trace(
    design: Design, layers: list[LayerTrace], error: LayerError | None, inner: list[LayerTrace], ran: bool = True
) -> Trace:
    return Trace(design.name, design.input.shape, design.input.dtype, tuple(layers), error, ran, tuple(inner))


def _step(
    index: int, spec: LayerSpec, custom: Mapping[str, type[nn.Module]], design: Design, x: torch.Tensor,
    module: nn.Module | None = None,
) -> tuple[LayerError | None, _Step | None, tuple[ParamInfo, ...]]:  # fmt: skip
    """Build (unless ``module`` is given) and run one layer: (failure, step, parameters before the run)."""
    try:
        module = build_layer(spec, custom, "meta", design.input.dtype) if module is None else module
    except Exception as error:
        return diagnose_build(index, spec, error), None, ()
    before = param_state(module)
    failure = precheck(index, spec, tuple(x.shape), x.dtype, before)
    if failure is not None:
        return failure, None, before
    try:
        return None, _run_layer(spec, custom, design, module, x), before
    except Exception as error:
        return diagnose_run(index, spec, tuple(x.shape), x.dtype, error), None, before


def shared_note(design: Design, entry: SharedSpec) -> str:
    """The table's note on a Shared entry: ``shares layer-3 (LazyLinear): its parameters are counted there``."""
    target = next((spec for spec in design.layers if spec.id == entry.of), None)
    kind = f" ({target.type})" if target is not None else ""
    return f"shares {entry.of}{kind}: the same module, its parameters counted once there"


def _repeat_key(spec: LayerSpec, x: torch.Tensor) -> tuple | None:
    """Built-in layers with the same arguments on the same input give the same result: trace them once a run.

    Deep networks repeat blocks (a VGG stage, a ResNet's identity blocks), so this skips most of the work there.
    Custom layers are always run: their code may have effects of its own.
    """
    if spec.type not in catalog():
        return None
    return spec.type, json.dumps(spec.params, sort_keys=True), tuple(x.shape), x.dtype


@dataclass
class _Tracer:
    """One dummy forward pass through a tree of entries: the inner records, and the layers already traced.

    Built-in layers with the same arguments on the same input are traced once a run (``_repeat_key``), so the
    copies of a repeated block, and the identical blocks of a deep network, cost a lookup each. A tracer that
    keeps its modules (``keep``: a design with shared layers, or a model fed a second input) builds every layer
    and holds each module by its trace path; ``first`` holds an earlier run's modules and records, so this run
    feeds them another input instead of building new ones.
    """

    design: Design
    custom: Mapping[str, type[nn.Module]]
    inner: list[LayerTrace] = field(default_factory=list)
    seen: dict[tuple, tuple[LayerTrace, torch.Tensor]] = field(default_factory=dict)
    keep: bool = False
    modules: dict[str, nn.Module] = field(default_factory=dict)
    records: dict[str, LayerTrace] = field(default_factory=dict)  # what each module did at its first run
    first: _Tracer | None = None

    def entry(self, index: int, entry: Entry, x: torch.Tensor, path: str) -> tuple[LayerTrace, torch.Tensor]:
        """Run one entry on ``x``: its record and output. ``path`` is its trace path (its id at the top level)."""
        if is_block(entry):
            return self.block(index, entry, x, path)
        if is_shared(entry):
            return self.shared(index, entry, x)
        inner_path = path if "/" in path else ""
        key = None if self.keep else _repeat_key(entry, x)
        if key in self.seen:
            trace, out = self.seen[key]
            return replace(trace, index=index, id=entry.id, path=inner_path), out
        failure, step, before = _step(index, entry, self.custom, self.design, x, self.module_of(path))
        if failure is not None:
            raise _Stop(replace(self.again(index, entry, path, x, failure), path=inner_path))
        record = replace(_trace_layer(index, entry, x, step, before), path=inner_path)
        if key is not None:
            self.seen[key] = record, step.out
        if self.keep:
            self.modules[path] = step.module
            self.records.setdefault(path, record)
        return record, step.out

    def module_of(self, path: str) -> nn.Module | None:
        """The module an earlier run built at ``path`` (a second input reuses it), or None to build one."""
        return self.first.modules.get(path) if self.first is not None else None

    def again(self, index: int, spec: LayerSpec, path: str, x: torch.Tensor, failure: LayerError) -> LayerError:
        """A failure of a module that ran before on another input: a lazy layer explains what it inferred then."""
        earlier = self.first.records.get(path) if self.first is not None else None
        if earlier is None or earlier.input_shape is None or failure.stage == "build":
            return failure
        error = RuntimeError(failure.torch_message or failure.problem)
        shapes = earlier.input_shape, tuple(x.shape)
        return diagnose_again(index, spec, *shapes, earlier.inferred, x.dtype, error)

    def shared(self, index: int, entry: SharedSpec, x: torch.Tensor) -> tuple[LayerTrace, torch.Tensor]:
        """Run the module of the layer ``entry.of`` again: its parameters are counted once, at that layer."""
        target = next(spec for spec in self.design.layers if spec.id == entry.of)
        module, first = self.modules[entry.of], self.records[entry.of]
        try:
            out, flops = _forward(module, call_style(target.type, target.params), x, counts_flops(target.type))
        except Exception as error:
            if first.input_shape == tuple(x.shape) or needs_values(error):
                failure = diagnose_run(index, target, tuple(x.shape), x.dtype, error)
                raise _Stop(replace(failure, layer_id=entry.id)) from None
            shapes = first.input_shape, tuple(x.shape)
            raise _Stop(diagnose_tied(index, entry, target, *shapes, first.inferred)) from None
        record = LayerTrace(
            index, entry.id, entry.type, tuple(x.shape), tuple(out.shape), flops=flops,
            activation_bytes=out.numel() * out.element_size(),
            notes=(shared_note(self.design, entry),), shares=entry.of,
        )  # fmt: skip
        return record, out

    def block(self, index: int, block: BlockSpec, x: torch.Tensor, path: str) -> tuple[LayerTrace, torch.Tensor]:
        """Run every copy of a block in a row; its record totals them."""
        start, copies = tuple(x.shape), []
        for copy_path in _copy_paths(block, path):
            record, x = self.copy(index, block, x, copy_path)
            copies.append(record)
        if block.repeat > 1:
            self.inner += copies
        return _whole_record(index, block, path, copies, (start, tuple(x.shape))), x

    def copy(self, index: int, block: BlockSpec, x: torch.Tensor, path: str) -> tuple[LayerTrace, torch.Tensor]:
        """One copy: each stack on ``x``, then the merge (a Sequential's output is its stack's)."""
        parts, outputs = [], []
        for stack in block.stacks():
            y, steps = x, []
            for position, entry in enumerate(stack.entries):
                record, out = self.entry(index, entry, y, _entry_path(path, stack, position))
                self.inner.append(record)
                parts.append(record)
                steps.append((entry.type, tuple(y.shape), tuple(out.shape)))
                y = out
            outputs.append((MergeInput(stack.title, tuple(y.shape), tuple(steps)), y))
        merge = block_merge(block)
        if merge is None:
            out = outputs[0][1]
        else:
            out, merged = self.merge(index, block, x, path, outputs)
            parts.append(merged)
        return _block_record(index, block, path, parts, (tuple(x.shape), tuple(out.shape))), out

    def merge(
        self, index: int, block: BlockSpec, x: torch.Tensor, path: str, outputs: list[tuple[MergeInput, torch.Tensor]]
    ) -> tuple[torch.Tensor, LayerTrace]:
        """The block's merge: its output, and a record of what it costs (FLOPs, the merged tensor's memory)."""
        merge, dim = block_merge(block), block_dim(block)
        if isinstance(block, ResidualBlock):  # output = merge(shortcut(x), body(x)): the shortcut comes first
            outputs = outputs[::-1]
        tensors = [tensor for _, tensor in outputs]
        try:
            with torch.no_grad():
                out = merge_tensors(merge, tensors, dim)
        except Exception as error:
            inputs = [entry for entry, _ in outputs]
            raise _Stop(diagnose_merge(index, block, path, tuple(x.shape), inputs, error)) from None
        cost = LayerTrace(
            index, block.id, block.type, flops=merge_flops(merge, tensors, out),
            activation_bytes=out.numel() * out.element_size(),
        )  # fmt: skip
        return out, cost


def infer_shapes(design: Design, custom: Mapping[str, type[nn.Module]] | None = None) -> Trace:
    """Run the dummy forward pass entry by entry and record shapes, parameters, FLOPs and memory.

    Args:
        design: a validated design with at least one entry.
        custom: classes for the design's custom layers; defined from their sources when not given.

    Returns:
        A Trace. When a layer or a block's merge fails, ``trace.error`` names it with a diagnosis (its ``path``
        inside a block) and the entries before it keep their results.

    Raises:
        DesignError: the design is invalid or has no layers.
    """
    validate_design(design)
    if not design.layers:
        raise DesignError("layers: the design has no layers; add at least one layer to the stack")
    custom = resolve_custom(design) if custom is None else custom
    return _run_pass(_Tracer(design, custom, keep=has_shared(design)), dummy_input(design, "meta"))


def _run_pass(tracer: _Tracer, x: torch.Tensor) -> Trace:
    """Feed ``x`` through the design's entries with this tracer: the trace of the pass.

    A tracer that keeps its modules runs them again (a shared layer, a second input), on meta: none runs on the CPU.
    """
    with meta_only() if tracer.keep else nullcontext():
        return _feed(tracer, x)


def _feed(tracer: _Tracer, x: torch.Tensor) -> Trace:
    design, layers = tracer.design, []
    for index, spec in enumerate(design.layers):
        try:
            record, x = tracer.entry(index, spec, x, spec.id)
        except _Stop as stop:
            return _trace(design, layers, stop.error, tracer.inner)
        layers.append(replace(record, path=""))
    return _trace(design, layers, None, tracer.inner)


def infer_then(
    design: Design, then_shape: Shape, custom: Mapping[str, type[nn.Module]] | None = None
) -> tuple[Trace, Trace]:
    """Trace the design's input, then feed a second input of ``then_shape`` through the same, now built modules.

    The book's lesson on lazy initialization: a lazy layer infers its sizes at its first forward pass and keeps
    them, so a second input of another size fails there (``diagnose_again`` says so); a fresh pass infers again.

    Args:
        design: a validated design with at least one entry.
        then_shape: the second input's shape (the design's dtype); checked as ``input.shape`` is.
        custom: classes for the design's custom layers; defined from their sources when not given.

    Returns:
        (the first trace, the second trace); the second is empty with the first's error when the first failed.
        The second trace's ``input_shape`` is ``then_shape``.

    Raises:
        DesignError: the design is invalid, has no layers, or ``then_shape`` is not a valid input shape.
    """
    validate_design(design)
    problem = shape_problem(then_shape)
    if problem:
        raise DesignError(f"the second input's shape: {problem}")
    if not design.layers:
        raise DesignError("layers: the design has no layers; add at least one layer to the stack")
    custom = resolve_custom(design) if custom is None else custom
    first = _Tracer(design, custom, keep=True)
    first_trace = _run_pass(first, dummy_input(design, "meta"))
    second_design = design.model_copy(update={"input": design.input.model_copy(update={"shape": tuple(then_shape)})})
    if not first_trace.ok:
        return first_trace, replace(_trace(second_design, [], first_trace.error, []), ran=False)
    second = _Tracer(second_design, custom, keep=True, first=first)
    return first_trace, _run_pass(second, dummy_input(second_design, "meta"))
