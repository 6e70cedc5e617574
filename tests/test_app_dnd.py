"""AppTest: the drag-and-drop board's events, the blocks' editing UI, and the buttons that do the same.

A drop is simulated by giving the board the value a browser would send (``ui.dnd.Event`` as JSON, with a fresh
nonce); what the board shows is read from its arguments. The drags themselves need a browser
(tests/browser/test_dnd_browser.py).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.design import design_from_dict
from builder.examples import load_example
from builder.share import encode_design
from tests.page_text import shown
from ui import dnd

TIMEOUT = 30
APP = str(Path(__file__).resolve().parent.parent / "app.py")
NONCES = itertools.count()
RESIDUAL = design_from_dict(
    {
        "version": 2,
        "name": "one-residual",
        "input": {"shape": [1, 8, 16, 16]},
        "layers": [
            {"type": "Conv2d", "params": {"in_channels": 8, "out_channels": 16, "kernel_size": 3, "padding": 1}},
            {
                "type": "Residual",
                "label": "res1",
                "body": [{"type": "BatchNorm2d", "params": {"num_features": 16}}, {"type": "ReLU"}],
            },
            {"type": "Flatten"},
        ],
    }
)


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


def send(at: AppTest, action: str, **fields) -> str:
    """Hand the board the value a browser sends for a drop or a click; returns its nonce."""
    nonce = f"test-{next(NONCES)}"
    at.session_state[dnd.KEY] = {"nonce": nonce, "action": action, **fields}
    run(at)
    return nonce


def add(at: AppTest, entry_type: str, index: int, parent: str | None = None, stack: str = "layers") -> None:
    kind = "block" if entry_type in {"Sequential", "Residual", "Parallel"} else "layer"
    send(at, "add", type=entry_type, kind=kind, parent=parent, stack=stack, index=index)


def board(at: AppTest) -> dict:
    """The board's arguments: what the browser is told to draw."""
    [element] = [e for e in at.get("component_instance") if e.proto.component_name == "ui.dnd.model_dnd"]
    return json.loads(element.proto.json_args)


def stacks(at: AppTest) -> dict[str, list[str]]:
    """The stacks on the board: title -> item labels."""
    return {stack["title"]: [i["label"] for i in stack["items"]] for stack in board(at)["stacks"]}


def palette(at: AppTest) -> dict[str, list[str]]:
    return {group["title"]: [i["type"] for i in group["items"]] for group in board(at)["palette"]}


def design(at: AppTest):
    return at.session_state["design"]


def types(at: AppTest) -> list[str]:
    return [layer.type for layer in design(at).layers]


def refusals(at: AppTest) -> list[str]:
    return [shown([warning]) for warning in at.warning]


@pytest.fixture
def at() -> AppTest:
    return open_app()


# ---------------------------------------------------------------- the model's stack


def test_the_board_shows_the_palette_the_stack_and_where_you_are(at):
    groups = palette(at)
    assert groups["Blocks"] == ["Sequential", "Residual", "Parallel"]
    assert groups["In this model"] == ["LazyLinear", "ReLU"]
    assert groups["Linear"] == ["Bilinear", "Identity", "Linear"]
    assert stacks(at) == {"Model stack": ["1 · LazyLinear(256)", "2 · ReLU()", "3 · LazyLinear(10)"]}
    assert [crumb["label"] for crumb in board(at)["crumbs"]] == ["Model"]
    selected = [i["id"] for i in board(at)["stacks"][0]["items"] if i["selected"]]
    assert selected == ["layer-1"]


def test_a_palette_drop_copies_the_layer_where_it_was_dropped_and_selects_it(at):
    before = palette(at)
    nonce = send(at, "add", type="Linear", kind="layer", parent=None, stack="layers", index=1)
    assert types(at) == ["LazyLinear", "Linear", "ReLU", "LazyLinear"]
    assert design(at).layers[1].params == {"in_features": 256, "out_features": 10}, "fitted to (2, 256)"
    assert at.session_state["selected_layer"] == design(at).layers[1].id
    assert palette(at)["Linear"] == before["Linear"], "the palette keeps its items"
    assert board(at)["ack"] == nonce, "the board learns its drop was handled"
    run(at)
    assert len(design(at).layers) == 4, "an event is applied once, however many reruns follow"


