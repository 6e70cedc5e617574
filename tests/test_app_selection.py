"""AppTest: the selected layer follows its id through every edit, undo, redo, move, duplicate, remove and drop.

Issue 16: the selection used to be a select box whose value Streamlit keeps as the option's label
("3 · LazyLinear(10)"); an edit changed the label, the box fell back to layer 1, and the next edit landed there.
Each test asserts which layer is selected and which layer an edit changed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.design import design_from_dict
from builder.examples import load_example
from builder.share import encode_design
from tests.board_events import board_stack, simulate_drop
from ui.stack import stack_label
from ui.text import WORD_JOINER

TIMEOUT = 30
APP = str(Path(__file__).resolve().parent.parent / "app.py")
LENET = load_example("lenet")
CENTERED = load_example("centered-layer")  # (4, 8) -> LazyLinear(128) -> CenteredLayer (custom code)


def open_app(design=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if design is not None:
        at.query_params["design"] = encode_design(design)
    at.run()
    assert not at.exception, at.exception
    return at


def run(at: AppTest) -> None:
    at.run()
    assert not at.exception, at.exception


def design(at: AppTest):
    return at.session_state["design"]


def ids(at: AppTest) -> list[str]:
    return [layer.id for layer in design(at).layers]


def params(at: AppTest, layer_id: str) -> dict:
    return design(at).layers[ids(at).index(layer_id)].params


def shown(text: str) -> str:
    """A label as the page shows it: the backslash escapes of ui.text.plain resolved."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text.replace(WORD_JOINER, ""))


def picker(at: AppTest) -> list[str]:
    """The layer buttons' labels, in stack order."""
    return [shown(b.label) for b in at.button if b.key and b.key.startswith("select.")]


def selected(at: AppTest) -> str:
    """The selected layer's id, as the page shows it: the one highlighted layer button."""
    chosen = [b.key.removeprefix("select.") for b in at.button if b.key and b.key.startswith("select.")]
    chosen = [key for key in chosen if at.button(key=f"select.{key}").proto.type == "primary"]
    assert len(chosen) == 1, f"exactly one layer is highlighted, got {chosen}"
    assert at.session_state["selected_layer"] == chosen[0]
    return chosen[0]


def select(at: AppTest, layer_id: str) -> None:
    at.button(key=f"select.{layer_id}").click()
    run(at)


def field(at: AppTest, layer_id: str, name: str):
    prefix = f"param.{layer_id}.{name}."
    widgets = [w for kind in ("number_input", "text_input", "checkbox", "selectbox") for w in at.get(kind)]
    return next(w for w in widgets if w.key and w.key.startswith(prefix))


def fields_shown(at: AppTest) -> set[str]:
    """The layer ids whose fields the inspector shows."""
    widgets = [w for kind in ("number_input", "text_input", "checkbox", "selectbox") for w in at.get(kind)]
    return {w.key.split(".")[1] for w in widgets if w.key and w.key.startswith("param.")}


def click(at: AppTest, key: str) -> None:
    at.button(key=key).click()
    run(at)


def stack_items(at: AppTest) -> list[str]:
    return board_stack(at)


@pytest.fixture
def at() -> AppTest:
    return open_app()


# ---------------------------------------------------------------- edits of the selected layer


def test_clicking_a_layer_selects_it_and_shows_its_fields(at):
    assert picker(at) == ["1 · LazyLinear(256)", "2 · ReLU()", "3 · LazyLinear(10)"]
    assert selected(at) == "layer-1"
    select(at, "layer-3")
    assert selected(at) == "layer-3"
    assert fields_shown(at) == {"layer-3"}
    assert field(at, "layer-3", "out_features").value == 10


def test_repeated_edits_stay_on_the_layer_they_were_made_on(at):
    """The issue's steps: pick layer 3, then + on out_features again and again."""
    select(at, "layer-3")
    key = field(at, "layer-3", "out_features").key
    for value in range(11, 16):
        field(at, "layer-3", "out_features").set_value(value).run()
        assert not at.exception, at.exception
        assert selected(at) == "layer-3"
        assert params(at, "layer-3")["out_features"] == value
        assert params(at, "layer-1")["out_features"] == 256, "layer 1 is never touched"
        assert picker(at)[2] == f"3 · LazyLinear({value})"
        assert stack_items(at)[2] == f"3 · LazyLinear({value})"
    assert field(at, "layer-3", "out_features").key == key, "the field is not re-created by its own edits"


