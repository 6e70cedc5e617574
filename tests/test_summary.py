"""The layer table: rows as data (what the app's DataFrame shows) and the torchinfo-like text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.design import CustomLayerSpec, Design, InputSpec, LayerSpec, design_from_dict
from builder.inference import infer_shapes, inspect_design
from builder.summary import COLUMNS, format_shape, format_summary, summary_json, summary_rows, tree_rows
from builder.trace import Trace


def _mlp() -> Design:
    layers = (LayerSpec(type="LazyLinear", params={"out_features": 256}), LayerSpec(type="ReLU"))
    layers += (LayerSpec(type="LazyLinear", params={"out_features": 10}),)
    return Design(name="d2l-mlp", input=InputSpec(shape=(2, 20)), layers=layers)


def _failing() -> Trace:
    layers = (
        LayerSpec(type="Linear", params={"in_features": 20, "out_features": 64}),
        LayerSpec(type="Linear", params={"in_features": 30, "out_features": 10}),
    )
    return infer_shapes(Design(name="broken", input=InputSpec(shape=(2, 20)), layers=layers))


MLP_TABLE = """\
====================================================================================================
Design: d2l-mlp
Input: (2, 20) float32
====================================================================================================
#  Layer    Type        Input shape  Output shape  Params  Formula                  FLOPs  Notes
----------------------------------------------------------------------------------------------------
1  layer-1  LazyLinear  (2, 20)      (2, 256)       5,376  256 x 20 + 256 = 5,376  20,480  in_features inferred = 20
2  layer-2  ReLU        (2, 256)     (2, 256)           0  no parameters                0
3  layer-3  LazyLinear  (2, 256)     (2, 10)        2,570  10 x 256 + 10 = 2,570   10,240  in_features inferred = 256
====================================================================================================
Output shape: (2, 10)
Total params: 7,946
Total FLOPs: 30,720 (30.72 KFLOPs)
Parameter memory (MB): 0.03
Activation memory (MB): 0.00
====================================================================================================
"""


@pytest.mark.parametrize(("shape", "text"), [((2, 20), "(2, 20)"), ((10,), "(10,)"), ((), "()"), (None, "?")])
def test_format_shape(shape: tuple[int, ...] | None, text: str) -> None:
    assert format_shape(shape) == text


def test_rows_of_a_run_hold_shapes_params_flops_and_inferred_sizes() -> None:
    rows = summary_rows(infer_shapes(_mlp()))
    assert [list(row) for row in rows] == [list(COLUMNS)] * 3
    assert rows[0] == {
        "#": 1,
        "layer": "layer-1",
        "type": "LazyLinear",
        "input shape": "(2, 20)",
        "output shape": "(2, 256)",
        "params": 5376,
        "formula": "256 x 20 + 256 = 5,376",
        "FLOPs": 2 * 2 * 20 * 256,
        "notes": "in_features inferred = 20",
    }
    assert [row["output shape"] for row in rows] == ["(2, 256)", "(2, 256)", "(2, 10)"]
    assert sum(row["params"] for row in rows) == 20 * 256 + 256 + 256 * 10 + 10


def test_rows_before_a_run_show_unknown_shapes_and_lazy_layers() -> None:
    rows = summary_rows(inspect_design(_mlp()))
    assert {row["input shape"] for row in rows} == {"?"}
    assert {row["output shape"] for row in rows} == {"?"}
    assert rows[0]["params"] == 0  # uninitialized parameters have no size yet
    assert "uninitialized until a forward pass" in rows[0]["notes"]
    assert rows[1]["notes"] == ""


def test_rows_note_a_layer_that_ran_on_real_tensors() -> None:
    source = (
        "class Gate(nn.Module):\n"
        "    def forward(self, X):\n"
        "        return X * 2 if X.sum().item() > 0 else X\n"
    )  # .item() needs values, which the meta device does not have
    design = Design(
        input=InputSpec(shape=(2, 4)),
        layers=(LayerSpec(type="Gate"),),
        custom_layers=(CustomLayerSpec(name="Gate", source=source),),
    )
    rows = summary_rows(infer_shapes(design))
    assert rows[0]["output shape"] == "(2, 4)"
    assert "ran on small real tensors" in rows[0]["notes"]


def test_table_of_the_d2l_mlp() -> None:
    assert format_summary(infer_shapes(_mlp())) == MLP_TABLE


def test_table_before_a_run_says_the_shapes_are_not_known_yet() -> None:
    text = format_summary(inspect_design(_mlp()))
    assert "Output shape: ? (not run" in text
    assert "Total params: 0" in text


def test_table_of_a_failing_design_ends_with_the_diagnosis() -> None:
    trace = _failing()
    text = format_summary(trace)
    lines = text.splitlines()
    assert "layer-1" in text and "layer-2" not in text  # the table lists only the layers that ran
    assert "Output shape: ? (the forward pass did not finish)" in text
    error_text = " ".join(lines[lines.index(next(ln for ln in lines if ln.startswith("Error:"))) : -1])
    assert error_text == f"Error: {trace.error.message}"
    assert "set in_features=64" in error_text


def test_table_can_leave_the_error_to_the_caller() -> None:
    text = format_summary(_failing(), show_error=False)
    assert "Error:" not in text and "in_features=30" not in text


def test_the_error_is_wrapped_to_the_table() -> None:
    text = format_summary(_failing())
    assert len(text.splitlines()[-2]) < len(_failing().error.message)
    assert max(len(line) for line in text.splitlines()) <= 100


def test_text_from_custom_code_cannot_break_the_table_or_the_terminal() -> None:
    """A custom layer's error may hold escape sequences and line breaks; the table shows neither."""
    source = (
        "class Loud(nn.Module):\n    def forward(self, X):\n"
        "        raise ValueError('clear\\x1b[2Jscreen\\x07bell\\nerror: forged line')\n"
    )
    design = Design(
        name="loud",
        input=InputSpec(shape=(2, 4)),
        layers=(LayerSpec(type="Loud"),),
        custom_layers=(CustomLayerSpec(name="Loud", source=source),),
    )
    text = format_summary(infer_shapes(design))
    assert "clear [2Jscreen bell" in " ".join(text.split())
    assert "\x1b" not in text and "\x07" not in text
    assert not any(line.startswith("error: forged") for line in text.splitlines())