def test_moves_and_trash_keep_the_selection_on_its_layer(at):
    at.button(key="select.layer-3").click()
    run(at)
    send(at, "move", id="layer-1", parent=None, stack="layers", index=2)
    assert [layer.id for layer in design(at).layers] == ["layer-2", "layer-3", "layer-1"]
    assert at.session_state["selected_layer"] == "layer-3"
    send(at, "remove", id="layer-2")
    assert [layer.id for layer in design(at).layers] == ["layer-3", "layer-1"]
    send(at, "remove", id="layer-3")
    assert at.session_state["selected_layer"] == "layer-1", "the trashed layer's place goes to its neighbour"
    at.button(key="undo_button").click()
    run(at)
    assert [layer.id for layer in design(at).layers] == ["layer-3", "layer-1"], "each drop is one undo step"


def test_a_drop_the_model_cannot_take_is_refused_with_the_reason_and_changes_nothing():
    at = open_app(RESIDUAL)
    send(at, "move", id="layer-2", parent="layer-2", stack="body", index=0)
    assert design(at) == RESIDUAL
    assert refusals(at) == [
        "Not applied, the model is unchanged: a block cannot go inside itself: Residual layer-2 holds that stack"
    ]
    send(at, "remove", id="layer-3")
    send(at, "remove", id="layer-4")
    assert [layer.type for layer in design(at).layers[1].body] == ["ReLU"]
    assert "a Residual needs a body" in refusals(at)[0], "its last body layer stays"
    send(at, "remove", id="layer-99")
    assert refusals(at) == ["That item is no longer in the model (the page was behind): nothing changed. Try again."]
    send(at, "select", id="layer-1", extend=False)
    assert refusals(at) == [], "the next event clears the message"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "add",
        {"action": "explode", "nonce": "x"},
        {"action": "add", "nonce": "x", "type": "Linear", "stack": "layers", "index": -1},
        {"action": "move", "nonce": "x", "id": "layer-1", "stack": "layers", "index": True},
        {"action": "remove", "nonce": "", "id": "layer-1"},
        {"action": "remove", "nonce": "x", "id": "l" * 500},
    ],
)
def test_a_value_the_board_never_sends_is_ignored(value):
    assert dnd.parse_event(value) is None


def test_the_events_the_board_sends_are_read():
    event = dnd.parse_event(
        {"action": "add", "nonce": "n", "type": "Conv2d", "parent": None, "stack": "layers", "index": 2}
    )
    assert event == dnd.Event("n", dnd.Action.ADD, type="Conv2d", stack="layers", index=2)
    assert dnd.parse_event({"action": "open", "nonce": "n", "id": None}) == dnd.Event("n", dnd.Action.OPEN)


# ---------------------------------------------------------------- blocks


def test_a_block_from_the_palette_is_one_item_and_opens_when_selected(at):
    add(at, "Residual", 3)
    assert stacks(at)["Model stack"][-1] == "4 · Residual block (1 entry)"
    block = design(at).layers[-1].id
    assert at.session_state["selected_layer"] == block
    send(at, "select", id=block, extend=False)
    assert stacks(at) == {"body": ["1 · Identity()"], "shortcut": []}
    assert [crumb["label"] for crumb in board(at)["crumbs"]] == ["Model", "Residual"]
    add(at, "Linear", 0, parent=block, stack="body")
    body = design(at).layers[-1].body
    assert [layer.type for layer in body] == ["Linear", "Identity"]
    assert body[0].params["in_features"] == 10, "fitted to what the block receives: (2, 10)"
    assert stacks(at)["body"] == ["1 · Linear(10, 10)", "2 · Identity()"]
    assert [b.key for b in at.button if b.key and b.key.startswith("select.")] == [
        f"select.{body[0].id}",
        f"select.{body[1].id}",
    ], "the layer buttons show the open block's stacks"
    send(at, "open", id=None)
    assert list(stacks(at)) == ["Model stack"]
    assert at.session_state["selected_layer"] == block, "the block just left stays selected"