def test_typed_fields_of_a_conv_all_land_on_it():
    """LeNet's second convolution: kernel_size then padding, typed one after the other."""
    at = open_app(LENET)
    select(at, "layer-4")
    field(at, "layer-4", "kernel_size").input("3").run()
    field(at, "layer-4", "padding").input("1").run()
    assert not at.exception, at.exception
    assert selected(at) == "layer-4"
    assert params(at, "layer-4") == {"in_channels": 6, "out_channels": 16, "kernel_size": 3, "padding": 1}
    assert params(at, "layer-1") == LENET.layers[0].params
    assert picker(at)[3] == "4 · Conv2d(6, 16, 3, padding=1)"


def test_an_invalid_value_is_explained_and_the_selection_stays(at):
    select(at, "layer-3")
    field(at, "layer-3", "out_features").set_value(0).run()
    assert selected(at) == "layer-3"
    assert params(at, "layer-3")["out_features"] == 10
    assert any("must be at least 1, got 0" in shown(c.value) for c in at.caption)


# ---------------------------------------------------------------- undo and redo


def test_undo_and_redo_keep_the_selection_and_show_the_value_of_the_moment(at):
    select(at, "layer-3")
    field(at, "layer-3", "out_features").set_value(11).run()
    field(at, "layer-3", "out_features").set_value(12).run()
    click(at, "undo_button")
    assert selected(at) == "layer-3"
    assert params(at, "layer-3")["out_features"] == 11
    assert field(at, "layer-3", "out_features").value == 11, "the field shows the undone value"
    click(at, "redo_button")
    assert selected(at) == "layer-3"
    assert field(at, "layer-3", "out_features").value == 12
    field(at, "layer-3", "out_features").set_value(13).run()
    assert params(at, "layer-3")["out_features"] == 13
    assert params(at, "layer-1")["out_features"] == 256


def test_undoing_the_add_of_the_selected_layer_selects_its_neighbour(at):
    click(at, "add_layer")
    assert selected(at) == "layer-4"
    click(at, "undo_button")
    assert ids(at) == ["layer-1", "layer-2", "layer-3"]
    assert selected(at) == "layer-3"
    click(at, "redo_button")
    assert selected(at) == "layer-3", "redo does not steal the selection"


# ---------------------------------------------------------------- move, duplicate, remove


def test_move_up_and_down_follow_the_layer(at):
    select(at, "layer-3")
    click(at, "move_up")
    assert ids(at) == ["layer-1", "layer-3", "layer-2"]
    assert selected(at) == "layer-3"
    assert picker(at) == ["1 · LazyLinear(256)", "2 · LazyLinear(10)", "3 · ReLU()"]
    click(at, "move_up")
    assert ids(at) == ["layer-3", "layer-1", "layer-2"]
    assert selected(at) == "layer-3"
    assert at.button(key="move_up").disabled
    field(at, "layer-3", "out_features").set_value(7).run()
    assert params(at, "layer-3")["out_features"] == 7
    click(at, "move_down")
    assert ids(at) == ["layer-1", "layer-3", "layer-2"]
    assert selected(at) == "layer-3"


def test_duplicate_selects_the_copy_and_remove_selects_the_neighbour(at):
    select(at, "layer-1")
    click(at, "duplicate")
    assert ids(at) == ["layer-1", "layer-4", "layer-2", "layer-3"]
    assert selected(at) == "layer-4"
    field(at, "layer-4", "out_features").set_value(64).run()
    assert params(at, "layer-4")["out_features"] == 64
    assert params(at, "layer-1")["out_features"] == 256
    click(at, "remove")
    assert ids(at) == ["layer-1", "layer-2", "layer-3"]
    assert selected(at) == "layer-2", "the layer that took its place"
    select(at, "layer-3")
    click(at, "remove")
    assert selected(at) == "layer-2", "the last layer's place goes to the one before it"


# ---------------------------------------------------------------- drops


def test_a_drop_from_the_palette_selects_the_new_layer(at):
    select(at, "layer-3")
    items = stack_items(at)
    simulate_drop(at, [items[0], "Linear", *items[1:]], palette_item="Linear")
    assert [layer.type for layer in design(at).layers] == ["LazyLinear", "Linear", "ReLU", "LazyLinear"]
    assert selected(at) == "layer-4"
    assert fields_shown(at) == {"layer-4"}


