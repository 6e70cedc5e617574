"""Parameter-count formulas against real torch: for every catalog layer, the formula's terms add up to what torch
builds on the CPU, and the printed arithmetic is right."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from builder.adapters import call_layer
from builder.catalog import call_style, catalog
from builder.custom import define_trusted
from builder.design import Design, InputSpec, LayerSpec
from builder.examples import load_example
from builder.formulas import (
    TABLE_TERMS,
    Formula,
    block_sum,
    call_text,
    design_formula,
    layer_buffers,
    module_tensors,
    table_formula,
    trace_formula,
)
from builder.inference import infer_shapes, inspect_design
from builder.layer_run import dummy_input, torch_params
from builder.samples import sample_design

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")  # batch_first=False

LAYER_TYPES = list(catalog())


def _cpu_layer(design: Design) -> nn.Module:
    """The design's one layer built straight from torch.nn on the CPU, run once so lazy layers materialize."""
    spec = design.layers[0]
    kwargs = torch_params(catalog()[spec.type], spec.params)
    if spec.type in ("TransformerEncoder", "TransformerDecoder"):
        num_layers = kwargs.pop("num_layers")
        layer = getattr(nn, spec.type)(getattr(nn, f"{spec.type}Layer")(**kwargs), num_layers=num_layers)
    elif not catalog()[spec.type].builtin:  # the builder's own layers (builder.tensor_ops)
        layer = catalog()[spec.type].factory(**kwargs)
    else:
        layer = getattr(nn, spec.type)(**kwargs)
    with torch.no_grad():
        call_layer(layer.eval(), call_style(spec.type, spec.params), dummy_input(design, "cpu"))
    return layer


def _evaluate(sides: str) -> tuple[int, int]:
    """``256 x 20 + 256 = 5,376`` -> (the sum of the products as printed, the total as printed)."""
    terms, total = sides.split(" = ")
    products = [math.prod(int(size.replace(",", "")) for size in term.split(" x ")) for term in terms.split(" + ")]
    return sum(products), int(total.replace(",", ""))


def _one_layer(layer_type: str, params: dict[str, Any], shape: tuple[int, ...]) -> Design:
    return Design(name="one", input=InputSpec(shape=shape), layers=(LayerSpec(type=layer_type, params=params),))


@pytest.mark.parametrize("layer_type", LAYER_TYPES)
def test_formula_adds_up_to_what_torch_builds(layer_type: str) -> None:
    design = sample_design(layer_type)
    traced = infer_shapes(design).layers[0]
    built = _cpu_layer(design)
    formula = design_formula(design.layers[0], traced, design.input.dtype)
    assert formula.total == sum(p.numel() for p in built.parameters())
    assert formula.buffer_total == sum(b.numel() for b in built.buffers())
    if formula.params:
        assert _evaluate(formula.expression().split(" (+ ")[0]) == (formula.total, formula.total)
    else:
        assert formula.expression().startswith("no parameters")


@pytest.mark.parametrize(
    ("layer_type", "params", "shape", "text"),
    [
        ("LazyLinear", {"out_features": 256}, (2, 20), "LazyLinear(256) on 20 features: 256 x 20 + 256 = 5,376"),
        (
            "Conv2d",
            {"in_channels": 3, "out_channels": 64, "kernel_size": 3},
            (1, 3, 8, 8),
            "Conv2d(3, 64, 3): 64 x 3 x 3 x 3 + 64 = 1,792",
        ),
        (
            "BatchNorm2d",
            {"num_features": 64},
            (2, 64, 4, 4),
            "BatchNorm2d(64): 64 + 64 = 128 (+ 129 buffer values: 64 + 64 + 1)",
        ),
        ("ReLU", {}, (2, 20), "ReLU(): no parameters"),
        (
            "Conv2d",
            {"in_channels": 3, "out_channels": 8, "kernel_size": [5, 5], "stride": 2, "bias": False},
            (1, 3, 16, 16),
            "Conv2d(3, 8, (5, 5), stride=2, bias=False): 8 x 3 x 5 x 5 = 600",
        ),
    ],
)
def test_the_issues_examples_read_as_the_book_writes_them(layer_type, params, shape, text) -> None:
    design = _one_layer(layer_type, params, shape)
    formula = design_formula(design.layers[0], infer_shapes(design).layers[0])
    assert formula.text() == text


