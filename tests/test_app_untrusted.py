"""AppTest for designs from elsewhere: their code runs only after the user has read it and clicked to run it.

A link, an uploaded file or an import can bring custom layers, and a custom layer is code. These tests give such
a layer an ``__init__`` that writes a marker file, and replace ``builder.run.analyze`` by a spy that records each
design it is asked to trace and then builds it in this process, without the sandbox: if the app traced the design
before the click, the marker would exist. They also show that user-made text (exception messages, names) reaches
the page escaped, never as Markdown, and that a bad link gives one message and the example design.
"""

from __future__ import annotations

import base64
import re
import zlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder import run as builder_run
from builder import sandbox
from builder.design import Design, design_from_dict, dump_design
from builder.examples import load_example
from builder.inference import infer_shapes, inspect_design
from builder.share import decode_design, encode_design
from builder.trace import Trace
from tests.page_text import graph_texts
from ui import state
from ui.state import BAD_LINK
from ui.text import WORD_JOINER, plain

TIMEOUT = 30
APP = str(Path(__file__).resolve().parent.parent / "app.py")
SEED_TYPES = ["LazyLinear", "ReLU", "LazyLinear"]
MARKDOWN_MESSAGE = "![x](http://127.0.0.1:9/x.png) [Sign in again](http://127.0.0.1:9/login)"
IMPORTED = """\
class Marker(nn.Module):
    def __init__(self):
        super().__init__()
        open({path!r}, "w").write("ran")

    def forward(self, X):
        return X

net = nn.Sequential(nn.LazyLinear(8), Marker())
"""


def marker_source(path: Path, name: str = "Marker") -> str:
    """A layer whose constructor leaves a file behind: proof that it ran."""
    return (
        f"class {name}(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        open({str(path)!r}, 'w').write('ran')\n"
        "\n"
        "    def forward(self, X):\n"
        "        return X\n"
    )


def marker_design(path: Path, name: str = "Marker") -> Design:
    return design_from_dict(
        {
            "name": "shared",
            "input": {"shape": [2, 20]},
            "layers": [{"type": "LazyLinear", "params": {"out_features": 8}}, {"type": name}],
            "custom_layers": [{"name": name, "source": marker_source(path, name)}],
        }
    )


class Spy:
    """Stands in for ``builder.run.analyze``: records the designs with code, then traces them in this process."""

    def __init__(self) -> None:
        self.traced: list[Design] = []
        self.sessions: list[str | None] = []

    def __call__(self, design: Design, run: bool = True, session: str | None = None) -> Trace:
        if design.custom_layers:
            self.traced.append(design)
            self.sessions.append(session)
        return infer_shapes(design) if run else inspect_design(design)

    def names(self) -> set[str]:
        return {name for design in self.traced for name in design.custom_names()}


