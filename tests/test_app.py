"""AppTest for every page: the app runs without exceptions and each edit goes through a plain widget.

Drag-and-drop itself needs a browser (tests/browser); here a drop is simulated by giving the sortables
component the value the browser would send.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.design import design_from_dict, dump_design
from builder.examples import load_example
from builder.export import ExportStyle, export_code
from builder.inference import infer_shapes
from builder.share import decode_design, encode_design
from tests.board_events import board_stack, simulate_drop
from tests.html_tables import stats, tables
from tests.page_text import graph_texts, shown

TIMEOUT = 30
APP = str(Path(__file__).resolve().parent.parent / "app.py")
SEED_TYPES = ["LazyLinear", "ReLU", "LazyLinear"]
BROKEN = {
    "version": 1,
    "name": "broken-mlp",
    "input": {"shape": [2, 20]},
    "layers": [{"type": "Linear", "params": {"in_features": 30, "out_features": 8}}, {"type": "ReLU"}],
}


def open_app(query: dict[str, str] | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def design(at: AppTest):
    return at.session_state["design"]


def types(at: AppTest) -> list[str]:
    return [layer.type for layer in design(at).layers]


def frame_with(at: AppTest, column: str):
    """The first table on the page with this column (the layer table, the lazy panel, ...)."""
    return next(frame for frame in tables(at) if column in frame.columns)


def graph_source(at: AppTest) -> str:
    """The texts the graph shows (node lines and edge labels), one a line."""
    return "\n".join(graph_texts(at))


def run_forward(at: AppTest) -> None:
    at.session_state["animation"] = "instant"
    at.button(key="run_forward").click().run()
    assert not at.exception, at.exception


def button(at: AppTest, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def field(at: AppTest, layer_id: str, name: str):
    prefix = f"param.{layer_id}.{name}."
    widgets = [w for kind in ("number_input", "text_input", "checkbox", "selectbox") for w in at.get(kind)]
    return next(w for w in widgets if w.key and w.key.startswith(prefix))


@pytest.fixture
def at() -> AppTest:
    return open_app()


# ---------------------------------------------------------------- build page


def test_first_open_shows_the_seed_mlp_not_yet_run(at):
    assert types(at) == SEED_TYPES
    assert design(at).input.shape == (2, 20)
    dot = graph_source(at)
    assert "<UninitializedParameter>" in dot
    assert "?" in graph_texts(at), "an edge without a shape yet"
    assert "(2, 256)" not in dot
    assert at.button(key="run_forward").label == "Run dummy forward pass"


def test_forward_pass_fills_graph_table_and_lazy_panel(at):
    run_forward(at)
    dot = graph_source(at)
    assert "(2, 256)" in dot and "(2, 10)" in dot and "<UninitializedParameter>" not in dot
    table, lazy = frame_with(at, "output shape"), frame_with(at, "before")
    assert list(table["output shape"]) == ["(2, 256)", "(2, 256)", "(2, 10)"]
    assert "in_features inferred = 20" in table["notes"][0]
    weight = lazy[lazy["parameter"] == "1 LazyLinear.weight"].iloc[0]
    assert (weight["before"], weight["after"]) == ("<UninitializedParameter>", "(256, 20)")
    assert stats(at)["Parameters"] == ("7.9 K", "7,946 parameters")


def test_a_failing_run_keeps_every_layer_in_the_table_and_every_lazy_layer_in_its_panel():
    broken = design_from_dict(
        {
            "input": {"shape": [2, 20]},
            "layers": [
                {"type": "LazyLinear", "params": {"out_features": 256}},
                {"type": "Linear", "params": {"in_features": 7, "out_features": 10}},
                {"type": "LazyLinear", "params": {"out_features": 3}},
            ],
        }
    )
    at = open_app({"design": encode_design(broken)})
    run_forward(at)
    table, lazy = frame_with(at, "output shape"), frame_with(at, "before")
    assert list(table["layer"]) == ["LazyLinear(256)", "Linear(7, 10)", "LazyLinear(3)"]
    assert list(table["status"]) == ["ran", "failed", "not reached"]
    assert "expected in_features=7" in table["notes"][1]
    assert list(lazy["parameter"]) == [
        "1 LazyLinear.weight",
        "1 LazyLinear.bias",
        "3 LazyLinear.weight",
        "3 LazyLinear.bias",
    ]
    assert list(lazy["after"])[2].startswith("not reached")
    assert stats(at)["Parameters"][0] == "5.5 K", "the layers built count: 5,376 + 80"


def test_the_table_names_layers_by_position_and_call_not_by_id_after_an_insert():
    at = open_app({"design": encode_design(load_example("lenet"))})
    at.session_state["model_dnd"] = {
        "nonce": "insert",
        "action": "add",
        "type": "ReLU",
        "kind": "layer",
        "parent": None,
        "stack": "layers",
        "index": 1,
    }
    at.run()
    run_forward(at)
    table = frame_with(at, "output shape")
    assert list(table["#"])[:3] == [1, 2, 3]
    assert list(table["layer"])[:4] == ["Conv2d(1, 6, 5, padding=2)", "ReLU()", "Sigmoid()", "AvgPool2d(2, stride=2)"]
    assert not any(str(name).startswith("layer-") for name in table["layer"])


def test_the_flops_metric_says_what_it_counts(at):
    run_forward(at)
    value, help = stats(at)["FLOPs"]
    assert value == "30.7 K"
    assert help.startswith("30,720 FLOPs.")
    assert "matrix multiplications and convolutions" in help and "not counted" in help


def test_the_shortcuts_listener_is_on_the_page_and_its_help_lists_every_shortcut(at):
    from ui.shortcuts import SHORTCUTS

    [listener] = [element for element in at.get("html") if "<script" in element.proto.body]
    for shortcut in SHORTCUTS:
        assert f'"button": "{shortcut.button}"' in listener.proto.body
        assert at.button(key=shortcut.button), f"{shortcut.keys} clicks a button the page has"
        assert f"| {shortcut.keys} | {shortcut.does} |" in "\n".join(m.value for m in at.markdown)


def test_layer_by_layer_run_ends_with_the_full_graph(at):
    at.button(key="run_forward").click().run()
    assert not at.exception
    assert "(2, 10)" in graph_source(at)


def test_live_mode_reinfers_after_an_edit(at):
    at.button(key="select.layer-3").click().run()
    at.toggle(key="live").set_value(True).run()
    assert "(2, 10)" in graph_source(at)
    field(at, "layer-3", "out_features").set_value(5).run()
    assert "(2, 5)" in graph_source(at)


def test_without_live_mode_an_edit_shows_unknown_shapes_again(at):
    run_forward(at)
    field(at, "layer-1", "out_features").set_value(128).run()
    assert "(2, 128)" not in graph_source(at)
    run_forward(at)
    assert "(2, 128)" in graph_source(at)


def test_click_to_add_appends_and_selects_the_layer(at):
    at.selectbox(key="add_type").set_value("GELU").run()
    at.button(key="add_layer").click().run()
    assert types(at) == [*SEED_TYPES, "GELU"]
    assert at.session_state["selected_layer"] == design(at).layers[-1].id


def palette_types(at: AppTest) -> list[str]:
    """The palette's item types in the board's arguments, all groups in order."""
    [board] = [e for e in at.get("component_instance") if e.proto.component_name == "ui.dnd.model_dnd"]
    return [item["type"] for group in json.loads(board.proto.json_args)["palette"] for item in group["items"]]


def test_search_filters_the_palette_across_groups(at):
    at.text_input(key="palette_search").input("norm2").run()
    assert palette_types(at) == ["BatchNorm2d", "InstanceNorm2d", "LazyBatchNorm2d", "LazyInstanceNorm2d"]


def test_layer_to_add_lists_every_layer_of_every_group_whatever_group_is_picked(at):
    assert at.selectbox(key="palette_group").value == "linear"
    add = at.selectbox(key="add_type")
    assert add.value == "Linear"
    names = [option.split(" · ")[0] for option in add.options]
    assert {"Conv2d", "ReLU", "LazyLinear", "Residual", "LSTM"} <= set(names)
    assert len(names) == len(set(names)), "each type once"
    assert "Conv2d · convolution" in add.options, "each with its group, so typing a group's name finds it too"
    add.set_value("Conv2d").run()
    at.button(key="add_layer").click().run()
    assert types(at) == [*SEED_TYPES, "Conv2d"]


def test_remove_duplicate_and_move_buttons(at):
    at.button(key="select.layer-2").click().run()
    at.button(key="duplicate").click().run()
    assert types(at) == ["LazyLinear", "ReLU", "ReLU", "LazyLinear"]
    copy = at.session_state["selected_layer"]
    assert copy == design(at).layers[2].id
    at.button(key="move_up").click().run()
    assert [layer.id for layer in design(at).layers][1] == copy
    at.button(key="remove").click().run()
    assert types(at) == SEED_TYPES
    at.button(key="select.layer-1").click().run()
    at.button(key="move_down").click().run()
    assert types(at) == ["ReLU", "LazyLinear", "LazyLinear"]


def test_widget_keys_follow_the_layer_not_its_position(at):
    at.button(key="select.layer-3").click().run()
    at.button(key="move_up").click().run()
    assert [layer.id for layer in design(at).layers] == ["layer-1", "layer-3", "layer-2"]
    assert field(at, "layer-3", "out_features").value == 10


def test_a_drop_from_the_palette_copies_the_layer_into_the_stack(at):
    labels = board_stack(at)
    simulate_drop(at, [labels[0], "Linear", *labels[1:]], palette_item="Linear")
    assert types(at) == ["LazyLinear", "Linear", "ReLU", "LazyLinear"]
    assert at.session_state["selected_layer"] == design(at).layers[1].id


def test_a_drop_reorders_and_trashes(at):
    labels = board_stack(at)
    simulate_drop(at, [labels[2], labels[0]])
    assert [layer.id for layer in design(at).layers] == ["layer-3", "layer-1"]


def test_inspector_field_applies_at_once_and_validates(at):
    at.button(key="select.layer-1").click().run()
    field(at, "layer-1", "out_features").set_value(128).run()
    assert design(at).layers[0].params["out_features"] == 128
    field(at, "layer-1", "out_features").set_value(0).run()
    assert design(at).layers[0].params["out_features"] == 128
    assert "must be at least 1, got 0" in shown(at.caption)
    field(at, "layer-1", "bias").uncheck().run()
    assert design(at).layers[0].params["bias"] is False


def test_text_fields_for_tuples(at):
    at.selectbox(key="palette_group").set_value("convolution").run()
    at.selectbox(key="add_type").set_value("Conv2d").run()
    at.button(key="add_layer").click().run()
    conv = design(at).layers[-1].id
    field(at, conv, "kernel_size").input("3, 5").run()
    assert design(at).layers[-1].params["kernel_size"] == [3, 5]
    field(at, conv, "kernel_size").input("3, x").run()
    assert design(at).layers[-1].params["kernel_size"] == [3, 5]
    assert "'x' is not a number" in shown(at.caption)
    field(at, conv, "padding_mode").set_value("reflect").run()
    assert design(at).layers[-1].params["padding_mode"] == "reflect"


def test_input_shape_dtype_and_presets(at):
    shape = next(w for w in at.text_input if w.key.startswith("input_shape."))
    shape.input("4, 20").run()
    assert design(at).input.shape == (4, 20)
    shape = next(w for w in at.text_input if w.key.startswith("input_shape."))
    shape.input("4, twenty").run()
    assert design(at).input.shape == (4, 20)
    assert "'twenty' is not a whole number" in shown(at.caption)
    preset = next(w for w in at.selectbox if w.key.startswith("input_preset."))
    preset.set_value("MNIST (1, 1, 28, 28)").run()
    assert design(at).input.shape == (1, 1, 28, 28)
    dtype = next(w for w in at.selectbox if w.key.startswith("input_dtype."))
    dtype.set_value("float64").run()
    assert design(at).input.dtype == "float64"


def test_undo_and_redo_every_edit(at):
    at.button(key="add_layer").click().run()
    at.button(key="select.layer-1").click().run()
    field(at, "layer-1", "out_features").set_value(64).run()
    assert len(types(at)) == 4
    button(at, "Undo").click().run()
    assert design(at).layers[0].params["out_features"] == 256
    assert field(at, "layer-1", "out_features").value == 256, "the field shows the undone value"
    button(at, "Undo").click().run()
    assert types(at) == SEED_TYPES
    button(at, "Redo").click().run()
    assert len(types(at)) == 4


def test_an_error_is_explained_and_fixed_in_one_click():
    at = open_app({"design": encode_design(design_from_dict(BROKEN))})
    run_forward(at)
    assert "expected in_features=30" in shown(at.error[:1])
    dot = graph_source(at)
    assert "(2, 20)" in dot  # the input edge keeps its shape
    fix = button(at, "Fix: set in_features=20")
    fix.click().run()
    assert not at.error
    assert design(at).layers[0].params["in_features"] == 20
    assert "(2, 8)" in graph_source(at), "the fixed design is shown run"


def test_layers_before_the_error_keep_their_shapes():
    data = {**BROKEN, "layers": [{"type": "ReLU"}, *BROKEN["layers"]]}
    at = open_app({"design": encode_design(design_from_dict(data))})
    run_forward(at)
    table = frame_with(at, "output shape")
    assert list(table["output shape"]) == ["(2, 20)", "?", "?"]
    assert list(table["status"]) == ["ran", "failed", "not reached"]


# ---------------------------------------------------------------- the URL


def test_the_design_is_written_into_the_url(at):
    at.button(key="add_layer").click().run()
    value = at.query_params["design"]
    assert decode_design(value if isinstance(value, str) else value[0]) == design(at)


def test_a_shared_link_restores_the_design():
    lenet = load_example("lenet")
    at = open_app({"design": encode_design(lenet)})
    assert design(at) == lenet


def test_a_broken_link_opens_the_seed_with_a_message():
    at = open_app({"design": "garbage!"})
    assert types(at) == SEED_TYPES
    assert "design link" in shown(at.error[:1])


# ---------------------------------------------------------------- export page


def test_export_page_shows_exactly_the_core_export():
    at = open_app(page="pages/export.py")
    seed = design(at)
    trace = infer_shapes(seed)
    # st.code drops the file's final newline; everything else is the core's text
    assert at.code[0].value == export_code(seed, trace, style=ExportStyle.SEQUENTIAL).rstrip("\n")
    at.radio(key="export_style").set_value(ExportStyle.MODULE).run()
    at.toggle(key="export_materialize").set_value(True).run()
    assert at.code[0].value == export_code(seed, trace, style=ExportStyle.MODULE, materialize=True).rstrip("\n")
    assert "nn.Linear(20, 256)" in at.code[0].value
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Code (.py)", "Design (.json)", "Summary (.csv)"} <= set(labels)
    assert "Graph (.svg)" in labels or "Graph (.gv)" in labels


def test_export_page_with_a_failing_design_still_exports():
    at = open_app({"design": encode_design(design_from_dict(BROKEN))}, page="pages/export.py")
    assert "expected in_features=30" in shown(at.warning[:1])
    assert "nn.Linear(30, 8" in at.code[0].value.replace("in_features=", "").replace("out_features=", "")
    assert at.toggle(key="export_materialize").disabled


def test_the_design_name_set_on_build_names_the_export(at):
    name = next(w for w in at.text_input if w.key.startswith("design_name."))
    assert name.value == "d2l-mlp"
    name.set_value("LeNet 5").run()
    assert design(at).name == "LeNet 5"
    name = next(w for w in at.text_input if w.key.startswith("design_name."))
    assert name.proto.help == "Names what you export: LeNet_5.py, class LeNet5"
    at.switch_page("pages/export.py").run()
    at.radio(key="export_style").set_value(ExportStyle.MODULE).run()
    assert "class LeNet5(nn.Module):" in at.code[0].value
    at.switch_page("app.py").run()
    button(at, "Undo").click().run()
    assert design(at).name == "d2l-mlp"


def test_a_design_name_that_cannot_stand_is_refused_beside_the_field(at):
    next(w for w in at.text_input if w.key.startswith("design_name.")).set_value("x" * 101).run()
    assert design(at).name == "d2l-mlp"
    assert any("at most 100" in c.value for c in at.caption)


@pytest.mark.parametrize(
    "hostile",
    ['x"""; import os; os.system("id") #', "<img src=x onerror=alert(1)>", "[docs](javascript:alert(1))", "`rm -rf /`"],
)
def test_a_hostile_design_name_reaches_the_export_only_as_an_identifier(at, hostile):
    """The name flows into the field's help, the file name and the class: each gets only what it can hold."""
    next(w for w in at.text_input if w.key.startswith("design_name.")).set_value(hostile).run()
    assert design(at).name == hostile  # a name is plain text; what is made of it is checked below
    help_text = next(w for w in at.text_input if w.key.startswith("design_name.")).proto.help
    stem, cls = re.fullmatch(r"Names what you export: (\w+)\.py, class (\w+)", help_text).groups()
    assert cls.isidentifier() and stem.isidentifier()
    at.switch_page("pages/export.py").run()
    at.radio(key="export_style").set_value(ExportStyle.MODULE).run()
    code = at.code[0].value
    tree = ast.parse(code)  # the name cannot break out of its docstrings: it is text there, never code
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    assert "os" not in names | imported and "system" not in attributes and "alert" not in names
    assert f"class {cls}(nn.Module):" in code