# ---------------------------------------------------------------------------------------------------------------
# Blocks: a tree like torchinfo's depth view, and nested rows in the JSON


def _linear(cin: int, cout: int) -> dict:
    return {"type": "Linear", "params": {"in_features": cin, "out_features": cout}}


BLOCKS = design_from_dict({
    "version": 2, "name": "blocks", "input": {"shape": [2, 8]},
    "layers": [
        _linear(8, 16),
        {"type": "Residual", "label": "res", "repeat": 2, "body": [_linear(16, 16), {"type": "ReLU"}]},
        {"type": "Parallel", "branches": [[_linear(16, 4)], []]},
    ],
})  # fmt: skip

GOLDEN = Path(__file__).parent / "golden" / "summary"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def test_a_design_with_blocks_is_a_tree_matching_its_golden_file() -> None:
    text = format_summary(infer_shapes(BLOCKS), design=BLOCKS)
    path = GOLDEN / "blocks-tree.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path} differs; if the change is wanted, UPDATE_GOLDEN=1"
    assert "   │ │ ├─layer-3           Linear        (2, 16)" in text


def test_depth_1_shows_the_top_level_entries_only() -> None:
    rows = tree_rows(BLOCKS, infer_shapes(BLOCKS), depth=1)
    assert [(row["#"], row["layer"], row["type"]) for row in rows] == [
        (1, "layer-1", "Linear"), (2, "layer-2 res", "Residual x 2"), (3, "layer-5", "Parallel"),
    ]  # fmt: skip
    assert [row["params"] for row in rows] == [144, 544, 68]


def test_depth_2_opens_one_level_of_blocks() -> None:
    inner = {"type": "Parallel", "label": "inner", "branches": [[_linear(8, 4)], []]}
    design = design_from_dict({
        "version": 2, "input": {"shape": [2, 8]},
        "layers": [{"type": "Residual", "label": "outer", "merge": "concat", "body": [inner]}],
    })  # fmt: skip
    names = [row["layer"] for row in tree_rows(design, infer_shapes(design), depth=2)]
    assert names == ["layer-1 outer", "├─body", "│ └─layer-2 inner", "└─shortcut: identity"]
    assert len(tree_rows(design, infer_shapes(design))) == 7


def test_a_design_without_blocks_keeps_its_flat_table() -> None:
    assert format_summary(infer_shapes(_mlp()), design=_mlp(), depth=1) == MLP_TABLE


def test_the_json_keeps_one_row_per_top_level_entry_with_the_blocks_children() -> None:
    trace = infer_shapes(BLOCKS)
    data = summary_json(BLOCKS, trace)
    assert [row["id"] for row in data["layers"]] == ["layer-1", "layer-2", "layer-5"]
    residual, parallel = data["layers"][1:]
    assert (residual["repeat"], residual["merge"], residual["label"], residual["params"]) == (2, "add", "res", 544)
    assert [row["path"] for row in residual["body"]] == ["layer-2#1/body/0", "layer-2#1/body/1"]
    assert residual["shortcut"] == []
    assert [copy["copy"] for copy in residual["copies"]] == [1, 2]
    assert residual["copies"][1]["body"][0]["path"] == "layer-2#2/body/0"
    assert (parallel["merge"], parallel["dim"]) == ("concat", 1)
    assert [[row["type"] for row in branch] for branch in parallel["branches"]] == [["Linear"], []]
    flat = {key: value for key, value in data.items() if key != "layers"}
    assert flat == {key: value for key, value in trace.to_dict().items() if key != "layers"}


def test_the_json_of_a_design_without_blocks_is_the_traces() -> None:
    trace = infer_shapes(_mlp())
    assert summary_json(_mlp(), trace) == trace.to_dict()


def test_a_block_that_failed_shows_what_ran_inside_it() -> None:
    design = design_from_dict({
        "version": 2, "input": {"shape": [2, 8]},
        "layers": [{"type": "Sequential", "label": "stage", "layers": [_linear(8, 4), _linear(5, 2)]}, _linear(2, 1)],
    })  # fmt: skip
    trace = infer_shapes(design)
    rows = tree_rows(design, trace)
    assert [(row["layer"], row["output shape"]) for row in rows] == [("layer-1 stage", "?"), ("└─layer-2", "(2, 4)")]
    assert "layer 1, layers[1] Linear(in_features=5, out_features=2)" in format_summary(trace, design=design)
