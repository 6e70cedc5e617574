"""Whole-design validation: every field, entry and custom layer against the limits, the catalog and each other."""

from __future__ import annotations

from collections.abc import Mapping

from builder.catalog import catalog
from builder.design.custom_layers import _check_bindings, _check_custom_layer, _check_custom_params, source_bindings
from builder.design.document import Design
from builder.design.limits import (
    BLOCK_EXPORT_NAMES,
    ID_PATTERN,
    ID_RULE,
    MAX_BLOCK_DEPTH,
    MAX_BRANCHES,
    MAX_CUSTOM_LAYERS,
    MAX_DIM,
    MAX_LABEL_CHARS,
    MAX_LAYERS,
    MAX_NAME_CHARS,
    MAX_REPEAT,
    MAX_RUN_LAYERS,
)
from builder.design.messages import DesignError, _plain, _quoted, _show, _suggest
from builder.design.models import (
    FORMAT2_KINDS,
    SHARED,
    BlockSpec,
    CustomLayerSpec,
    LayerSpec,
    Merge,
    ParallelBlock,
    ResidualBlock,
)
from builder.design.tree import Located, find_entry, has_blocks, has_shared, is_block, is_shared, run_count, walk
from builder.design.values import _text_problem, check_value, shape_problem

# ------------------------------------------------------------------------------------------------ layers


def _check_entry_strings(where: str, entry: LayerSpec | BlockSpec) -> None:
    """The id (it names the entry in the app and the table) and the label (shown in the graph)."""
    if not isinstance(entry.id, str) or not ID_PATTERN.fullmatch(entry.id):
        raise DesignError(f"{where}: id {_quoted(entry.id)} must be {ID_RULE}")
    problem = _text_problem(entry.label, MAX_LABEL_CHARS)
    if problem:
        raise DesignError(f"{where}: label {problem}")


def validate_layer(
    index: int, layer: LayerSpec, custom: Mapping[str, CustomLayerSpec], where: str | None = None
) -> None:
    """Refuse an unknown type, an unknown parameter or a value torch would refuse, naming the layer.

    ``where`` is the layer's place in a block (``layers[4].body[2] (Conv2d)``); a top-level layer by default.
    """
    where = where or f"layers[{index}] ({_plain(layer.type)})"
    _check_entry_strings(where, layer)
    if layer.type in custom:
        _check_custom_params(where, layer.params, custom[layer.type])
        return
    entry = catalog().get(layer.type)
    if entry is None:
        hint = _suggest(layer.type, [*catalog(), *custom])
        raise DesignError(f"{where}: unknown layer type {_quoted(layer.type)}{hint}")
    names = [p.name for p in entry.params]
    for name, value in layer.params.items():
        spec = entry.param(name) if isinstance(name, str) else None
        if spec is None:
            hint = isinstance(name, str) and _suggest(name, names)
            hint = hint or f"; {layer.type} takes: {', '.join(names) or 'no parameters'}"
            raise DesignError(f"{where}: unknown parameter {_quoted(name)}{hint}")
        problem = check_value(spec, value)
        if problem:
            raise DesignError(f"{where}: parameter '{name}' {problem}")
    missing = [p.name for p in entry.params if p.required and p.name not in layer.params]
    if missing:
        raise DesignError(f"{where}: missing required parameter(s) {', '.join(missing)}")


# ------------------------------------------------------------------------------------------------ blocks


def _merge_problem(block: BlockSpec) -> str | None:
    """Why a Residual's or Parallel's merge and dim do not go together, or None."""
    merge = getattr(block, "merge", None)
    if merge is None:
        return None
    if merge not in set(Merge):
        hint = _suggest(merge, list(Merge)) if isinstance(merge, str) else ""
        return f"unknown merge {_quoted(merge)}{hint or '; use ' + ', '.join(Merge)}"
    if block.dim is not None and merge != Merge.CONCAT:
        return f"dim applies only to merge 'concat', not '{merge}'; remove dim or merge by concat"
    if block.dim is not None and not -MAX_DIM <= block.dim < MAX_DIM:
        return f"dim must be from {-MAX_DIM} to {MAX_DIM - 1}, got {_show(block.dim)}"
    return None


def _block_problem(block: BlockSpec) -> str | None:
    """Why a block cannot stand as written (its stacks are checked entry by entry), or None."""
    if not MAX_REPEAT >= block.repeat >= 1:
        return f"repeat must be a whole number from 1 to {MAX_REPEAT:,}, got {_show(block.repeat)}"
    if isinstance(block, ResidualBlock) and not block.body:
        return "a Residual needs a body: add at least one layer to it (an empty shortcut is the identity)"
    if isinstance(block, ParallelBlock) and not block.branches:
        return "a Parallel needs at least one branch (an empty branch is the identity)"
    if isinstance(block, ParallelBlock) and len(block.branches) > MAX_BRANCHES:
        return f"{len(block.branches):,} branches; a Parallel holds at most {MAX_BRANCHES}"
    return _merge_problem(block)