@pytest.fixture
def spy(monkeypatch) -> Spy:
    spy = Spy()
    monkeypatch.setattr(builder_run, "analyze", spy)
    state._trace.clear()  # the trace cache is shared by every session (and test) in this process
    return spy


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """Names of the layers ``check_layer`` was asked to check (it is never called in these tests)."""
    calls: list[str] = []
    real = sandbox.check_layer

    def counting(source, name, *args, **kwargs):
        calls.append(name)
        return real(source, name, *args, **kwargs)

    monkeypatch.setattr(sandbox, "check_layer", counting)
    return calls


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def open_app(query: dict[str, str] | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    run(at)
    if page:
        at.switch_page(page)
        run(at)
    return at


def open_link(design: Design, page: str | None = None) -> AppTest:
    return open_app({"design": encode_design(design)}, page)


def design(at: AppTest) -> Design:
    return at.session_state["design"]


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


def shown(elements) -> str:
    """The elements' text as the page shows it: Markdown's backslash escapes resolved."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", texts(elements).replace(WORD_JOINER, ""))


def graph_source(at: AppTest) -> str:
    """The texts the graph shows (node lines and edge labels), one a line."""
    return "\n".join(graph_texts(at))


def asks_to_run(at: AppTest) -> bool:
    return any(b.key == "review.approve" for b in at.button)


def click(at: AppTest, key: str) -> None:
    at.button(key=key).click()
    run(at)


def url_design(at: AppTest) -> Design:
    value = at.query_params["design"]
    return decode_design(value if isinstance(value, str) else value[-1])


# ---------------------------------------------------------------- a link


def test_a_link_shows_its_code_and_runs_nothing_until_the_click(tmp_path, spy):
    marker = tmp_path / "ran"
    shared = marker_design(marker)
    at = open_link(shared)
    assert design(at) == shared
    assert "This design contains code: run it?" in texts(at.warning)
    assert shared.custom_layers[0].source.rstrip("\n") in texts(at.code), "the code, exactly as it would run"
    dot = graph_source(at)
    assert "Marker" in dot and "?" in graph_texts(at), "the graph shows the layers, without shapes"
    assert at.button(key="run_forward").disabled
    assert spy.traced == [] and not marker.exists()

    click(at, "review.approve")
    assert marker.read_text() == "ran"
    assert spy.names() == {"Marker"}
    assert spy.sessions[0], "the sandbox learns which session asks (its cancelling and rate limits)"
    assert not asks_to_run(at)
    assert not at.button(key="run_forward").disabled
    assert "(2, 20)" in graph_source(at), "the layers are built now"


def test_no_page_builds_or_checks_unapproved_code(tmp_path, spy, checks):
    marker = tmp_path / "ran"
    at = open_link(marker_design(marker), page="pages/export.py")
    assert "This design contains code: run it?" in texts(at.warning)
    exported = at.code[-1].value
    assert "class Marker(nn.Module):" in exported and "# ->" not in exported, "code, but no shape comments"

    at.switch_page("pages/custom_layers.py")
    run(at)
    assert "waits for your approval" in texts(at.caption)
    edit = next(b for b in at.button if b.key and b.key.startswith("custom.edit.Marker."))
    assert edit.disabled, "loading it into the editor would let a check run it"

    at.switch_page("app.py")
    run(at)
    at.toggle(key="live").set_value(True)
    run(at)
    assert (spy.traced, checks) == ([], []) and not marker.exists()


def test_live_mode_does_not_run_unapproved_code(tmp_path, spy):
    marker = tmp_path / "ran"
    at = open_app()
    at.toggle(key="live").set_value(True)
    run(at)
    at.file_uploader(key="design_upload").set_value(("model.json", dump_design(marker_design(marker)).encode(), "x"))
    run(at)
    assert asks_to_run(at)
    assert spy.traced == [] and not marker.exists()
    click(at, "review.approve")
    assert marker.exists() and "(2, 8)" in graph_source(at), "approved, it runs live"


def test_with_custom_code_turned_off_the_code_is_shown_and_cannot_be_run(tmp_path, spy, monkeypatch):
    monkeypatch.setenv("BUILDER_DISABLE_CUSTOM", "1")
    at = open_link(marker_design(tmp_path / "ran"))
    assert "Custom code is turned off on this server, so it cannot run here" in texts(at.warning)
    assert at.button(key="review.approve").disabled
    assert "class Marker(nn.Module):" in texts(at.code)
    assert spy.traced == []


# ---------------------------------------------------------------- files, imports, undo


def test_an_uploaded_file_waits_for_approval_and_undo_cannot_bring_code_past_it(tmp_path, spy):
    first, second = tmp_path / "first", tmp_path / "second"
    at = open_link(marker_design(first))
    click(at, "review.approve")
    assert first.exists()

    changed = marker_design(second)  # the same layer with other code: code from outside is asked about again
    at.file_uploader(key="design_upload").set_value(("model.json", dump_design(changed).encode(), "application/json"))
    run(at)
    assert "Its custom layers' code runs only once you have read it and approved it" in shown(at.success)
    assert asks_to_run(at) and not second.exists()

    click(at, "review.example")
    assert [layer.type for layer in design(at).layers] == SEED_TYPES
    at.button(key="undo_button").click()
    run(at)
    assert design(at) == changed and asks_to_run(at), "undo brings the design back, not an approval"
    at.button(key="undo_button").click()
    run(at)
    assert not asks_to_run(at), "code approved once stays approved in this session"
    at.button(key="redo_button").click()
    run(at)
    assert asks_to_run(at)
    assert spy.names() == {"Marker"} and all(d.custom_layers[0].source == marker_source(first) for d in spy.traced)
    assert not second.exists()


def test_imported_classes_wait_for_approval(tmp_path, spy):
    marker = tmp_path / "ran"
    at = open_app(page="pages/import_code.py")
    next(w for w in at.text_area if w.key.startswith("import.text.")).input(IMPORTED.format(path=str(marker)))
    run(at)
    at.button(key="import.run").click()
    run(at)
    assert design(at).custom_names() == ["Marker"]
    assert "runs only once you have read it and approved it (on the Build page)" in shown(at.success)
    at.switch_page("app.py")
    run(at)
    assert asks_to_run(at) and "open(" in texts(at.code)
    assert spy.traced == [] and not marker.exists()
    click(at, "review.approve")
    assert marker.exists()


def test_declining_removes_the_code_and_the_layers_using_it(tmp_path, spy):
    shared = marker_design(tmp_path / "ran")
    at = open_link(shared)
    click(at, "review.remove")
    assert [layer.type for layer in design(at).layers] == ["LazyLinear"]
    assert design(at).custom_layers == ()
    assert "Removed Marker and the 1 layer of the stack using it. Undo brings them back." in shown(at.success)
    assert not asks_to_run(at)
    at.button(key="undo_button").click()
    run(at)
    assert design(at) == shared and asks_to_run(at)
    assert spy.traced == []


# ---------------------------------------------------------------- code that counts as approved


def test_code_typed_on_the_custom_layers_page_needs_no_approval(spy):
    at = open_app(page="pages/custom_layers.py")
    at.button(key="custom.check_button").click()  # the CenteredLayer template, checked in the sandbox
    run(at)
    at.button(key="custom.add").click()
    run(at)
    assert design(at).custom_names() == ["CenteredLayer"]
    at.switch_page("app.py")
    run(at)
    assert not asks_to_run(at)


def test_after_approval_the_users_own_edits_stay_approved(tmp_path, spy):
    at = open_link(marker_design(tmp_path / "ran"), page="pages/custom_layers.py")
    click(at, "review.approve")
    name = next(w for w in at.text_input if w.key.startswith("custom.new_name.Marker."))
    name.input("Stamp")
    run(at)
    next(b for b in at.button if b.key.startswith("custom.rename.Marker.")).click()
    run(at)
    assert design(at).custom_names() == ["Stamp"]
    assert not asks_to_run(at), "a rename is the user's own edit"


def test_a_rename_does_not_approve_code(tmp_path, spy):
    at = open_link(marker_design(tmp_path / "ran"), page="pages/custom_layers.py")
    next(w for w in at.text_input if w.key.startswith("custom.new_name.Marker.")).input("Stamp")
    run(at)
    next(b for b in at.button if b.key.startswith("custom.rename.Marker.")).click()
    run(at)
    assert design(at).custom_names() == ["Stamp"] and asks_to_run(at)
    assert spy.traced == []


@pytest.mark.parametrize("name", ["centered-layer", "my-linear"])
def test_the_projects_examples_run_without_asking(name, spy):
    at = open_app(page="pages/examples.py")
    click(at, f"load.{name}")
    assert design(at) == load_example(name)
    assert not asks_to_run(at)
    assert spy.names() == set(load_example(name).custom_names()), "built at once, as any design"


# ---------------------------------------------------------------- user-made text is text


def phishing_design() -> Design:
    source = (
        "class Phish(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        raise ValueError({MARKDOWN_MESSAGE!r})\n"
        "\n"
        "    def forward(self, X):\n"
        "        return X\n"
    )
    return design_from_dict(
        {
            "input": {"shape": [2, 20]},
            "layers": [{"type": "Phish"}],
            "custom_layers": [{"name": "Phish", "source": source}],
        }
    )


def test_an_exception_message_is_shown_as_text_not_markdown():
    at = open_link(phishing_design())
    assert not at.error, "nothing ran, so nothing failed"
    click(at, "review.approve")  # the real sandbox
    error = texts(at.error)
    assert plain(MARKDOWN_MESSAGE) in error
    assert "![x](" not in error and "](http" not in error
    assert "__init__ raised ValueError: " + MARKDOWN_MESSAGE in shown(at.error), "dunders are not eaten as bold"


def test_a_file_name_in_a_notice_is_shown_as_text():
    at = open_app()
    name = "[Sign in again](http://127.0.0.1:9/login).json"
    at.file_uploader(key="design_upload").set_value((name, b"{not json", "application/json"))
    run(at)
    assert plain(name) in texts(at.error)
    assert "Your design is unchanged" in shown(at.error)


# ---------------------------------------------------------------- bad links


def packed(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode().rstrip("=")


@pytest.mark.parametrize(
    "link",
    [
        packed("[" * 100_000),
        packed('{"version": 1, "input": {"shape": [2]}, "layers": [{"type": "ReLU", "params": {"a": ' + "[" * 5000),
        packed("{" + '"a":{' * 50_000),
        "garbage!",
        packed("\x00\xff"),
    ],
    ids=["nested-list", "nested-param", "nested-object", "garbage", "binary"],
)
def test_a_bad_link_gives_one_message_and_the_example(link):
    at = open_app({"design": link})
    assert [layer.type for layer in design(at).layers] == SEED_TYPES
    assert len(at.error) == 1 and "Opened the example design instead" in shown(at.error)
    assert "Traceback" not in texts(at.error) and 'File "/' not in texts(at.error)
    assert url_design(at) == design(at), "the bad link is gone from the URL"
    at.button(key="add_layer").click()
    run(at)
    assert not at.error and len(design(at).layers) == 4, "the next run is clean"


def test_whatever_a_link_makes_the_decoder_raise_gives_the_same_message(monkeypatch):
    def explode(text: str) -> Design:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("ui.state.decode_design", explode)
    at = open_app({"design": encode_design(load_example("lenet"))})
    assert [layer.type for layer in design(at).layers] == SEED_TYPES
    assert shown(at.error) == f"{BAD_LINK}. Opened the example design instead."
    assert "recursion" not in texts(at.error)


@pytest.mark.parametrize(
    "text",
    [
        MARKDOWN_MESSAGE,
        "see www.example.org or mail bob@example.org",
        "<img src=x onerror=alert(1)> :red[red] :material/home: $x^2$ __init__ *em* `code`",
    ],
)
def test_plain_leaves_no_markdown_and_no_link(text):
    escaped = plain(text)
    assert re.sub(r"\\(.)", r"\1", escaped).replace(WORD_JOINER, "") == text, "shown character for character"
    assert re.fullmatch(r"(?:\\[!-/:-@\[-`{-~]|[^!-/:-@\[-`{-~])*", escaped), "every punctuation mark escaped"
    assert not re.search(r"https?://|www\.|@\w", escaped.replace("\\", ""), re.IGNORECASE), "no autolink left"