# ---------------------------------------------------------------- examples page


def test_examples_load_in_one_click_and_undo():
    at = open_app(page="pages/examples.py")
    assert not at.exception
    at.button(key="load.lenet").click().run()
    assert not at.exception, at.exception
    assert design(at) == load_example("lenet")
    assert at.title[0].value == "Build a model", "loading opens the Build page"
    assert any("Loaded the lenet example" in s.value for s in at.success)
    button(at, "Undo").click().run()
    assert types(at) == SEED_TYPES


def test_every_example_card_says_what_it_teaches_and_loads_into_build():
    from builder.examples import list_examples

    at = open_app(page="pages/examples.py")
    shown_text = [shown([m]) for m in at.markdown]
    for name in list_examples():
        load = at.button(key=f"load.{name}")
        assert (load.label, load.proto.icon) == ("Load into Build", ":material/file_open:")
        [card] = [i for i, text in enumerate(shown_text) if text == f"**{name}**"]
        teaches = shown_text[card + 1]
        assert teaches != "A design to explore." and len(teaches) <= 110, f"{name}: one line on what it teaches"


def test_save_button_offers_the_design_json(at):
    save = next(b for b in at.get("download_button") if b.proto.label == "Save design (JSON)")
    assert save.proto is not None
    assert dump_design(design(at)).startswith("{")


