"""AppTest for the Layer reference page: every catalog layer grouped like torch.nn's overview, a search box, and
each layer's section with its signature, shape rule, example output shape and parameter formula."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.catalog import Category, catalog

TIMEOUT = 30
APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/reference.py"


def open_reference(layer: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if layer is not None:
        at.query_params["layer"] = layer
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


def labels(at: AppTest) -> list[str]:
    return [expander.label for expander in at.expander]


def names(at: AppTest) -> list[str]:
    """The layer names of the shown sections ("**Conv2d** · Applies ..." -> "Conv2d")."""
    return [label.split("**")[1] for label in labels(at)]


def search(at: AppTest, text: str) -> None:
    at.text_input(key="reference_search").input(text).run()
    assert not at.exception, at.exception


@pytest.fixture
def at() -> AppTest:
    return open_reference()


def test_every_layer_is_listed_grouped_like_the_palette(at):
    assert at.title[0].value == "Layer reference"
    assert names(at) == list(catalog())  # the catalog's order is by group, then name
    groups = [s.value for s in at.subheader]
    assert groups == [str(c).capitalize() for c in Category if c is not Category.CUSTOM]
    assert any(link.label == "Layer reference" for link in at.get("page_link"))


def test_search_narrows_the_list_and_opens_what_it_finds(at):
    search(at, "conv2d")
    assert names(at) == ["Conv2d", "LazyConv2d"]
    assert all(expander.proto.expanded for expander in at.expander)
    search(at, "rectified")
    assert "ReLU" in names(at) and "Conv2d" not in names(at)
    search(at, "no such layer")
    assert names(at) == []
    assert "No layer matches" in at.info[0].value


def test_a_layers_section_shows_signature_shape_rule_example_and_formula(at):
    search(at, "Conv2d")
    section = at.expander[0]
    codes = [code.value for code in section.code]
    assert codes[0].startswith("nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0")
    assert codes[1].startswith("- Input: (N, C_in, H_in, W_in) or (C_in, H_in, W_in)")
    assert "H_out = ⌊(H_in + 2 × padding[0]" in codes[1]
    assert codes[2].startswith("layer = nn.Conv2d(3, 8, 3)\nx = torch.randn(2, 3, 16, 16)")
    assert codes[3] == "Conv2d(3, 8, 3): 8 x 3 x 3 x 3 + 8 = 224"
    text = " ".join(m.value for m in section.markdown)
    assert "output shape **(2, 8, 14, 14)**" in text
    assert "`in_channels` (required): Number of channels in the input image" in text


def test_the_group_picker_shows_one_group(at):
    at.selectbox(key="reference_group").set_value(str(Category.DROPOUT)).run()
    assert set(names(at)) == {e.name for e in catalog().values() if e.category is Category.DROPOUT}
    assert [s.value for s in at.subheader] == ["Dropout"]


def test_a_link_to_a_layer_opens_its_section():
    at = open_reference("LazyLinear")
    assert at.text_input(key="reference_search").value == "LazyLinear"
    assert "layer" not in at.query_params  # applied once: the user's own search stands from now on
    assert names(at)[0] == "LazyLinear" and at.expander[0].proto.expanded
    captions = [c.value for c in at.expander[0].caption]
    assert "From the docstring of Linear." in captions
    assert at.expander[0].code[3].value == "LazyLinear(10) on 20 features: 10 x 20 + 10 = 210"
    search(at, "dropout")
    assert "LazyLinear" not in names(at)


def test_a_layer_whose_docstring_states_no_shape_rule_says_so(at):
    search(at, "ChannelShuffle")
    captions = " ".join(c.value for c in at.expander[0].caption)
    assert "states no shape rule" in captions
    assert "output shape **(2, 3, 8, 8)**" in " ".join(m.value for m in at.expander[0].markdown)


def test_a_link_to_an_unknown_layer_opens_the_whole_list():
    at = open_reference("Linaer")
    assert at.text_input(key="reference_search").value == ""
    assert names(at) == list(catalog())
