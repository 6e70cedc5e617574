"""Parameter tying: a ``Shared`` entry reuses an earlier layer's module (the book's ``shared = nn.LazyLinear(8)``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from builder.design import DesignError, design_from_dict, dump_design, load_design
from builder.examples import load_example
from builder.graph import TIE_FILLS, render_graph
from builder.inference import infer_shapes, inspect_design
from builder.summary import format_summary, summary_json, summary_rows
from builder.values import ValueInput, run_values

LINEAR8: dict[str, Any] = {"type": "LazyLinear", "params": {"out_features": 8}}
RELU: dict[str, Any] = {"type": "ReLU"}


def _design(layers: list[dict[str, Any]], shape: tuple[int, ...] = (2, 20), version: int = 2) -> dict[str, Any]:
    return {"version": version, "name": "tied", "input": {"shape": list(shape)}, "layers": layers}


def _tied(of: str = "layer-3") -> dict[str, Any]:
    layers = [
        LINEAR8,
        RELU,
        LINEAR8,
        RELU,
        {"type": "Shared", "of": of},
        RELU,
        {**LINEAR8, "params": {"out_features": 1}},
    ]
    return _design(layers)


def test_the_books_tied_mlp_counts_the_shared_layer_once() -> None:
    trace = infer_shapes(load_example("d2l-tied-mlp"))
    assert trace.ok and trace.output_shape == (2, 1)
    assert [layer.params for layer in trace.layers] == [168, 0, 72, 0, 0, 0, 9]
    assert trace.total_params == 249  # 72 once, not twice
    shared = trace.layers[4]
    assert (shared.type, shared.shares, shared.input_shape, shared.output_shape) == (
        "Shared",
        "layer-3",
        (2, 8),
        (2, 8),
    )
    assert shared.flops == trace.layers[2].flops  # it does run again


def test_the_table_says_what_it_shares_and_where_the_count_is() -> None:
    design = load_example("d2l-tied-mlp")
    trace = infer_shapes(design)
    row = summary_rows(trace)[4]
    assert row["params"] == 0
    assert row["formula"] == "counted once, at layer-3"
    assert row["notes"].startswith("shares layer-3 (LazyLinear)")
    assert "Total params: 249" in format_summary(trace)
    assert summary_json(design, trace)["layers"][4]["formula"] == "counted once, at layer-3"


def test_before_a_run_the_table_already_says_shares() -> None:
    trace = inspect_design(load_example("d2l-tied-mlp"))
    assert summary_rows(trace)[4]["notes"].startswith("shares layer-3")


def test_a_shared_layer_whose_input_differs_fails_naming_both_layers_both_shapes_and_the_fix() -> None:
    trace = infer_shapes(design_from_dict(_tied(of="layer-1")))  # layer-1 first saw (2, 20); layer-5 gets (2, 8)
    assert trace.error is not None and trace.error.layer_id == "layer-5"
    message = trace.error.message
    for part in ("layer-5", "layer-1 (LazyLinear)", "(2, 20)", "(2, 8)", "in_features=20", "same size", "Fix:"):
        assert part in message, message
    assert [layer.id for layer in trace.layers] == ["layer-1", "layer-2", "layer-3", "layer-4"]


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([LINEAR8, {"type": "Shared", "of": "layer-9"}], "layers[1] (Shared): 'of' names 'layer-9', which is no layer"),
        ([{"type": "Shared", "of": "layer-2"}, LINEAR8], "which comes after it; a Shared entry reuses an earlier"),
        ([LINEAR8, {"type": "Shared", "of": "layer-1"}, {"type": "Shared", "of": "layer-2"}], "itself a Shared entry"),
        ([{"type": "Sequential", "layers": [LINEAR8]}, {"type": "Shared", "of": "layer-1"}], "a Sequential block"),
        ([{"type": "Sequential", "layers": [LINEAR8]}, {"type": "Shared", "of": "layer-2"}], "inside a block"),
        ([LINEAR8, {"type": "Sequential", "layers": [{"type": "Shared", "of": "layer-1"}]}], "at the top level"),
        ([LINEAR8, {"type": "Shared"}], "layers[1].of (layer type Shared): Field required"),
        ([LINEAR8, {"type": "Shared", "of": "layer-1", "params": {}}], "layers[1].params (layer type Shared)"),
    ],
)
def test_a_bad_shared_entry_is_refused_naming_its_place(layers: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(DesignError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        design_from_dict(_design(layers))


def test_shared_entries_need_format_2_and_files_keep_them() -> None:
    with pytest.raises(DesignError, match=r'shared layers need design format 2; set "version": 2'):
        design_from_dict(_design([LINEAR8, {"type": "Shared", "of": "layer-1"}], version=1))
    design = design_from_dict(_tied())
    data = json.loads(dump_design(design))
    assert data["version"] == 2 and data["layers"][4] == {"type": "Shared", "of": "layer-3", "id": "layer-5"}
    assert load_design(dump_design(design)) == design


def test_a_custom_layer_cannot_be_called_shared_next_to_shared_entries() -> None:
    source = "class Shared(nn.Module):\n    def forward(self, X):\n        return X\n"
    data = _tied() | {"custom_layers": [{"name": "Shared", "source": source}]}
    with pytest.raises(DesignError, match=r"custom_layers\[0\] \(Shared\): 'Shared' is an entry type"):
        design_from_dict(data)


def test_the_graph_fills_both_alike_and_joins_them_by_a_dashed_edge() -> None:
    design = load_example("d2l-tied-mlp")
    source = render_graph(design, infer_shapes(design)).source
    fill = f'fillcolor="{TIE_FILLS[0]}"'
    lines = {line.split()[0]: line for line in source.splitlines() if "[label=" in line and "->" not in line}
    assert fill in lines['"layer-3"'] and fill in lines['"layer-5"'] and fill not in lines['"layer-1"']
    assert "shares layer-3" in lines['"layer-5"']
    tie = next(line for line in source.splitlines() if '"layer-3" -> "layer-5"' in line)
    assert "style=dashed" in tie and "same module" in tie


def test_real_values_run_the_same_module_at_both_places() -> None:
    run = run_values(load_example("d2l-tied-mlp"), ValueInput(shape=(2, 20)))
    assert run.problem == ""
    assert [layer.type for layer in run.layers][4] == "Shared"
    assert run.layers[-1].output.shape == (2, 1)
