"""AppTest for the Custom layers page: write, check, add, edit, rename and delete custom layers.

The page's code editor is a component that AppTest cannot type into, so the tests put the code where the editor
would (``custom.draft``); the plain text-area fallback is tested by hiding the component. The browser test
(tests/browser/test_custom_browser.py) types into the real editor.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder import sandbox
from builder.examples import load_example
from builder.share import encode_design
from tests.page_text import graph_texts
from ui.text import WORD_JOINER

TIMEOUT = 30
APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/custom_layers.py"
LOOP = "class Spin(nn.Module):\n    def forward(self, X):\n        while True:\n            pass\n"
NEEDS_VALUES = (
    "class Gate(nn.Module):\n"
    "    def forward(self, X):\n"
    "        print('sum is', float(X.sum()))\n"
    "        if X.sum() > 0:\n"
    "            return X\n"
    "        return -X\n"
)
SYNTAX_ERROR = "class Broken(nn.Module):\n    def forward(self, X):\n        return X +\n"
IMPORTS_OS = "import os\n\nclass Sneaky(nn.Module):\n    def forward(self, X):\n        return X\n"
WITH_DEFAULTS = (
    "class Scale(nn.Module):\n"
    "    def __init__(self, factor=2.0, dims=(1,)):\n"
    "        super().__init__()\n"
    "        self.factor = factor\n"
    "    def forward(self, X):\n"
    "        return X * self.factor\n"
)


@pytest.fixture(autouse=True)
def short_sandbox_timeout():
    """Endless loops are stopped after 2 s, not the default 10 s."""
    sandbox.configure(timeout=2.0)
    yield
    sandbox.configure(timeout=None)


def open_page(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def design(at: AppTest):
    return at.session_state["design"]


def write(at: AppTest, source: str) -> None:
    """Put code where the editor sends it."""
    at.session_state["custom.draft"] = source
    run(at)


def load_template(at: AppTest, name: str) -> None:
    at.selectbox(key="custom.template").set_value(name)
    at.button(key="custom.load").click()
    run(at)


def check(at: AppTest) -> None:
    at.button(key="custom.check_button").click()
    run(at)


def add(at: AppTest) -> None:
    at.button(key="custom.add").click()
    run(at)


def texts(elements) -> str:
    """The elements' text as the page shows it: the backslash escapes of user-made text (ui.text.plain) resolved."""
    text = "\n".join(e.value for e in elements).replace(WORD_JOINER, "")
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def button(at: AppTest, key_start: str):
    return next(b for b in at.button if b.key and b.key.startswith(key_start))


@pytest.fixture
def at() -> AppTest:
    return open_page()


# ---------------------------------------------------------------- check and add


def test_page_opens_on_the_centered_layer_template(at):
    assert at.title[0].value == "Custom layers"
    assert "class CenteredLayer(nn.Module)" in at.session_state["custom.draft"]
    assert "`torch`, `nn` and `F` are already bound" in texts(at.caption)
    assert at.button(key="custom.add").disabled, "nothing can be added before a check"


def test_check_the_centered_layer_add_it_and_find_it_in_the_palette(at):
    check(at)
    assert "CenteredLayer works: input (2, 20) → output (2, 20)" in texts(at.success)
    assert {m.label: m.value for m in at.metric}["Ran on"] == "meta device"
    add(at)
    assert design(at).custom_names() == ["CenteredLayer"]
    assert "in the palette under Custom" in texts(at.success)

    at.switch_page("app.py")
    run(at)
    at.selectbox(key="add_type").set_value("CenteredLayer")
    run(at)
    at.button(key="add_layer").click()
    run(at)
    assert design(at).layers[-1].type == "CenteredLayer"
    at.session_state["animation"] = "instant"
    at.button(key="run_forward").click()
    run(at)
    assert not at.error, texts(at.error)
    assert any("CenteredLayer" in text for text in graph_texts(at))


def test_my_linear_checks_with_its_arguments_and_shows_parameter_shapes(at):
    load_template(at, "MyLinear")
    assert at.text_input(key="custom.arg.2.MyLinear.in_units").value == "5"
    assert at.text_input(key="custom.shape.2").value == "2, 5"
    check(at)
    assert "MyLinear works: input (2, 5) → output (2, 3)" in texts(at.success)
    table = at.dataframe[0].value
    assert dict(zip(table["parameter"], table["shape"], strict=True)) == {
        "weight": "torch.Size([5, 3])",
        "bias": "torch.Size([3])",
    }
    assert {m.label: m.value for m in at.metric}["Parameters"] == "18"