@pytest.mark.parametrize("name", ["centered-layer", "lenet", "text-lstm", "transformer-encoder"])
def test_every_kind_of_example_runs_on_the_build_page(name):
    at = open_app({"design": encode_design(load_example(name))})
    run_forward(at)
    assert not at.error, at.error[0].value
    assert frame_with(at, "output shape")["output shape"].iloc[-1] != "?"


# Elements whose browser code is heavy (st.dataframe's grid and Arrow: 1.2 MB; st.metric's number formatting;
# st.radio; st.code's highlighter: 1.5 MB): a new visitor's page waits for every element's code before its
# components' frames appear, so the Build page shows none of them until the user asks (README, Performance).
HEAVY_ON_FIRST_PAINT = {"arrow_data_frame", "dataframe", "metric", "radio", "code"}


def _element_types(node) -> set[str]:
    found = {getattr(node, "type", "")}
    for child in getattr(node, "children", {}).values():
        found |= _element_types(child)
    return found


@pytest.mark.parametrize("example", ["d2l-mlp", "lenet", "resnet18"])
def test_a_new_visitors_build_page_and_its_run_hold_no_heavy_element(example: str):
    at = open_app({"design": encode_design(load_example(example))})
    assert not _element_types(at._tree) & HEAVY_ON_FIRST_PAINT
    run_forward(at)
    assert not _element_types(at._tree) & HEAVY_ON_FIRST_PAINT, "nor after a run"


@pytest.mark.parametrize(
    "label",
    ['<img src=x onerror="alert(1)">', "</td></tr></table><script>alert(1)</script>", "</style><b>bold</b>", "a & b"],
)
def test_a_hostile_label_reaches_the_layer_table_only_as_text(label: str):
    layer = {"type": "Linear", "label": label, "params": {"in_features": 4, "out_features": 2}}
    design = design_from_dict({"input": {"shape": [2, 4]}, "layers": [layer]})
    at = open_app({"design": encode_design(design)})
    run_forward(at)
    body = next(
        element.value for element in at.html if 'class="bt"' in element.value and "output shape" in element.value
    )
    assert "<img" not in body and "<script" not in body and "<b>" not in body and "</style" not in body
    assert frame_with(at, "output shape")["layer"][0] == f"{label}: Linear(4, 2)", (
        "shown whole, character for character"
    )
