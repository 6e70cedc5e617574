"""Design format 2: blocks in the file, what validation refuses (naming the path and the fix), and version 1."""

from __future__ import annotations

import json
from typing import Any

import pytest

from builder.design import (
    MAX_BLOCK_DEPTH,
    MAX_LAYERS,
    MAX_RUN_LAYERS,
    DesignError,
    Merge,
    ParallelBlock,
    ResidualBlock,
    SequentialBlock,
    design_from_dict,
    dump_design,
    entry_at,
    find_entry,
    format_version,
    load_design,
    walk,
)

CONV = {"type": "Conv2d", "params": {"in_channels": 8, "out_channels": 8, "kernel_size": 3, "padding": 1}}
RELU = {"type": "ReLU"}


def _design(*layers: dict[str, Any], version: int | None = 2, **fields: Any) -> dict[str, Any]:
    data = {"name": "blocks", "input": {"shape": [1, 8, 16, 16]}, "layers": list(layers), **fields}
    return data if version is None else {"version": version, **data}


def _residual(**fields: Any) -> dict[str, Any]:
    return {"type": "Residual", "body": [CONV, RELU], **fields}


def test_the_three_blocks_load_with_their_defaults() -> None:
    design = design_from_dict(
        _design(
            {"type": "Sequential", "label": "stage1", "repeat": 2, "layers": [CONV]},
            _residual(label="down1"),
            {"type": "Parallel", "label": "inception-3a", "branches": [[CONV], [RELU], []]},
        )
    )
    stage, residual, parallel = design.layers
    assert isinstance(stage, SequentialBlock) and (stage.repeat, stage.label) == (2, "stage1")
    assert isinstance(residual, ResidualBlock)
    assert (residual.merge, residual.dim, residual.shortcut, residual.repeat) == (Merge.ADD, None, (), 1)
    assert isinstance(parallel, ParallelBlock) and parallel.merge is Merge.CONCAT
    assert [len(branch) for branch in parallel.branches] == [1, 1, 0]


def test_ids_are_given_depth_first_and_kept_unique_across_the_tree() -> None:
    design = design_from_dict(_design(CONV, _residual(shortcut=[{**CONV, "id": "proj"}]), RELU))
    assert [located.entry.id for located in walk(design.layers)] == [
        "layer-1", "layer-2", "layer-3", "layer-4", "proj", "layer-5",
    ]  # fmt: skip
    assert [located.path for located in walk(design.layers)][2:5] == [
        "layer-2/body/0", "layer-2/body/1", "layer-2/shortcut/0",
    ]  # fmt: skip
    assert find_entry(design, "proj").where == "layers[1].shortcut[0]"
    assert entry_at(design, "layer-2#3/body/1").entry.type == "ReLU"  # copy numbers name no other entry


def test_an_id_used_twice_anywhere_in_the_tree_is_refused_naming_both_places() -> None:
    data = _design({**CONV, "id": "conv"}, _residual(body=[{**CONV, "id": "conv"}]))
    with pytest.raises(
        DesignError, match=r"^layers\[1\]\.body\[0\] \(Conv2d\): id 'conv' is also the id of layers\[0\]"
    ):
        design_from_dict(data)


def test_a_design_with_blocks_round_trips_through_its_file() -> None:
    design = design_from_dict(
        _design(
            _residual(label="down", merge="concat", dim=-3, repeat=3, shortcut=[CONV]),
            {"type": "Parallel", "merge": "mul", "branches": [[RELU], []]},
        )
    )
    text = dump_design(design)
    assert load_design(text) == design
    block = json.loads(text)["layers"][0]
    assert list(block) == ["type", "id", "label", "merge", "dim", "repeat", "body", "shortcut"]
    assert json.loads(text)["version"] == 2