def test_a_residual_shows_body_and_shortcut_and_a_breadcrumb_drop_moves_out():
    at = open_app(RESIDUAL)
    send(at, "select", id="layer-2", extend=False)
    assert stacks(at) == {"body": ["1 · BatchNorm2d(16)", "2 · ReLU()"], "shortcut": []}
    crumbs = board(at)["crumbs"]
    assert [crumb["label"] for crumb in crumbs] == ["Model", "res1 (Residual)"]
    assert crumbs[0]["drop"] == {"parent": None, "stack": "layers", "index": 2}, "after the block, in the model"
    send(at, "open", id=None)
    residual = board(at)["stacks"][0]["items"][1]
    assert (residual["inner"], residual["count"]) == ("body", 2), "a drop on the block's middle goes at its body's end"
    send(at, "move", id="layer-5", parent="layer-2", stack="body", index=residual["count"])
    assert [layer.id for layer in design(at).layers[1].body] == ["layer-3", "layer-4", "layer-5"]
    send(at, "move", id="layer-5", parent=None, stack="layers", index=2)
    send(at, "select", id="layer-2", extend=False)
    assert board(at)["note"] == "merged by add"
    send(at, "move", id="layer-4", parent="layer-2", stack="shortcut", index=0)
    assert stacks(at) == {"body": ["1 · BatchNorm2d(16)"], "shortcut": ["1 · ReLU()"]}
    send(at, "move", id="layer-4", **crumbs[0]["drop"])
    assert [layer.id for layer in design(at).layers] == ["layer-1", "layer-2", "layer-4", "layer-5"]
    send(at, "select", id="layer-3", extend=False)
    assert "layer-3" in [layer.id for layer in design(at).layers[1].body] and list(stacks(at)) == ["body", "shortcut"]
    at.session_state["selected_layer"] = "layer-1"  # as a click on the graph does
    run(at)
    assert list(stacks(at)) == ["Model stack"], "a layer selected elsewhere brings its stack on view"


def test_a_parallel_adds_and_removes_branches(at):
    add(at, "Parallel", 3)
    block = design(at).layers[-1].id
    send(at, "select", id=block, extend=False)
    assert stacks(at) == {"branch 1": [], "branch 2": []}
    assert board(at)["add_branch"] == block
    send(at, "add_branch", id=block)
    add(at, "ReLU", 0, parent=block, stack="branches/2")
    assert list(stacks(at)) == ["branch 1", "branch 2", "branch 3"]
    send(at, "remove_branch", id=block, branch=0)
    assert stacks(at) == {"branch 1": [], "branch 2": ["1 · ReLU()"]}
    send(at, "select", id=block, extend=False)  # the inspector's buttons do the same
    at.button(key=f"remove_branch.{block}.0").click()
    run(at)
    assert stacks(at) == {"branch 1": ["1 · ReLU()"]}
    assert not [stack for stack in board(at)["stacks"] if stack["removable"]], "its last branch stays"
    at.button(key=f"add_branch.{block}").click()
    run(at)
    assert len(design(at).layers[-1].branches) == 2


def test_wrap_a_selected_run_in_one_click_and_unwrap_it(at):
    send(at, "select", id="layer-1", extend=False)
    send(at, "select", id="layer-2", extend=True)
    assert [i["marked"] for i in board(at)["stacks"][0]["items"]] == [True, True, False]
    at.button(key="wrap.Residual").click()
    run(at)
    assert types(at) == ["Residual", "LazyLinear"]
    assert [layer.id for layer in design(at).layers[0].body] == ["layer-1", "layer-2"]
    block = design(at).layers[0].id
    assert at.session_state["selected_layer"] == block
    assert stacks(at)["Model stack"][0] == "1 · Residual block (2 entries)"
    at.button(key="unwrap").click()
    run(at)
    assert [layer.id for layer in design(at).layers] == ["layer-1", "layer-2", "layer-3"]
    at.button(key="undo_button").click()
    run(at)
    assert types(at) == ["Residual", "LazyLinear"], "unwrap is one undo step"


def test_the_wrap_through_box_picks_the_run_from_the_keyboard(at):
    at.button(key="select.layer-2").click()
    run(at)
    [through] = [box for box in at.selectbox if box.key and box.key.startswith("wrap_through.layer-2.")]
    through.set_value("layer-3")
    run(at)
    at.button(key="wrap.Sequential").click()
    run(at)
    assert types(at) == ["LazyLinear", "Sequential"]
    assert [layer.id for layer in design(at).layers[1].layers] == ["layer-2", "layer-3"]
    assert at.button(key="unwrap").disabled is False