def test_a_reorder_drop_keeps_the_selected_layer(at):
    select(at, "layer-3")
    items = stack_items(at)
    simulate_drop(at, [items[2], items[0], items[1]])
    assert ids(at) == ["layer-3", "layer-1", "layer-2"]
    assert selected(at) == "layer-3"
    field(at, "layer-3", "out_features").set_value(5).run()
    assert params(at, "layer-3")["out_features"] == 5
    assert params(at, "layer-1")["out_features"] == 256


def test_trashing_another_layer_keeps_the_selection_and_trashing_it_selects_the_neighbour(at):
    select(at, "layer-3")
    items = stack_items(at)
    simulate_drop(at, [items[1], items[2]])
    assert ids(at) == ["layer-2", "layer-3"]
    assert selected(at) == "layer-3"
    items = stack_items(at)
    simulate_drop(at, [items[0]])
    assert ids(at) == ["layer-2"]
    assert selected(at) == "layer-2"


# ---------------------------------------------------------------- a new layer fits the shape it receives


def test_a_conv2d_dropped_after_lenets_first_pool_starts_with_its_channels():
    at = open_app(LENET)
    at.selectbox(key="palette_group").set_value("convolution").run()
    items = stack_items(at)
    simulate_drop(at, [*items[:3], "Conv2d", *items[3:]], palette_item="Conv2d")
    assert len(ids(at)) == len(LENET.layers) + 1
    new = design(at).layers[3]
    assert new.id == "layer-13" and new.type == "Conv2d"
    assert new.params["in_channels"] == 6, "(1, 6, 14, 14) comes in"
    assert selected(at) == new.id


def test_add_to_stack_fits_the_output_of_the_last_layer():
    at = open_app(LENET)
    at.selectbox(key="add_type").set_value("Linear").run()
    click(at, "add_layer")
    assert design(at).layers[-1].params == {"in_features": 10, "out_features": 10}


def test_after_a_custom_layer_the_shape_comes_only_from_a_run():
    """Custom code is never run to fit a new layer: before the forward pass, the catalog's samples stay."""
    at = open_app(CENTERED)
    at.selectbox(key="add_type").set_value("Linear").run()
    click(at, "add_layer")
    assert design(at).layers[-1].params["in_features"] == 20, "unknown: the catalog's sample"
    click(at, "undo_button")
    at.session_state["animation"] = "instant"
    click(at, "run_forward")
    click(at, "add_layer")
    assert design(at).layers[-1].params["in_features"] == 128, "(4, 128) from the forward pass the page shows"


def test_a_block_stands_in_the_stack_as_one_entry():
    """Format 2 designs hold blocks: the stack names them by their entries (they have no arguments of their own)."""
    block = design_from_dict(
        {
            "version": 2,
            "input": {"shape": [2, 20]},
            "layers": [
                {
                    "type": "Residual",
                    "body": [{"type": "Linear", "params": {"in_features": 20, "out_features": 20}}, {"type": "ReLU"}],
                }
            ],
        }
    ).layers[0]
    assert stack_label(1, block) == "2 · Residual block (2 entries)"


def test_fixing_a_layer_inside_a_block_keeps_it_selected():
    mismatch = design_from_dict(
        {
            "version": 2,
            "input": {"shape": [1, 8, 4, 4]},
            "layers": [
                {"type": "Sequential", "layers": [{"type": "Linear", "params": {"in_features": 5, "out_features": 10}}]}
            ],
        }
    )
    at = open_app(mismatch)
    linear = design(at).layers[0].layers[0].id
    at.session_state["model_dnd"] = {"nonce": "select-linear", "action": "select", "id": linear}
    run(at)
    click(at, "run_forward")
    [fix] = [b for b in at.button if b.key and b.key.startswith(f"fix.{linear}.") and "Flatten" in b.label]
    fix.click()
    run(at)
    assert [layer.type for layer in design(at).layers[0].layers] == ["Flatten", "Linear"]
    assert at.session_state["selected_layer"] == linear, "the fixed layer stays selected, not the Flatten before it"
    assert fields_shown(at) == {linear}
