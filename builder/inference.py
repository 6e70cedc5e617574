"""Shape inference by a real dummy forward pass, layer by layer, on the meta device.

``infer_shapes`` is the pipeline: build each layer, run it on the previous layer's output, record what torch
reports (shapes, parameters, FLOPs, memory, lazy sizes), stop at the first failure with a diagnosis. On the
meta device no storage is allocated, so a design with billions of parameters costs no memory. A layer that
needs real values (``.item()``, a data-dependent ``if``) is re-run alone on small real tensors, and the result
says so.

A block runs each of its stacks on its input and merges their outputs (``builder.blocks.merge``), once per copy.
One layer is built, run and recorded by ``builder.layer_run``; the records are ``builder.trace``'s.
``Trace.layers`` keeps one per top-level entry (a block's holds the parameters and FLOPs of all its copies, merges
included); ``Trace.inner`` holds one for every entry inside a block and for each copy of a repeated block, each
with its ``path`` (``layer-5/body/2``, ``layer-5#2/body/2`` for the second copy).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from builder.blocks.merge import merge_flops, merge_tensors
from builder.catalog import call_style, catalog
from builder.design import (
    BlockSpec,
    Design,
    DesignError,
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
)
from builder.diagnose import LayerError, MergeInput, diagnose_build, diagnose_merge, diagnose_run, precheck
from builder.fast_path import meta_only
from builder.layer_run import (
    LayerRun,
    build_layer,
    count_params,
    counts_flops,
    dummy_input,
    forward_once,
    layer_record,
    needs_values,
    param_state,
    run_layer,
)
from builder.reuse import diagnose_again, diagnose_tied
from builder.trace import LayerTrace, ParamInfo, Shape, Trace


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
        numel, nbytes = count_params(module)
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
) -> tuple[LayerError | None, LayerRun | None, tuple[ParamInfo, ...]]:  # fmt: skip
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
        return None, run_layer(spec, custom, design, module, x), before
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
        record = replace(layer_record(index, entry, x, step, before), path=inner_path)
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
            out, flops = forward_once(module, call_style(target.type, target.params), x, counts_flops(target.type))
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
