"""AppTest of the Build page's two lessons on reuse: tying a layer's weights, and feeding a second input."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from builder.examples import load_example
from builder.share import encode_design
from tests.html_tables import stats
from tests.page_text import shown
from tests.test_app import button, design, frame_with, graph_source, open_app, run_forward


def _books_steps(at: AppTest) -> None:
    """The book's tied MLP from the seed: LazyLinear(8), ReLU, LazyLinear(8) reused, ReLU, LazyLinear(1)."""
    at.button(key="select.layer-1").click().run()
    at.number_input(
        key=next(w.key for w in at.number_input if w.key.startswith("param.layer-1.out_features."))
    ).set_value(8).run()
    at.button(key="select.layer-3").click().run()
    at.number_input(
        key=next(w.key for w in at.number_input if w.key.startswith("param.layer-3.out_features."))
    ).set_value(8).run()


def test_reuse_this_layer_adds_a_shared_entry_that_counts_once_and_undoes():
    at = open_app()
    _books_steps(at)
    at.button(key="reuse.layer-3").click().run()
    assert not at.exception, at.exception
    shared = design(at).layers[-1]
    assert (shared.type, shared.of) == ("Shared", "layer-3")
    assert at.session_state["selected_layer"] == shared.id
    assert at.button(key=f"select.{shared.id}").label.replace("\\", "") == "4 · shares layer-3"  # Markdown-escaped
    assert "shares layer-3 (LazyLinear)" in shown(at.markdown)
    run_forward(at)
    table = frame_with(at, "formula")
    assert list(table["formula"])[-1] == "counted once, at layer-3"
    assert list(table["params"]) == [168, 0, 72, 0]  # the reuse adds no parameters
    assert "shares layer-3" in graph_source(at)
    button(at, "Undo").click().run()
    assert [layer.type for layer in design(at).layers] == ["LazyLinear", "ReLU", "LazyLinear"]


def test_the_tied_example_opens_with_its_reuse_drawn_and_selectable():
    at = open_app({"design": encode_design(load_example("d2l-tied-mlp"))})
    run_forward(at)
    assert stats(at)["Parameters"][0] == "249"
    at.button(key="select.layer-5").click().run()
    at.button(key="shared.select.layer-5").click().run()
    assert at.session_state["selected_layer"] == "layer-3"


def test_feed_another_input_keeps_the_lazy_sizes_and_a_fresh_pass_infers_again():
    at = open_app()
    run_forward(at)
    at.text_input(key="then_shape").set_value("5, 20").run()
    at.button(key="then_feed").click().run()
    assert "Second input: output shape (5, 10)." in shown(at.success)
    assert "Second input (5, 20)" in shown(at.markdown)
    at.text_input(key="then_shape").set_value("2, 40").run()
    at.button(key="then_feed").click().run()
    assert not at.exception, at.exception
    errors = shown(at.error)
    assert "LazyLinear inferred in_features=20 from the first input (2, 20)" in errors
    assert "run a fresh pass to infer again" in errors
    at.button(key="then_fresh").click().run()
    assert design(at).input.shape == (2, 40)
    assert frame_with(at, "notes")["notes"].iloc[0] == "in_features inferred = 40"
    button(at, "Undo").click().run()
    assert design(at).input.shape == (2, 20)


def test_a_bad_second_shape_is_explained():
    at = open_app()
    run_forward(at)
    at.text_input(key="then_shape").set_value("2, x").run()
    at.button(key="then_feed").click().run()
    assert "'x' is not a whole number" in shown(at.error)


def test_feed_another_input_waits_for_a_run():
    at = open_app()
    assert not [b for b in at.button if b.key == "then_feed"]
