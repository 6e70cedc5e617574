"""The Build page's layer table as data: entries named as their call is written, every entry listed however far
the forward pass got."""

from __future__ import annotations

import pytest

from builder import run
from builder.catalog import catalog
from builder.design import LayerSpec, design_from_dict
from builder.examples import load_example
from builder.export import ENCODER_LAYERS, layer_source
from builder.layer_table import Status, call_args, entry_text, layer_rows, lazy_rows
from builder.samples import sample_design


@pytest.mark.parametrize(
    ("layer_type", "params", "text"),
    [
        ("Conv2d", {"in_channels": 1, "out_channels": 6, "kernel_size": 5, "padding": 2}, "1, 6, 5, padding=2"),
        ("Conv2d", {"padding": 2, "kernel_size": 5, "out_channels": 6, "in_channels": 1}, "1, 6, 5, padding=2"),
        ("AvgPool2d", {"kernel_size": 2, "stride": 2}, "2, stride=2"),
        ("LazyLinear", {"out_features": 256}, "256"),
        ("Linear", {"in_features": 4, "out_features": 2, "bias": False}, "4, 2, bias=False"),
        ("ReLU", {}, ""),
        ("Dropout", {"p": 0.5}, ""),
    ],
)
def test_leading_arguments_are_positional_in_signature_order_the_rest_by_keyword(layer_type, params, text):
    assert call_args(LayerSpec(id="layer-1", type=layer_type, params=params)) == text


def test_a_required_argument_after_a_keyword_one_stays_a_keyword():
    spec = LayerSpec(id="layer-1", type="Conv2d", params={"in_channels": 1, "kernel_size": 5, "out_channels": 6})
    assert call_args(spec) == "1, 6, 5"
    missing = LayerSpec(id="layer-1", type="Conv2d", params={"in_channels": 1, "kernel_size": 5})
    assert call_args(missing) == "1, kernel_size=5", "with out_channels unset, kernel_size cannot be positional"


def test_custom_layer_arguments_are_keywords():
    assert entry_text(LayerSpec(id="layer-1", type="MyLinear", params={"in_units": 4, "units": 3})) == (
        "MyLinear(in_units=4, units=3)"
    )


BROKEN = design_from_dict(
    {
        "input": {"shape": [2, 20]},
        "layers": [
            {"type": "LazyLinear", "params": {"out_features": 8}},
            {"type": "Linear", "params": {"in_features": 7, "out_features": 10}},
            {"type": "Linear", "params": {"in_features": 10, "out_features": 4}},
            {"type": "LazyLinear", "params": {"out_features": 3}},
        ],
    }
)


def test_a_failed_run_lists_every_entry_marking_the_failing_one_and_those_after_it():
    rows = layer_rows(BROKEN, run.analyze(BROKEN, run=True), run.analyze(BROKEN, run=False))
    assert [row["status"] for row in rows] == [Status.RAN, Status.FAILED, Status.NOT_REACHED, Status.NOT_REACHED]
    assert [row["params"] for row in rows] == [168, 80, 44, None], "built layers count; an unreached lazy one cannot"
    assert [row["output shape"] for row in rows] == ["(2, 8)", "?", "?", "?"]
    assert "expected in_features=7" in rows[1]["notes"]


def test_a_failed_run_lists_every_lazy_layer():
    rows = lazy_rows(run.analyze(BROKEN, run=True), run.analyze(BROKEN, run=False))
    assert [(row["parameter"], row["after"]) for row in rows] == [
        ("1 LazyLinear.weight", "(8, 20)"),
        ("1 LazyLinear.bias", "(8,)"),
        ("4 LazyLinear.weight", "not reached: the run stopped before this layer"),
        ("4 LazyLinear.bias", "not reached: the run stopped before this layer"),
    ]


def test_before_the_run_every_entry_is_built_and_its_lazy_parameters_wait():
    trace = run.analyze(BROKEN, run=False)
    assert {row["status"] for row in layer_rows(BROKEN, trace)} == {Status.BUILT}
    assert {row["after"] for row in lazy_rows(trace)} == {"run the forward pass"}


def test_a_block_is_one_row_named_by_its_type_label_and_size():
    design = load_example("resnet18")
    rows = layer_rows(design, run.analyze(design, run=True))
    assert len(rows) == len(design.layers)
    assert rows[5]["layer"] == 'Sequential block "layer2" (16 entries)'
    assert rows[0]["layer"] == "Conv2d(3, 64, 7, stride=2, padding=3, bias=False)"


# The export builds an encoder's inner layer first, so its call is not one constructor to compare with.
@pytest.mark.parametrize("layer_type", sorted(set(catalog()) - set(ENCODER_LAYERS)))
def test_every_catalog_layer_is_named_as_the_export_writes_its_call(layer_type):
    """The stack's label and the exported constructor agree on every layer: the same arguments in the same order,
    split the same way between positional and keyword (the export is how a person writes the call)."""
    spec = sample_design(layer_type).layers[0]
    exported = layer_source(spec.type, spec.params)
    written = exported.split("(", 1)[1].removesuffix(")")  # the project's tensor ops have no nn. prefix
    brackets = str.maketrans("", "", "[]()")  # the design holds lists where the export writes tuples
    assert written.translate(brackets) == call_args(spec).replace('"', "'").translate(brackets)