def test_defaults_are_left_out_of_the_file() -> None:
    text = dump_design(design_from_dict(_design(_residual(), {"type": "Sequential", "layers": []})))
    residual, sequential = json.loads(text)["layers"]
    assert residual == {"type": "Residual", "id": "layer-1", "merge": "add", "body": residual["body"]}
    assert sequential == {"type": "Sequential", "id": "layer-4", "layers": []}


def test_a_file_is_written_in_the_lowest_format_that_holds_it() -> None:
    flat = design_from_dict(_design(CONV, version=None))
    assert (format_version(flat), json.loads(dump_design(flat))["version"]) == (1, 1)
    assert format_version(design_from_dict(_design(_residual(), version=None))) == 2


def test_a_version_1_file_may_hold_a_custom_layer_called_residual() -> None:
    """The book defines its own Residual class; version 1 files that use it load and run as before."""
    source = "class Residual(nn.Module):\n    def forward(self, x):\n        return x\n"
    data = _design({"type": "Residual"}, version=1, custom_layers=[{"name": "Residual", "source": source}])
    design = design_from_dict(data)
    assert design.layers[0].type == "Residual" and not isinstance(design.layers[0], ResidualBlock)
    assert load_design(dump_design(design)) == design
    without_version = {key: value for key, value in data.items() if key != "version"}
    assert design_from_dict(without_version) == design  # read as version 1: its custom layer takes a block's name


def test_format_2_refuses_a_custom_layer_named_like_a_block() -> None:
    source = "class Parallel(nn.Module):\n    def forward(self, x):\n        return x\n"
    with pytest.raises(DesignError, match=r"custom_layers\[0\] \(Parallel\): 'Parallel' is a block.*rename"):
        design_from_dict(_design(CONV, custom_layers=[{"name": "Parallel", "source": source}]))


def test_a_version_1_file_with_a_block_says_to_set_version_2() -> None:
    with pytest.raises(DesignError, match=r'layers\[1\] \(Residual\): blocks need design format 2; set "version": 2'):
        design_from_dict(_design(CONV, _residual(), version=1))


@pytest.mark.parametrize("version", [0, 3, "2", 2.0, True])
def test_an_unknown_version_is_refused(version: Any) -> None:
    with pytest.raises(DesignError, match="version: this builder reads design formats 1 and 2"):
        design_from_dict(_design(CONV, version=version))


