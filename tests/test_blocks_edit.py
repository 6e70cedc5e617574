"""Tree edits (builder.blocks.edit): each returns a new, valid design; wrapping and unwrapping keep the model."""

from __future__ import annotations

from typing import Any

import pytest

from builder.blocks.edit import (
    add_branch,
    add_entry,
    apply_fix,
    remove_branch,
    remove_entry,
    set_block,
    set_entry_params,
    unwrap,
    wrap,
)
from builder.design import (
    BlockType,
    Design,
    DesignError,
    LayerSpec,
    Merge,
    ParallelBlock,
    ResidualBlock,
    SequentialBlock,
    design_from_dict,
    find_entry,
    walk,
)
from builder.diagnose import FixKind
from builder.inference import infer_shapes

LINEAR = {"type": "Linear", "params": {"in_features": 8, "out_features": 8}}


def _design(*layers: dict[str, Any]) -> Design:
    return design_from_dict({"version": 2, "input": {"shape": [2, 8]}, "layers": list(layers)})


def _ids(design: Design) -> list[str]:
    return [located.entry.id for located in walk(design.layers)]


def _output(design: Design) -> tuple[tuple[int, ...] | None, int]:
    trace = infer_shapes(design)
    assert trace.ok, trace.error and trace.error.message
    return trace.output_shape, trace.total_params


@pytest.mark.parametrize("kind", list(BlockType))
def test_wrap_puts_a_run_of_entries_into_a_block(kind: BlockType) -> None:
    design = _design(LINEAR, {"type": "ReLU"}, LINEAR, {"type": "Tanh"})
    wrapped = wrap(design, ["layer-2", "layer-3"], kind, label="middle")
    block = wrapped.layers[1]
    assert (block.type, block.label, block.id) == (kind, "middle", "layer-5")
    assert [entry.id for entry in block.stacks()[0].entries] == ["layer-2", "layer-3"]
    assert _output(wrapped) == _output(design)  # a Residual adds its input (as asked): the same sizes still
    assert unwrap(wrapped, "layer-5") == design  # undone exactly


def test_wrap_refuses_entries_that_do_not_stand_together() -> None:
    design = _design(LINEAR, {"type": "ReLU"}, LINEAR)
    with pytest.raises(DesignError, match="next to each other in one stack"):
        wrap(design, ["layer-1", "layer-3"], BlockType.SEQUENTIAL)
    with pytest.raises(DesignError, match="next to each other"):
        wrap(design, [], BlockType.SEQUENTIAL)


def test_unwrapping_a_repeated_block_writes_out_its_copies_with_new_ids() -> None:
    design = _design({"type": "Sequential", "repeat": 3, "layers": [LINEAR, {"type": "ReLU"}]})
    flat = unwrap(design, "layer-1")
    assert [entry.type for entry in flat.layers] == ["Linear", "ReLU"] * 3
    assert len(set(_ids(flat))) == 6
    assert _output(flat) == _output(design)


def test_a_parallel_of_several_branches_is_not_unwrapped() -> None:
    design = _design({"type": "Parallel", "branches": [[LINEAR], []]})
    with pytest.raises(DesignError, match="remove all branches but one"):
        unwrap(design, "layer-1")


def test_entries_are_added_into_a_blocks_stack_and_removed_anywhere() -> None:
    design = _design({"type": "Residual", "body": [LINEAR]})
    design = add_entry(design, LayerSpec(type="ReLU"), parent="layer-1", stack="shortcut")
    design = add_entry(design, LayerSpec(type="Tanh"), parent="layer-1", stack="body", position=0)
    block = design.layers[0]
    assert isinstance(block, ResidualBlock)
    assert [e.type for e in block.body] == ["Tanh", "Linear"] and [e.type for e in block.shortcut] == ["ReLU"]
    assert len(set(_ids(design))) == 4
    assert [e.type for e in remove_entry(design, block.body[0].id).layers[0].body] == ["Linear"]
    with pytest.raises(DesignError, match="no stack 'branches/0'"):
        add_entry(design, LayerSpec(type="ReLU"), parent="layer-1", stack="branches/0")


def test_block_fields_change_and_a_merge_other_than_concat_drops_the_dim() -> None:
    design = _design({"type": "Parallel", "merge": "concat", "dim": -1, "branches": [[LINEAR], []]})
    added = set_block(design, "layer-1", merge="add", label="sum", repeat=2)
    block = added.layers[0]
    assert (block.merge, block.dim, block.label, block.repeat) == (Merge.ADD, None, "sum", 2)
    with pytest.raises(DesignError, match="repeat must be"):
        set_block(design, "layer-1", repeat=0)
    with pytest.raises(DesignError, match="has no field body"):
        set_block(design, "layer-1", body=())


def test_branches_are_added_and_removed_but_one_stays() -> None:
    design = add_branch(_design({"type": "Parallel", "branches": [[LINEAR]]}), "layer-1")
    assert isinstance(design.layers[0], ParallelBlock) and len(design.layers[0].branches) == 2
    design = remove_branch(design, "layer-1", 0)
    assert design.layers[0].branches == ((),)
    with pytest.raises(DesignError, match="at least one branch"):
        remove_branch(design, "layer-1", 0)


def test_a_layers_params_are_set_inside_a_block() -> None:
    design = _design({"type": "Sequential", "layers": [LINEAR]})
    design = set_entry_params(design, "layer-2", {"in_features": 8, "out_features": 4})
    assert find_entry(design, "layer-2").entry.params["out_features"] == 4


def test_every_fix_a_block_trace_offers_applies() -> None:
    """Insert Flatten before a layer inside a body, then the projection shortcut the merge asks for."""
    conv = {"type": "Conv2d", "params": {"in_channels": 1, "out_channels": 4, "kernel_size": 3}}
    head = {"type": "Linear", "params": {"in_features": 144, "out_features": 8}}
    design = design_from_dict({"version": 2, "input": {"shape": [1, 1, 8, 8]},
                               "layers": [{"type": "Sequential", "layers": [conv, head]}]})  # fmt: skip
    error = infer_shapes(design).error
    assert error.fixes[0].kind is FixKind.INSERT_FLATTEN
    design = apply_fix(design, error, error.fixes[0])
    assert [e.type for e in design.layers[0].layers] == ["Conv2d", "Flatten", "Linear"]
    assert _output(design) == ((1, 8), 4 * 9 + 4 + 144 * 8 + 8)
    assert isinstance(design.layers[0], SequentialBlock)