def test_the_block_inspector_edits_label_repeat_merge_and_dim():
    at = open_app(RESIDUAL)
    at.button(key="select.layer-2").click()
    run(at)
    generation = at.session_state["generation"]
    at.text_input(key=f"block.layer-2.label.{generation}").input("stage1")
    run(at)
    at.number_input(key=f"block.layer-2.repeat.{generation}").set_value(3)
    run(at)
    at.selectbox(key=f"block.layer-2.merge.{generation}").set_value("concat")
    run(at)
    block = design(at).layers[1]
    assert (block.label, block.repeat, block.merge) == ("stage1", 3, "concat")
    at.number_input(key=f"block.layer-2.dim.{generation}").set_value(-3)
    run(at)
    assert design(at).layers[1].dim == -3
    assert board(at)["crumbs"][-1]["label"] == "stage1 (Residual)"
    assert stacks(at)["body"] == ["1 · BatchNorm2d(16)", "2 · ReLU()"]
    send(at, "open", id=None)
    assert stacks(at)["Model stack"][1] == '2 · Residual block "stage1" x3 (2 entries)'
    at.text_input(key=f"block.layer-2.label.{generation}").input("two\nlines")
    run(at)
    assert design(at).layers[1].label == "stage1"
    assert "label" in shown(at.caption), "the reason is shown beside the field"


def test_a_layer_inside_a_block_is_edited_in_place():
    at = open_app(RESIDUAL)
    send(at, "select", id="layer-3", extend=False)
    generation = at.session_state["generation"]
    at.number_input(key=f"param.layer-3.num_features.{generation}").set_value(32)
    run(at)
    assert design(at).layers[1].body[0].params == {"num_features": 32}
    assert design(at).layers[0].params["out_channels"] == 16, "nothing else changes"
    assert "In layers[1].body[0]" in shown(at.caption).splitlines()


def test_the_keyboard_buttons_act_inside_an_open_block():
    at = open_app(RESIDUAL)
    send(at, "select", id="layer-3", extend=False)
    at.button(key="move_down").click()
    run(at)
    assert [layer.id for layer in design(at).layers[1].body] == ["layer-4", "layer-3"]
    at.selectbox(key="add_type").set_value("Identity")
    run(at)
    at.button(key="add_layer").click()
    run(at)
    assert [layer.type for layer in design(at).layers[1].body] == ["ReLU", "BatchNorm2d", "Identity"]
    assert len(design(at).layers) == 3, "Add to stack adds to the open block, after the selected layer"
    at.button(key="open.model").click()
    run(at)
    assert list(stacks(at)) == ["Model stack"]
    at.button(key="duplicate").click()
    run(at)
    assert types(at) == ["Conv2d", "Residual", "Residual", "Flatten"], "a block duplicates with all it holds"


def test_lenet_keeps_its_palette_groups_and_search():
    at = open_app(load_example("lenet"))
    at.text_input(key="palette_search").input("pool2d")
    run(at)
    groups = palette(at)
    assert "Blocks" not in groups, "the search filters every group"
    assert groups["In this model"] == ["AvgPool2d"]
    assert "MaxPool2d" in groups["Pooling"]


def test_a_bad_merge_is_fixed_in_one_click():
    widening = design_from_dict(
        {
            "version": 2,
            "input": {"shape": [1, 8, 16, 16]},
            "layers": [
                {
                    "type": "Residual",
                    "body": [{"type": "Conv2d", "params": {"in_channels": 8, "out_channels": 16, "kernel_size": 1}}],
                }
            ],
        }
    )
    at = open_app(widening)
    at.button(key="run_forward").click()
    run(at)
    [fix] = [b for b in at.button if b.key == "fix.layer-1.0"]
    assert fix.label.startswith("Fix: add a projection shortcut")
    fix.click()
    run(at)
    assert [layer.type for layer in design(at).layers[0].shortcut] == ["Conv2d", "BatchNorm2d"]
    assert not at.error, "the fixed model runs"


def test_an_empty_block_unwraps_to_nothing_and_its_neighbour_is_selected(at):
    add(at, "Sequential", 3)
    at.button(key="unwrap").click()
    run(at)
    assert types(at) == ["LazyLinear", "ReLU", "LazyLinear"]
    assert at.session_state["selected_layer"] == "layer-3"