def test_a_lazy_layer_before_the_forward_pass_has_no_count_yet() -> None:
    design = load_example("d2l-mlp")
    layer = inspect_design(design).layers[0]
    formula = trace_formula(layer, design.layers[0])
    assert formula.pending == ("weight", "bias")
    assert formula.text() == "LazyLinear(256): ? (weight, bias uninitialized until the forward pass)"
    assert table_formula(layer).startswith("?")


def test_the_table_cell_shortens_long_sums_but_keeps_the_total() -> None:
    design = sample_design("Transformer")
    layer = infer_shapes(design).layers[0]
    cell = table_formula(layer)
    assert len(layer.params_after) > TABLE_TERMS
    assert f"+ ... ({len(layer.params_after) - TABLE_TERMS} more) = {layer.params:,}" in cell
    assert cell.count(" + ") == TABLE_TERMS  # the terms shown, then the "... more"


def test_a_custom_layers_formula_comes_from_its_own_parameters() -> None:
    design = load_example("my-linear")
    classes = define_trusted(design.custom_layers)
    trace = infer_shapes(design, classes)
    formula = trace_formula(trace.layers[1], design.layers[1], layer_buffers(design.layers[1], (2, 64)))
    assert formula.text() == "MyLinear(in_units=64, units=8): 64 x 8 + 8 = 520"
    assert formula.total == trace.layers[1].params


def test_module_tensors_read_parameters_and_buffers_of_a_module() -> None:
    params, buffers = module_tensors(nn.BatchNorm1d(4))
    assert [(p.name, p.shape) for p in params] == [("weight", (4,)), ("bias", (4,))]
    names = [(b.name, b.shape) for b in buffers]
    assert names == [("running_mean", (4,)), ("running_var", (4,)), ("num_batches_tracked", ())]
    params, _ = module_tensors(nn.LazyLinear(3))
    assert [p.shape for p in params] == [None, None]


def test_call_text_gives_required_arguments_by_position_and_changed_ones_by_name() -> None:
    assert call_text("Linear", {"in_features": 20, "out_features": 10, "bias": True}) == "Linear(20, 10)"
    assert call_text("Dropout", {"p": 0.2}) == "Dropout(p=0.2)"
    assert call_text("LayerNorm", {"normalized_shape": [16]}, prefix="nn.") == "nn.LayerNorm([16])"
    assert call_text("MaxPool2d", {"kernel_size": [2, 2], "stride": [2, 2]}) == "MaxPool2d((2, 2), stride=(2, 2))"


def test_rows_list_every_tensor_with_its_product() -> None:
    design = _one_layer("BatchNorm1d", {"num_features": 4}, (2, 4))
    formula: Formula = design_formula(design.layers[0], infer_shapes(design).layers[0])
    rows = formula.rows()
    assert [(r["tensor"], r["kind"], r["values"]) for r in rows] == [
        ("weight", "parameter", 4),
        ("bias", "parameter", 4),
        ("running_mean", "buffer", 4),
        ("running_var", "buffer", 4),
        ("num_batches_tracked", "buffer", 1),
    ]
    assert rows[-1]["product"] == "1"


def test_a_blocks_count_is_the_sum_of_its_layers_counts() -> None:
    design = Design.model_validate(
        {
            "version": 2,
            "name": "blocks",
            "input": {"shape": [1, 3, 8, 8]},
            "layers": [
                {"type": "Conv2d", "params": {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1}},
                {
                    "type": "Residual",
                    "repeat": 2,
                    "body": [
                        {
                            "type": "Conv2d",
                            "params": {"in_channels": 8, "out_channels": 8, "kernel_size": 3, "padding": 1},
                        },
                        {"type": "BatchNorm2d", "params": {"num_features": 8}},
                    ],
                },
            ],
        }
    )
    trace = infer_shapes(design)
    block = trace.layers[1]
    assert table_formula(block, trace) == "584 + 16 + 584 + 16 = 1,200" and block.params == 1_200
    assert table_formula(block) == "1,200 (its layers' sum)"
    assert block_sum(trace, trace.layer(block.id)) == "584 + 16 + 584 + 16 = 1,200"