def test_an_unreadable_argument_says_what_to_type(at):
    load_template(at, "MyLinear")
    at.text_input(key="custom.arg.2.MyLinear.units").input("three")
    run(at)
    assert "units: cannot read 'three'; type a Python literal" in texts(at.caption)
    assert at.button(key="custom.check_button").disabled


def test_a_form_from_the_signature_with_defaults(at):
    write(at, WITH_DEFAULTS)
    assert at.number_input(key="custom.arg.1.Scale.factor").value == 2.0
    assert at.text_input(key="custom.arg.1.Scale.dims").value == "[1]"
    at.number_input(key="custom.arg.1.Scale.factor").set_value(3.0)
    run(at)
    check(at)
    assert "Scale works" in texts(at.success)


def test_a_layer_that_needs_values_runs_on_real_tensors_and_shows_what_it_printed(at):
    write(at, NEEDS_VALUES)
    check(at)
    assert {m.label: m.value for m in at.metric}["Ran on"] == "real values (CPU)"
    assert "It needs real values" in texts(at.info)
    assert "sum is" in texts(at.code)


def test_an_endless_loop_is_stopped_with_its_line_and_the_page_keeps_working(at):
    write(at, LOOP)
    check(at)
    error = texts(at.error)
    assert "custom layer Spin, line 3" in error and "did not finish within 2 s" in error
    assert ">   3 |         while True:" in texts(at.code), "the excerpt points at the loop"
    assert at.button(key="custom.add").disabled
    load_template(at, "CenteredLayer")
    check(at)
    assert "CenteredLayer works" in texts(at.success)


def test_refused_code_names_the_line_and_what_to_change(at):
    write(at, IMPORTS_OS)
    check(at)
    error = texts(at.error)
    assert "custom layer Sneaky, line 1" in error and "torch" in error
    assert design(at).custom_layers == ()


def test_a_syntax_error_points_at_its_line_before_anything_runs(at):
    write(at, SYNTAX_ERROR)
    assert "line 3: syntax error" in texts(at.warning)
    assert at.button(key="custom.check_button").disabled


def test_code_changed_after_the_check_must_be_checked_again(at):
    check(at)
    write(at, at.session_state["custom.draft"].replace("X.mean()", "X.mean(dim=0)"))
    assert at.button(key="custom.add").disabled
    assert "The code changed since the check below" in texts(at.caption)


def test_adding_is_undoable(at):
    check(at)
    add(at)
    assert design(at).custom_names() == ["CenteredLayer"]
    at.button(key="undo_button").click()
    run(at)
    assert design(at).custom_layers == ()


def test_a_custom_layer_cannot_take_a_torch_nn_name(at):
    write(at, "class Linear(nn.Module):\n    def forward(self, X):\n        return X\n")
    check(at)
    assert "'Linear' is a torch.nn layer; give the custom layer another name" in texts(at.error)
    assert at.button(key="custom.add").disabled


# ---------------------------------------------------------------- the design's custom layers


def my_linear_design_page() -> AppTest:
    """The my-linear example: LazyLinear(64) then MyLinear(64, 8), the custom layer in use."""
    return open_page({"design": encode_design(load_example("my-linear"))})


def test_delete_is_refused_while_the_stack_uses_the_layer():
    at = my_linear_design_page()
    before = design(at)
    button(at, "custom.delete.MyLinear.").click()
    run(at)
    assert "Not deleted: MyLinear is used by the stack's layer 2" in texts(at.error)
    assert design(at) == before


def test_delete_an_unused_layer_and_undo():
    at = my_linear_design_page()
    at.switch_page("app.py")
    run(at)
    at.session_state["selected_layer"] = "layer-2"  # the selected layer's id, however the stack lets one pick it
    run(at)  # the layer buttons act on the layer they were drawn for
    at.button(key="remove").click()
    run(at)
    at.switch_page(PAGE)
    run(at)
    button(at, "custom.delete.MyLinear.").click()
    run(at)
    assert design(at).custom_layers == ()
    at.button(key="undo_button").click()
    run(at)
    assert design(at).custom_names() == ["MyLinear"]


def test_rename_updates_the_code_and_the_stack():
    at = my_linear_design_page()
    next(w for w in at.text_input if w.key.startswith("custom.new_name.MyLinear.")).input("Dense")
    button(at, "custom.rename.MyLinear.").click()
    run(at)
    renamed = design(at)
    assert renamed.custom_names() == ["Dense"]
    assert "class Dense(nn.Module):" in renamed.custom_layers[0].source
    assert [layer.type for layer in renamed.layers] == ["LazyLinear", "Dense"]
    assert "Renamed MyLinear to Dense" in texts(at.success)


