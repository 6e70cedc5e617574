"""The layer table: rows as data (what the app's DataFrame shows) and the torchinfo-like text."""

from __future__ import annotations

import pytest

from builder.design import CustomLayerSpec, Design, InputSpec, LayerSpec
from builder.inference import Trace, infer_shapes, inspect_design
from builder.summary import COLUMNS, format_shape, format_summary, summary_rows


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
=============================================================================================
Design: d2l-mlp
Input: (2, 20) float32
=============================================================================================
#  Layer    Type        Input shape  Output shape  Params   FLOPs  Notes
---------------------------------------------------------------------------------------------
1  layer-1  LazyLinear  (2, 20)      (2, 256)       5,376  20,480  in_features inferred = 20
2  layer-2  ReLU        (2, 256)     (2, 256)           0       0
3  layer-3  LazyLinear  (2, 256)     (2, 10)        2,570  10,240  in_features inferred = 256
=============================================================================================
Output shape: (2, 10)
Total params: 7,946
Total FLOPs: 30,720 (30.72 KFLOPs)
Parameter memory (MB): 0.03
Activation memory (MB): 0.00
=============================================================================================
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