# name -> (entries, the message's start, phrases it must hold)
REFUSED: dict[str, tuple[list[dict[str, Any]], str, tuple[str, ...]]] = {
    "misspelled parameter inside a body": (
        [CONV, _residual(body=[CONV, RELU, {"type": "Conv2d", "params": {"in_channels": 8, "out_channels": 8,
                                                                          "kernal_size": 3}}])],
        "layers[1].body[2] (Conv2d): unknown parameter 'kernal_size'; did you mean 'kernel_size'?", (),
    ),
    "unknown layer in a branch": (
        [{"type": "Parallel", "branches": [[RELU], [{"type": "Conv2D"}]]}],
        "layers[0].branches[1][0] (Conv2D): unknown layer type 'Conv2D'", ("did you mean 'Conv2d'?",),
    ),
    "a value out of range in a nested block": (
        [{"type": "Sequential", "layers": [_residual(shortcut=[{"type": "Dropout", "params": {"p": 2}}])]}],
        "layers[0].layers[0].shortcut[0] (Dropout): parameter 'p'", ("at most 1",),
    ),
    "unknown merge": ([_residual(merge="ad")], "layers[0] (Residual): unknown merge 'ad'; did you mean 'add'?", ()),
    "merge that is no word": ([_residual(merge="sum")], "layers[0] (Residual): unknown merge 'sum'", ("add, mul",)),
    "repeat of 0": ([_residual(repeat=0)], "layers[0] (Residual): repeat must be", ("from 1", "got 0")),
    "repeat of -3 in a nested block": (
        [{"type": "Sequential", "layers": [{"type": "Sequential", "repeat": -3, "layers": [RELU]}]}],
        "layers[0].layers[0] (Sequential): repeat must be", ("got -3",),
    ),
    "Residual without a body": ([{"type": "Residual"}], "layers[0] (Residual): a Residual needs a body", ()),
    "Residual with an empty body": ([_residual(body=[])], "layers[0] (Residual): a Residual needs a body", ()),
    "Parallel without branches": (
        [{"type": "Parallel", "branches": []}], "layers[0] (Parallel): a Parallel needs at least one branch", (),
    ),
    "dim with an add": ([_residual(dim=1)], "layers[0] (Residual): dim applies only to merge 'concat'", ()),
    "dim far out of range": ([_residual(merge="concat", dim=99)], "layers[0] (Residual): dim must be from", ()),
    "a field of another block": ([_residual(branches=[[RELU]])], "layers[0].branches", ("unknown field",)),
    "a layer field on a block": ([{"type": "Sequential", "params": {}, "layers": []}], "layers[0].params", ()),
    "a block's id that is not plain": ([_residual(id="a b")], "layers[0] (Residual): id 'a b' must be", ()),
    "a block's label on two lines": ([_residual(label="a\nb")], "layers[0] (Residual): label", ("one line",)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_validation_names_the_path_inside_blocks(case: str) -> None:
    entries, start, phrases = REFUSED[case]
    with pytest.raises(DesignError) as refused:
        design_from_dict(_design(*entries))
    message = str(refused.value)
    assert message.startswith(start), message
    assert all(phrase in message for phrase in phrases), message
    assert "\n" not in message


def _nested(depth: int) -> dict[str, Any]:
    entry: dict[str, Any] = RELU
    for _ in range(depth):
        entry = {"type": "Sequential", "layers": [entry]}
    return entry


def test_blocks_nest_up_to_the_depth_limit() -> None:
    design_from_dict(_design(_nested(MAX_BLOCK_DEPTH)))
    with pytest.raises(DesignError, match=f"blocks nest more than {MAX_BLOCK_DEPTH} deep"):
        design_from_dict(_design(_nested(MAX_BLOCK_DEPTH + 1)))


def test_a_block_nested_10_000_deep_is_one_design_error() -> None:
    with pytest.raises(DesignError, match="blocks nest more than"):
        load_design(json.dumps(_design(_nested(200))))
    deep = '{"version": 2, "input": {"shape": [1]}, "layers": [' + '{"type": "Sequential", "layers": [' * 10_000
    with pytest.raises(DesignError, match="nested too deeply"):
        load_design(deep + "]}" * 10_000 + "]}")


def test_the_layer_limit_counts_the_layers_inside_blocks() -> None:
    many = [{"type": "Sequential", "layers": [RELU] * 100}] * 10
    with pytest.raises(
        DesignError, match=rf"layers: the design has 1,010 layers; a design holds at most {MAX_LAYERS:,}"
    ):
        design_from_dict(_design(*many))


def test_the_run_limit_counts_each_copy_of_a_repeated_block() -> None:
    design_from_dict(_design({"type": "Sequential", "repeat": 1000, "layers": [RELU] * 10}))
    twice = {"type": "Sequential", "repeat": 2, "layers": [RELU] * 10}
    with pytest.raises(DesignError, match=rf"would run 20,000 layers .* at most {MAX_RUN_LAYERS:,}: lower a block's"):
        design_from_dict(_design({"type": "Sequential", "repeat": 1000, "layers": [twice]}))


def test_a_repeat_beyond_the_limit_and_too_many_branches_are_refused() -> None:
    with pytest.raises(DesignError, match=r"layers\[0\] \(Residual\): repeat must be a whole number from 1 to 1,000"):
        design_from_dict(_design(_residual(repeat=10**6)))
    with pytest.raises(DesignError, match=r"layers\[0\] \(Parallel\): 65 branches; a Parallel holds at most 64"):
        design_from_dict(_design({"type": "Parallel", "branches": [[]] * 65}))