def validate_block(located: Located) -> None:
    """Refuse a block with a bad repeat, merge or dim, or a missing body or branch, naming its place."""
    _check_entry_strings(located.label, located.entry)
    problem = _block_problem(located.entry)
    if problem:
        raise DesignError(f"{located.label}: {problem}")
    if located.depth >= MAX_BLOCK_DEPTH:
        raise DesignError(f"{located.label}: blocks nest at most {MAX_BLOCK_DEPTH} deep; flatten an inner block")


def _check_block_names(design: Design) -> None:
    """Format 2 names blocks Sequential, Residual and Parallel: custom layers and their code cannot take these."""
    for index, spec in enumerate(design.custom_layers):
        if spec.name in FORMAT2_KINDS:
            what = "an entry type" if spec.name == SHARED else "a block"
            raise DesignError(
                f"custom_layers[{index}] ({spec.name}): '{spec.name}' is {what} in design format 2 (the design "
                f"has blocks or shared layers); rename the custom layer"
            )
        taken = sorted(set(source_bindings(spec.source)) & BLOCK_EXPORT_NAMES)
        if taken:
            raise DesignError(
                f"custom_layers[{index}] ({spec.name}): its code defines '{taken[0]}', a name the exported file of "
                f"a design with blocks needs; rename it"
            )


def _shared_problem(design: Design, located: Located) -> str | None:
    """Why a Shared entry cannot reuse the layer it names, or None."""
    of = located.entry.of
    if located.depth:
        return "a Shared entry stands at the top level of the stack; move it out of its block"
    if not isinstance(of, str) or not of:
        return "'of' must name the id of an earlier layer of the stack, such as \"layer-3\""
    target = find_entry(design, of)
    if target is None:
        ids = [entry.id for entry in design.layers[: located.index] if not is_block(entry) and not is_shared(entry)]
        hint = _suggest(of, ids) or "; name a layer before it"
        return f"'of' names {_quoted(of)}, which is no layer of the design{hint}, or remove this Shared entry"
    if target.depth:
        return f"'of' names {_quoted(of)}, which stands inside a block; share a layer of the top-level stack"
    if is_block(target.entry):
        return f"'of' names {_quoted(of)}, a {target.entry.type} block; share a layer, not a block"
    if is_shared(target.entry):
        return f"'of' names {_quoted(of)}, itself a Shared entry; name the layer it shares, {_quoted(target.entry.of)}"
    if target.index >= located.index:
        return f"'of' names {_quoted(of)}, which comes after it; a Shared entry reuses an earlier layer"
    return None


def validate_shared(design: Design, located: Located) -> None:
    """Refuse a Shared entry whose ``of`` is not an earlier top-level layer, naming its place and the fix."""
    _check_entry_strings(located.label, located.entry)
    problem = _shared_problem(design, located)
    if problem:
        raise DesignError(f"{located.label}: {problem}")


COUNTED: dict[str, str] = {"layers": "layers", "custom_layers": "custom layers"}


def _too_many(field: str, count: int, limit: int) -> str:
    return f"{field}: the design has {count:,} {COUNTED[field]}; a design holds at most {limit:,}"


def _too_many_runs(count: int) -> str:
    return (
        f"layers: the forward pass would run {count:,} layers (each copy of a repeated block counted); a design "
        f"runs at most {MAX_RUN_LAYERS:,}: lower a block's repeat"
    )


def _check_sizes_of(design: Design) -> None:
    """The design's own fields and counts: name, input shape, number of layers and custom layers."""
    problem = _text_problem(design.name, MAX_NAME_CHARS) if isinstance(design.name, str) else "must be text"
    if problem:
        raise DesignError(f"name: {problem}")
    problem = shape_problem(design.input.shape)
    if problem:
        raise DesignError(f"input.shape: {problem}")
    count = sum(1 for _ in walk(design.layers))
    if count > MAX_LAYERS:
        raise DesignError(_too_many("layers", count, MAX_LAYERS))
    if len(design.custom_layers) > MAX_CUSTOM_LAYERS:
        raise DesignError(_too_many("custom_layers", len(design.custom_layers), MAX_CUSTOM_LAYERS))


def validate_design(design: Design) -> Design:
    """Check every field, entry and custom layer against the limits, the catalog and each other; return the design.

    Raises:
        DesignError: naming the field (``layers[4].body[2] (Conv2d): parameter 'stride' ...``) and what to change.
    """
    _check_sizes_of(design)
    custom = design.custom_names()
    if len(set(custom)) != len(custom):
        raise DesignError("custom_layers: two custom layers share a name; rename one")
    for index, spec in enumerate(design.custom_layers):
        _check_custom_layer(index, spec)
    _check_bindings(design.custom_layers)
    if has_blocks(design) or has_shared(design):
        _check_block_names(design)
    by_name = {spec.name: spec for spec in design.custom_layers}
    for located in walk(design.layers):
        if is_block(located.entry):
            validate_block(located)
        elif is_shared(located.entry):
            validate_shared(design, located)
        else:
            validate_layer(located.index, located.entry, by_name, located.label)
    runs = run_count(design.layers)
    if runs > MAX_RUN_LAYERS:
        raise DesignError(_too_many_runs(runs))
    return design
