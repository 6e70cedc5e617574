"""AppTest for the Build page's real-values panel: a real input through the whole stack on the CPU, per-layer values,
the chosen layer's parameters and their formula; refusals say why; custom code never runs in the server for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.design import design_from_dict
from builder.examples import load_example
from builder.share import encode_design
from builder.values import InputKind
from tests.html_tables import tables

TIMEOUT = 30
APP = str(Path(__file__).resolve().parent.parent / "app.py")
BOOK_INPUT = "torch.tensor([1.0, 2, 3, 4, 5])"


def open_app(design=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if design is not None:
        at.query_params["design"] = encode_design(design)
    at.run()
    assert not at.exception, at.exception
    return at


def run_values(at: AppTest) -> None:
    at.button(key="values.run").click().run()
    assert not at.exception, at.exception


def values_table(at: AppTest):
    return next(d.value for d in at.dataframe if "mean" in d.value.columns and "notes" in d.value.columns)


def params_table(at: AppTest):
    return next(d.value for d in at.dataframe if "parameter" in d.value.columns and "mean" in d.value.columns)


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


@pytest.fixture
def at() -> AppTest:
    return open_app()


def test_the_panel_explains_the_choice_before_anything_runs(at):
    assert "Real values" in [s.value for s in at.subheader]
    assert any("meta device" in c and "CPU" in c for c in captions(at))
    assert at.button(key="values.run").label == "Run with real values"
    assert not any("mean" in d.value.columns for d in at.dataframe)  # nothing ran yet


def test_random_input_through_the_seed_mlp_shows_each_layers_values(at):
    run_values(at)
    table = values_table(at)
    assert list(table["layer"]) == ["input", "layer-1", "layer-2", "layer-3"]
    assert list(table["output shape"]) == ["(2, 20)", "(2, 256)", "(2, 256)", "(2, 10)"]
    assert table["notes"][2] == "all values >= 0"  # after the ReLU
    assert all(value.endswith("values)") for value in table["values"])
    params = params_table(at)
    assert list(params["parameter"]) == ["weight", "bias"]
    assert list(params["shape"]) == ["(256, 20)", "(256,)"]
    assert "Parameter count: LazyLinear(256) on 20 features: 256 x 20 + 256 = 5,376" in captions(at)


def test_typed_values_like_the_books_run_with_their_own_shape(at):
    at.button_group(key="values.kind").set_value(InputKind.TYPED).run()
    assert at.text_input(key="values.text.float32").value == BOOK_INPUT
    assert any(c.startswith("Shape (5,)") for c in captions(at))
    run_values(at)
    table = values_table(at)
    assert table["values"][0] == "[1.0, 2.0, 3.0, 4.0, 5.0]"
    assert table["mean"][0] == "3.0"
    assert list(table["output shape"])[1:] == ["(256,)", "(256,)", "(10,)"]  # lazy layers inferred 5 features
    assert "Parameter count: LazyLinear(256) on 5 features: 256 x 5 + 256 = 1,536" in captions(at)


def test_typed_text_that_is_not_numbers_is_explained_and_cannot_run(at):
    at.button_group(key="values.kind").set_value(InputKind.TYPED).run()
    at.text_input(key="values.text.float32").input("[1, 2, 'three']").run()
    assert any("three" in c and "is not a number" in c for c in captions(at))
    assert at.button(key="values.run").disabled


def test_the_build_pages_selected_layer_shows_its_parameters(at):
    at.session_state["selected_layer"] = "layer-3"
    run_values(at)
    assert list(params_table(at)["shape"]) == ["(10, 256)", "(10,)"]
    assert "Parameter count: LazyLinear(10) on 256 features: 10 x 256 + 10 = 2,570" in captions(at)


def test_the_same_seed_repeats_the_numbers_and_another_changes_them(at):
    run_values(at)
    first = list(values_table(at)["values"])
    at.run()
    assert list(values_table(at)["values"]) == first
    at.number_input(key="values.seed").set_value(1).run()
    assert not any("mean" in d.value.columns for d in at.dataframe)  # another input: not run yet
    run_values(at)
    assert list(values_table(at)["values"]) != first


def test_an_edit_hides_the_old_values_until_the_next_run(at):
    run_values(at)
    at.session_state["animation"] = "instant"
    at.button(key="run_forward").click().run()  # the dummy pass changes nothing here: the values stay
    assert values_table(at)["layer"][0] == "input"
    shape = next(w for w in at.text_input if w.key and w.key.startswith("input_shape."))
    shape.input("4, 20").run()
    assert not any("mean" in d.value.columns for d in at.dataframe)
    assert any("changed since the last run" in c for c in captions(at))
    run_values(at)
    assert values_table(at)["output shape"][0] == "(4, 20)"


def test_a_model_too_big_for_the_cpu_is_refused_with_the_reason():
    big = design_from_dict(
        {
            "name": "wide",
            "input": {"shape": [1, 8192]},
            "layers": [{"type": "Linear", "params": {"in_features": 8192, "out_features": 8192}}],
        }
    )
    at = open_app(big)
    run_values(at)
    warning = at.warning[0].value.replace("\\", "")  # shown escaped, as plain text
    assert "67,117,056 parameters" in warning and "50,000,000" in warning
    assert not any("mean" in d.value.columns for d in at.dataframe)


def test_a_design_with_custom_layers_runs_its_values_in_the_sandbox():
    at = open_app(load_example("centered-layer"))  # the project's example: its code is approved
    run_button = [b for b in at.button if b.key == "values.run"]
    assert run_button, "the panel offers the run for custom layers too"
    run_button[0].click().run(timeout=60)  # the first job may wait for a sandbox worker
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    tables = [frame.value for frame in at.dataframe]
    assert any("CenteredLayer" in table.to_string() for table in tables), "the custom layer's values are shown"


def test_a_design_whose_code_waits_for_approval_shows_no_values_panel():
    source = "class Waiting(nn.Module):\n    def forward(self, X):\n        return X\n"
    waiting = design_from_dict(
        {
            "name": "waiting",
            "input": {"shape": [2, 4]},
            "layers": [{"type": "Waiting"}],
            "custom_layers": [{"name": "Waiting", "source": source}],
        }
    )
    at = open_app(waiting)
    assert "Real values" not in [s.value for s in at.subheader]
    assert not [b for b in at.button if b.key == "values.run"]


def test_formula_ui_shows_a_layers_formula_and_its_terms():
    def script() -> None:
        from builder.examples import load_example
        from builder.inference import infer_shapes
        from ui.values import formula_ui

        design = load_example("lenet")
        formula_ui(design, infer_shapes(design), design.layers[0].id)

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert "Conv2d(1, 6, 5, padding=2): 6 x 1 x 5 x 5 + 6 = 156" in [text.value for text in at.text]
    assert list(tables(at)[0]["tensor"]) == ["weight", "bias"]


def test_token_ids_for_an_embedding_design_are_typed_as_whole_numbers():
    at = open_app(load_example("text-lstm"))
    kinds = at.button_group(key="values.kind")
    assert [option.content for option in kinds.proto.options] == ["Random token ids (torch.randint)", "Typed values"]
    kinds.set_value(InputKind.TYPED).run()
    assert at.text_input(key="values.text.int64").value == "torch.tensor([[1, 5, 2, 7]])"
    run_values(at)
    table = values_table(at)
    assert table["values"][0] == "[1.0, 5.0, 2.0, 7.0]"
    assert table["output shape"][1] == "(1, 4, 32)"  # the Embedding's output: one vector per token id
