"""AppTest for the Import code page: paste PyTorch code, get the design, undo it; bad code changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.text import WORD_JOINER

TIMEOUT = 30
APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/import_code.py"
SEED_TYPES = ["LazyLinear", "ReLU", "LazyLinear"]
LENET_TYPES = ["Conv2d", "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d", "Flatten",
               "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear"]  # fmt: skip
WITH_CUSTOM = """\
class CenteredLayer(nn.Module):
    def forward(self, X):
        return X - X.mean()

net = nn.Sequential(nn.LazyLinear(128), CenteredLayer())
"""


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def at() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    run(at)
    at.switch_page(PAGE)
    return run(at)


def design(at: AppTest):
    return at.session_state["design"]


def types(at: AppTest) -> list[str]:
    return [layer.type for layer in design(at).layers]


def texts(elements) -> str:
    """The elements' text as the page shows it: the backslash escapes of user-made text (ui.text.plain) resolved."""
    text = "\n".join(e.value for e in elements).replace(WORD_JOINER, "")
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def code_box(at: AppTest):
    return next(w for w in at.text_area if w.key.startswith("import.text."))


def load_example(at: AppTest, name: str) -> None:
    at.selectbox(key="import.example").set_value(name)
    at.button(key="import.load").click()
    run(at)


def import_(at: AppTest) -> None:
    at.button(key="import.run").click()
    run(at)


def test_the_page_opens_on_the_seeds_sequential(at):
    assert at.title[0].value == "Import PyTorch code"
    assert code_box(at).value.startswith("net = nn.Sequential(nn.LazyLinear(256)")
    assert not at.dataframe, "no notes before an import"


def test_import_lenet_replaces_the_stack_and_undo_restores_it(at):
    before = design(at)
    load_example(at, "LeNet (D2L)")
    assert "nn.Conv2d(1, 6, kernel_size=5, padding=2)" in code_box(at).value
    import_(at)
    assert types(at) == LENET_TYPES
    assert design(at).input.shape == (1, 1, 28, 28), "the tensor the code runs the net on"
    assert "Imported 12 layers on input (1, 1, 28, 28): they replace the stack. Undo" in texts(at.success)
    at.button(key="undo_button").click()
    run(at)
    assert design(at) == before


def test_the_d2l_mlp_class_imports_with_notes_naming_lines(at):
    load_example(at, "MLP class (D2L)")
    import_(at)
    assert types(at) == SEED_TYPES
    notes = at.dataframe[0].value
    assert list(notes.columns) == ["line", "kind", "construct", "why"]
    relu = notes[notes["construct"].str.contains("F.relu")].iloc[0]
    assert relu["line"] == 13 and relu["kind"] == "info"


def test_typed_code_with_a_name_and_an_input_shape(at):
    code_box(at).input("model = nn.Sequential(nn.Linear(8, 4), nn.Tanh())")
    at.text_input(key="import.name").input("tiny")
    at.text_input(key="import.shape").input("3, 8")
    run(at)
    import_(at)
    assert (design(at).name, design(at).input.shape, types(at)) == ("tiny", (3, 8), ["Linear", "Tanh"])


def test_pasted_module_classes_become_custom_layers(at):
    code_box(at).input(WITH_CUSTOM)
    run(at)
    import_(at)
    assert types(at) == ["LazyLinear", "CenteredLayer"]
    assert design(at).custom_names() == ["CenteredLayer"]
    assert "and 1 custom layer(s) (CenteredLayer)" in texts(at.success)


@pytest.mark.parametrize(
    ("code", "shape", "message"),
    [
        ("x = 1\n", "", "nothing to import: expected an nn.Sequential(...)"),
        ("net = (", "", "the code must be valid Python to be imported"),
        ("net = nn.Sequential(nn.ReLU())", "two, 3", "Nothing was imported"),
    ],
)
def test_bad_code_leaves_the_design_untouched(at, code, shape, message):
    before, history = design(at), list(at.session_state["undo"])
    code_box(at).input(code)
    at.text_input(key="import.shape").input(shape)
    run(at)
    import_(at)
    assert message in texts(at.error)
    assert "Your design is unchanged" in texts(at.error)
    assert design(at) == before
    assert list(at.session_state["undo"]) == history, "nothing to undo"


TWO_MODELS = """\
class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


def wide():
    return nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
"""


def test_several_candidate_models_are_offered_to_pick(at):
    code_box(at).input(TWO_MODELS)
    run(at)
    import_(at)
    assert "defines several that could be one: Small, wide" in texts(at.error)
    assert "Pick the model below and import again" in texts(at.error)
    picker = at.selectbox(key="import.model")
    assert list(picker.options) == ["Small", "wide"]
    picker.set_value("wide")
    run(at)
    import_(at)
    assert types(at) == ["Linear", "ReLU", "Linear"]
    assert not [s for s in at.selectbox if s.key == "import.model"], "the picker goes once a model is imported"


def test_the_residual_example_comes_in_as_blocks(at):
    load_example(at, "Residual blocks and a helper function")
    import_(at)
    assert types(at) == ["LazyConv2d", "Residual", "ReLU", "Residual", "ReLU", "Residual", "ReLU", "Residual",
                         "ReLU", "AdaptiveAvgPool2d", "Flatten", "LazyLinear"]  # fmt: skip
    assert design(at).input.shape == (1, 3, 32, 32)
    assert "Imported 12 layers (4 blocks) on input (1, 3, 32, 32)" in texts(at.success)


DIFFERENT = """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        x = self.fc1(x)
        x = torch.cat([x, x], dim=1)
        return self.fc2(x)
"""


def test_code_that_would_come_out_different_is_refused_with_each_place_listed(at):
    before = design(at)
    code_box(at).input(DIFFERENT)
    run(at)
    import_(at)
    assert "would differ from the model this code builds at the 1 place(s) listed below" in texts(at.error)
    assert design(at) == before
    assert "Why nothing was imported" in [h.value for h in at.subheader]
    table = at.dataframe[0].value
    assert table[["line", "construct"]].values.tolist() == [[9, "torch.cat([x, x], dim=1)"]]
    assert "torch.cat() combines or reshapes tensors" in table["why"][0]
    code_box(at).input(WITH_CUSTOM)
    run(at)
    import_(at)  # a successful import clears the refusal's table
    assert "Why nothing was imported" not in [h.value for h in at.subheader]