def test_rename_refuses_a_bad_name():
    at = my_linear_design_page()
    before = design(at)
    next(w for w in at.text_input if w.key.startswith("custom.new_name.MyLinear.")).input("2fast")
    button(at, "custom.rename.MyLinear.").click()
    run(at)
    assert "'2fast' is not a class name" in texts(at.error)
    assert design(at) == before


def test_edit_loads_the_layer_and_its_arguments_into_the_editor():
    at = my_linear_design_page()
    button(at, "custom.edit.MyLinear.").click()
    run(at)
    assert at.session_state["custom.draft"] == design(at).custom_layers[0].source
    assert at.text_input(key="custom.arg.2.MyLinear.units").value == "8", "the stack's arguments"
    check(at)
    assert at.button(key="custom.add").label == "Update MyLinear in the design"


def test_the_inspector_edits_a_custom_layers_arguments():
    at = open_page({"design": encode_design(load_example("my-linear"))})
    at.switch_page("app.py")
    run(at)
    at.session_state["selected_layer"] = "layer-2"  # the selected layer's id, however the stack lets one pick it
    run(at)
    units = next(w for w in at.text_input if w.key.startswith("param.layer-2.units."))
    assert units.value == "8"
    units.input("4")
    run(at)
    assert design(at).layers[1].params["units"] == 4
    units = next(w for w in at.text_input if w.key.startswith("param.layer-2.units."))
    units.input("four")
    run(at)
    assert "units: cannot read 'four'; type a Python literal" in texts(at.caption)
    assert design(at).layers[1].params["units"] == 4, "an unreadable value is not applied"


# ---------------------------------------------------------------- settings and fallbacks


def test_with_custom_code_turned_off_nothing_can_run(monkeypatch):
    monkeypatch.setenv("BUILDER_DISABLE_CUSTOM", "1")
    at = my_linear_design_page()
    assert "Custom code is turned off on this server" in texts(at.warning)
    assert not [b for b in at.button if b.key in ("custom.check_button", "custom.add")]
    assert button(at, "custom.edit.MyLinear.").disabled


def test_without_the_editor_component_a_text_area_stands_in(monkeypatch):
    monkeypatch.setitem(sys.modules, "code_editor", None)  # the import fails as if it were not installed
    at = open_page()
    area = at.text_area[0]
    assert "class CenteredLayer" in area.value
    area.input(LOOP.replace("while True:\n            pass", "return X * 2"))
    run(at)
    check(at)
    assert "Spin works" in texts(at.success)


# ---------------------------------------------------------------- the sandbox's settings


def test_the_page_names_the_sandboxs_isolation_level(at):
    assert f"Sandbox isolation: {sandbox.isolation().describe()}." in texts(at.caption)


def test_checks_name_the_session_that_asks(at, monkeypatch):
    sessions: list[str | None] = []
    real = sandbox.check_layer

    def recording(*args, session: str | None = None, **kwargs):
        sessions.append(session)
        return real(*args, session=session, **kwargs)

    monkeypatch.setattr(sandbox, "check_layer", recording)
    check(at)
    check(at)
    assert len(sessions) == 2 and sessions[0] and sessions[0] == sessions[1], "one id per browser session"


TWO_CLASSES = (
    "class Double(nn.Module):\n    def forward(self, X):\n        return X * 2\n\n"
    "class Shift(nn.Module):\n"
    "    def __init__(self, offset):\n"
    "        super().__init__()\n"
    "        self.offset = offset\n"
    "    def forward(self, X):\n"
    "        return X + self.offset\n"
)


def test_switching_class_hides_the_other_class_check_and_a_required_argument_says_required(at):
    write(at, TWO_CLASSES)
    target = next(s for s in at.selectbox if s.key.startswith("custom.class."))
    target.set_value("Double")
    run(at)
    check(at)
    assert "Double works" in texts(at.success)
    next(s for s in at.selectbox if s.key.startswith("custom.class.")).set_value("Shift")
    run(at)
    assert not at.success, "Double's result is not shown under Shift's Add button"
    assert at.button(key="custom.add").disabled
    assert "Check Shift to see its output shape" in texts(at.caption)
    [offset] = [t for t in at.text_input if t.key.endswith(".Shift.offset")]
    assert offset.placeholder == "required"
