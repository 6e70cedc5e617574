"""Hostile designs: files and links written to break the builder, or to make what it generates do something else.

Three promises, each checked here with the attacks that worked before they were kept:

- the exported file only ever builds the model: whatever a design's strings hold (names, labels, ids, parameter
  names and values, custom layers' names and their code's top-level names), the validator refuses it naming the
  field, or the exported file runs in a fresh process and creates no marker file;
- the graph is only ever the design's nodes and edges: ids are refused unless plain, every text is escaped, and
  ``dot`` draws exactly the expected nodes and edges, with no links;
- a hostile file or link is one clear ``DesignError`` (the CLI: exit 1 and one ``error:`` line naming the field),
  quickly, never a RecursionError, a ValueError from int(), a C++ stack or a minute of work.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from builder import cli
from builder.custom import MAX_SOURCE_CHARS as CUSTOM_MAX_SOURCE_CHARS
from builder.design import (
    EXPORT_NAMES,
    MAX_CUSTOM_LAYERS,
    MAX_INPUT_ELEMENTS,
    MAX_INT,
    MAX_LAYERS,
    MAX_SOURCE_CHARS,
    Design,
    DesignError,
    LayerSpec,
    design_from_dict,
    file_stem,
    load_design,
    source_bindings,
)
from builder.export import ExportStyle, class_name, export_code
from builder.graph import INPUT_ID, OUTPUT_ID, render_graph
from builder.inference import infer_shapes
from builder.share import decode_design

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).parent / "oracle_runner.py"
MARKER = "PWNED"  # every payload below tries to create this file in the exported file's folder
PAYLOAD = f"open('{MARKER}', 'w')"
SVG = "{http://www.w3.org/2000/svg}"


def _design(*layers: dict[str, Any], shape: list[int] | None = None, **fields: Any) -> dict[str, Any]:
    return {"name": "hostile", "input": {"shape": shape or [2, 8]}, "layers": list(layers), **fields}


def _custom(name: str, init: str = "", body: str = "", top: str = "") -> dict[str, str]:
    """A custom layer that passes its input through: ``init`` is its __init__'s parameter list after self."""
    source = f"{top}class {name}(nn.Module):\n"
    if init:
        source += f"    def __init__(self, {init}):\n        super().__init__()\n"
    source += f"{body}    def forward(self, x):\n        return x\n"
    return {"name": name, "source": source}


def _link(text: str) -> str:
    """A design link holding ``text`` (any bytes a link can carry, not only designs)."""
    return base64.urlsafe_b64encode(zlib.compress(text.encode("utf-8", "surrogatepass"))).decode().rstrip("=")


# ---------------------------------------------------------------------------------------------------------------
# A. The exported file builds the model and does nothing else

MINE = _custom("Mine", "a=1, text='', sizes=(1,)")
MINE["source"] = MINE["source"].replace(  # it keeps its arguments, to compare them with the design's
    "super().__init__()\n", "super().__init__()\n        self.a, self.text, self.sizes = a, text, sizes\n"
)
KWARGS = _custom("Open", "**kwargs")

# Designs the validator must refuse: name -> (design, phrases the message must hold: the field first).
REFUSED_EXPORTS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "parameter name that is code": (
        _design({"type": "Mine", "params": {f"a={PAYLOAD}, b": 1}}, custom_layers=[MINE]),
        ("layers[0] (Mine)", "parameter name", "identifier"),
    ),
    "parameter name that is code, under **kwargs": (
        _design({"type": "Open", "params": {f"a={PAYLOAD}, b": 1}}, custom_layers=[KWARGS]),
        ("layers[0] (Open)", "parameter name", "identifier"),
    ),
    "parameter name that is a keyword": (
        _design({"type": "Open", "params": {"lambda": 1}}, custom_layers=[KWARGS]),
        ("layers[0] (Open)", "'lambda'", "keyword"),
    ),
    "parameter name that is a dunder": (
        _design({"type": "Open", "params": {"__class__": 1}}, custom_layers=[KWARGS]),
        ("layers[0] (Open)", "'__class__'", "special name"),
    ),
    "parameter the constructor does not take": (
        _design({"type": "Mine", "params": {"b": 1}}, custom_layers=[MINE]),
        ("layers[0] (Mine)", "unknown parameter 'b'", "a, text, sizes"),
    ),
    "checked-with parameter name that is code": (
        _design(custom_layers=[{**MINE, "params": {f"a={PAYLOAD}, b": 1}}]),
        ("custom_layers[0] (Mine).params", "parameter name"),
    ),
    "parameter value that is an object": (
        _design({"type": "Mine", "params": {"a": {"__reduce__": PAYLOAD}}}, custom_layers=[MINE]),
        ("layers[0] (Mine)", "parameter 'a'", "number, text"),
    ),
    "parameter value that is NaN": (
        _design({"type": "Mine", "params": {"a": float("nan")}}, custom_layers=[MINE]),
        ("layers[0] (Mine)", "parameter 'a'", "finite"),
    ),
    "label with a line break": (
        _design({"type": "ReLU", "label": f"relu\n{PAYLOAD}"}),
        ("layers[0] (ReLU)", "label", "one line"),
    ),
    "label with a line separator": (
        _design({"type": "ReLU", "label": f"relu\u2028{PAYLOAD}"}),
        ("layers[0] (ReLU)", "label", "U+2028"),
    ),
    "name with a line break": (_design(name=f"net\n{PAYLOAD}"), ("name:", "one line")),
    "name with a form feed": (_design(name=f"net\f{PAYLOAD}"), ("name:", "U+000C")),
    "name with a right-to-left override": (_design(name=f"net\u202e{PAYLOAD}"), ("name:", "U+202E")),
    "custom code with a right-to-left override": (
        _design(custom_layers=[_custom("Mine", top=f"# \u202e {PAYLOAD}\n")]),
        ("custom_layers[0] (Mine)", "line 1", "U+202E"),
    ),
    "custom code with an escape sequence": (
        _design(custom_layers=[_custom("Mine", top="# \x1b[2K\n")]),
        ("custom_layers[0] (Mine)", "U+001B"),
    ),
    "id that is code": (_design({"type": "ReLU", "id": f"x'); {PAYLOAD} #"}), ("layers[0] (ReLU)", "id")),
    "type that is code": (_design({"type": f"ReLU(); {PAYLOAD}"}), ("layers[0]", "unknown layer type")),
    **{
        f"custom layer named {name}": (_design(custom_layers=[_custom(name)]), ("custom_layers[0]", f"'{name}'"))
        for name in ("nn", "torch", "F", "math", "build_model", "Stackable", "INPUT_SHAPE", "main", "print", "super")
    },
    "custom layer named like a keyword": (_design(custom_layers=[_custom("None")]), ("custom_layers[0]", "'None'")),
    "custom layer named like a dunder": (_design(custom_layers=[_custom("__init__")]), ("custom_layers[0]",)),
    "custom code that redefines build_model": (
        _design(custom_layers=[_custom("Mine", top=f"def build_model():\n    return {PAYLOAD}\n\n\n")]),
        ("custom_layers[0] (Mine)", "'build_model'"),
    ),
    "custom code that rebinds nn": (
        _design(custom_layers=[_custom("Mine", top="import math as nn\n")]),
        ("custom_layers[0] (Mine)", "'nn'"),
    ),
    "custom code that shadows a builtin": (
        _design(custom_layers=[_custom("Mine", top="def print(*args):\n    pass\n\n\n")]),
        ("custom_layers[0] (Mine)", "'print'"),
    ),
    "two custom layers defining one helper differently": (
        _design(
            custom_layers=[
                _custom("First", top="SCALE = 1\n"),
                _custom("Second", top="SCALE = 2\n"),
            ]
        ),
        ("custom_layers[1] (Second)", "'SCALE'", "First"),
    ),
    "custom code defining another custom layer's class": (
        _design(custom_layers=[_custom("First"), _custom("Second", top="class First(nn.Linear):\n    pass\n\n\n")]),
        ("custom_layers[1] (Second)", "'First'"),
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_EXPORTS))
def test_the_validator_refuses_strings_that_would_become_code(case: str) -> None:
    data, phrases = REFUSED_EXPORTS[case]
    with pytest.raises(DesignError) as refused:
        design_from_dict(data)
    message = str(refused.value)
    assert message.startswith(phrases[0]), message
    assert all(phrase in message for phrase in phrases), message
    assert "\n" not in message


def test_export_refuses_custom_code_the_static_check_refuses() -> None:
    source = f"import os\n\n\nclass Mine(nn.Module):\n    def forward(self, x):\n        return x\n\n\n{PAYLOAD}\n"
    design = design_from_dict(_design({"type": "Mine"}, custom_layers=[{"name": "Mine", "source": source}]))
    with pytest.raises(DesignError, match=r"custom layer Mine, line 1: `import os` is not allowed"):
        export_code(design)


# Designs the validator accepts although their strings try to break out: the exported file must just build.
TEXT = f"'); {PAYLOAD}; ('"
SIZES = [TEXT, "\\", '"""', "\n", "\\'''"]
ACCEPTED_EXPORTS: dict[str, dict[str, Any]] = {
    "name with triple quotes": _design({"type": "ReLU"}, name=f"net''' + {PAYLOAD} + '''"),
    "name with a double quote and a backslash": _design({"type": "ReLU"}, name=f'net\\""" + {PAYLOAD} #'),
    "name that is a builtin": _design({"type": "ReLU"}, name="ValueError"),
    "name that is the export's own": _design({"type": "ReLU"}, name="F"),
    "label that is code": _design({"type": "ReLU", "label": f'x"); {PAYLOAD} #'}),
    "text arguments that are code": _design(
        {"type": "Mine", "params": {"text": TEXT, "sizes": SIZES}},
        custom_layers=[MINE],
    ),
    "any keyword through **kwargs": _design(
        {"type": "Open", "params": {"a": TEXT, "mode": "w", "file": MARKER}}, custom_layers=[KWARGS]
    ),
    "design named like its custom layer": _design({"type": "Mine"}, name="Mine", custom_layers=[MINE]),
    "design named like a custom source's helper": _design(
        {"type": "Mine"}, name="Helper", custom_layers=[_custom("Mine", top="class Helper:\n    pass\n\n\n")]
    ),
    "custom code with a __future__ import": _design(
        {"type": "Mine"}, custom_layers=[_custom("Mine", top="from __future__ import annotations\n\n\n")]
    ),
    "custom layers sharing canonical imports": _design(
        {"type": "First"},
        {"type": "Second"},
        custom_layers=[
            _custom("First", top="import torch\nfrom torch import nn\n\n\n"),
            _custom("Second", top="import torch\nimport torch.nn.functional as F\n\n\n"),
        ],
    ),
    "an LSTM (Stackable) after a hostile name": _design(
        {"type": "LSTM", "params": {"input_size": 8, "hidden_size": 4}}, shape=[3, 2, 8], name=f'"); {PAYLOAD} #'
    ),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Every accepted hostile design exported in both styles and run in one fresh process: (folder, results)."""
    folder = tmp_path_factory.mktemp("hostile-exports")
    paths = []
    for number, data in enumerate(ACCEPTED_EXPORTS.values()):
        design = design_from_dict(data)
        for style in ExportStyle:
            path = folder / f"case{number}_{style}.py"
            path.write_text(export_code(design, style=style), encoding="utf-8")
            paths.append(path)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [sys.executable, str(RUNNER), *map(str, paths)]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("style", list(ExportStyle))
@pytest.mark.parametrize("case", list(ACCEPTED_EXPORTS))
def test_an_accepted_hostile_design_exports_a_file_that_only_builds_the_model(
    case: str, style: ExportStyle, exported: tuple[Path, dict[str, dict[str, Any]]]
) -> None:
    folder, results = exported
    number = list(ACCEPTED_EXPORTS).index(case)
    result = results[str(folder / f"case{number}_{style}.py")]
    assert "error" not in result, result["error"]
    assert not (folder / MARKER).exists(), "running an exported file created the marker file"


def test_text_arguments_reach_the_model_unchanged(tmp_path: Path) -> None:
    """Refusing nothing a user typed, changing nothing either: the custom layer gets the very strings."""
    design = design_from_dict(ACCEPTED_EXPORTS["text arguments that are code"])
    namespace = _run_module(export_code(design), tmp_path)
    layer = namespace["build_model"]()[0]
    assert (layer.text, layer.sizes) == (TEXT, SIZES)


def _run_module(code: str, folder: Path) -> dict[str, Any]:
    """Execute an exported file's module body (not its main) in a fresh namespace, inside ``folder``."""
    path = folder / "exported.py"
    path.write_text(code, encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "exported"}
    previous = Path.cwd()
    os.chdir(folder)
    try:
        exec(compile(code, str(path), "exec"), namespace)
    finally:
        os.chdir(previous)
    assert not (folder / MARKER).exists()
    return namespace


def _top_level_names(code: str) -> set[str]:
    names = set()
    for node in ast.parse(code).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ClassDef | ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    return names


@pytest.mark.parametrize("case", list(ACCEPTED_EXPORTS))
def test_export_names_lists_every_name_the_exported_file_binds(case: str) -> None:
    """design.EXPORT_NAMES is what custom layers may not take: it must cover what export writes."""
    design = design_from_dict(ACCEPTED_EXPORTS[case])
    custom = {name for spec in design.custom_layers for name in source_bindings(spec.source)}
    for style in ExportStyle:
        bound = _top_level_names(export_code(design, style=style)) - custom - {"annotations"}
        assert bound <= EXPORT_NAMES | {class_name(design)}, bound - EXPORT_NAMES


@pytest.mark.parametrize(
    ("name", "stem"),
    [("d2l mlp", "d2l_mlp"), ("../../etc/passwd", "etc_passwd"), ("3 layer net", "model_3_layer_net"), ("✓", "model")],
)
def test_file_stem_is_a_safe_file_name(name: str, stem: str) -> None:
    assert file_stem(design_from_dict(_design(name=name))) == stem


def test_the_source_limit_is_the_custom_layer_checks_own() -> None:
    assert MAX_SOURCE_CHARS == CUSTOM_MAX_SOURCE_CHARS


# ---------------------------------------------------------------------------------------------------------------
# B. The graph is the design's nodes and edges, nothing else

BAD_IDS: dict[str, str] = {
    "html-like": "<b>x</b>",
    "html-link": '<<a href="javascript:alert(1)">x</a>>',
    "quote breaking out": 'a" URL="javascript:alert(1)',
    "trailing backslash": "layer\\",
    "edge": "a -> b",
    "statement": "a; b [URL='javascript:alert(1)']",
    "space": "a b",
    "non-ascii": "schicht-é",
    "too long": "x" * 65,
    "newline": "a\nb",
}


@pytest.mark.parametrize("case", list(BAD_IDS))
def test_the_validator_refuses_an_id_that_is_not_plain(case: str) -> None:
    with pytest.raises(DesignError) as refused:
        design_from_dict(_design({"type": "ReLU"}, {"type": "Tanh", "id": BAD_IDS[case]}))
    message = str(refused.value)
    assert message.startswith("layers[1] (Tanh): id ") and "[A-Za-z0-9_-]{1,64}" in message, message
    assert "\n" not in message


HOSTILE_TEXT: tuple[str, ...] = (
    "<b>bold</b>",
    '<<table><tr><td href="javascript:alert(1)">x</td></tr></table>>',
    'x" URL="javascript:alert(2)" y="',
    "trailing backslash \\",
    r"\N \G \L \l \n",
    'a -> b; c [URL="javascript:alert(3)"]',
    "} digraph evil { x",
    "node",
)


def _hostile_graph_design(custom: bool) -> Design:
    """Hostile labels and name; with ``custom``, a custom layer whose text arguments are hostile too."""
    layers = [{"type": "ReLU", "label": text} for text in HOSTILE_TEXT]
    if not custom:
        return design_from_dict(_design(*layers, name=HOSTILE_TEXT[1]))
    params = {"text": HOSTILE_TEXT[1], "sizes": list(HOSTILE_TEXT[:3])}
    return design_from_dict(
        _design(*layers, {"type": "Mine", "params": params}, name=HOSTILE_TEXT[1], custom_layers=[MINE])
    )


def _svg(source: str) -> ElementTree.Element:
    done = subprocess.run(["dot", "-Tsvg"], input=source, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return ElementTree.fromstring(done.stdout)


def _groups(svg: ElementTree.Element, kind: str) -> list[ElementTree.Element]:
    return [g for g in svg.iter(f"{SVG}g") if g.get("class") == kind]


def _assert_no_links(svg: ElementTree.Element) -> None:
    assert not list(svg.iter(f"{SVG}a")), "the SVG holds a link"
    for element in svg.iter():
        for name, value in element.attrib.items():
            assert "javascript:" not in value.lower(), f"{element.tag} {name}={value!r}"
            assert not name.endswith("href"), f"{element.tag} has {name}"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot binary is not installed")
@pytest.mark.parametrize("traced", [False, True], ids=["custom-layer-untraced", "traced"])
def test_hostile_labels_and_arguments_are_text_in_the_svg(traced: bool) -> None:
    design = _hostile_graph_design(custom=not traced)
    trace = infer_shapes(design) if traced else None
    svg = _svg(render_graph(design, trace).source)
    _assert_no_links(svg)
    nodes = _groups(svg, "node")
    assert [node.findtext(f"{SVG}title") for node in nodes] == [
        INPUT_ID,
        *(f"layer-{n}" for n in range(1, len(design.layers) + 1)),
        OUTPUT_ID,
    ]
    assert len(_groups(svg, "edge")) == len(design.layers) + 1
    texts = [text.text for text in svg.iter(f"{SVG}text")]
    for label in HOSTILE_TEXT:
        assert label in texts, f"label {label!r} is not shown as it was written"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot binary is not installed")
def test_a_design_that_skipped_validation_still_draws_safely() -> None:
    """render_graph makes its own node ids and escapes everything, whatever design it is given."""
    base = design_from_dict(_design({"type": "ReLU"}))
    layers = tuple(LayerSpec(type="ReLU", id=bad) for bad in BAD_IDS.values())
    hostile = base.model_copy(update={"layers": layers, "name": "<b>x</b>\\"})
    svg = _svg(render_graph(hostile).source)
    _assert_no_links(svg)
    assert len(_groups(svg, "node")) == len(layers) + 2
    assert len(_groups(svg, "edge")) == len(layers) + 1


# ---------------------------------------------------------------------------------------------------------------
# C. Hostile files and links: one DesignError naming the field; the CLI exits 1 with one line


def _big_int_in(text: str, digits: int) -> str:
    return text.replace("12345", "9" * digits)


LINEAR = {"type": "Linear", "params": {"in_features": 8, "out_features": 12345}}

# name -> (file text, phrases the message must hold)
HOSTILE_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "JSON nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, ("nested too deeply",)),
    "an argument nested 100,000 deep": (
        json.dumps(_design({"type": "Mine", "params": {"a": 0}}, custom_layers=[MINE])).replace(
            '"a": 0', '"a": ' + "[" * 100_000 + "]" * 100_000
        ),
        ("nested too deeply",),
    ),
    "a 5,000-digit integer argument": (
        _big_int_in(json.dumps(_design(LINEAR)), 5000),
        ("layers[0] (Linear)", "'out_features'", "5,000-digit"),
    ),
    "a 5,000-digit input size": (
        json.dumps(_design(shape=[2, 12345])).replace("12345", "9" * 5000),
        ("input.shape", "5,000-digit"),
    ),
    "input shape [2**40, 2**40]": (json.dumps(_design(LINEAR, shape=[2**40, 2**40])), ("input.shape", f"{MAX_INT:,}")),
    "input shape [10**100]": (json.dumps(_design(LINEAR, shape=[10**100])), ("input.shape", "101-digit")),
    "input shape [2**63]": (json.dumps(_design(LINEAR, shape=[2**63])), ("input.shape", f"{MAX_INT:,}")),
    "input of more than 2**40 elements": (
        json.dumps(_design(LINEAR, shape=[2**20, 2**20, 2])),
        ("input.shape", "2**40"),
    ),
    "Dropout.p = NaN": (json.dumps(_design({"type": "Dropout", "params": {"p": float("nan")}})), ("'p'", "finite")),
    "LeakyReLU.negative_slope = Infinity": (
        json.dumps(_design({"type": "LeakyReLU", "params": {"negative_slope": float("inf")}})),
        ("layers[0] (LeakyReLU)", "'negative_slope'", "finite"),
    ),
    "Threshold.value = -Infinity": (
        json.dumps(_design({"type": "Threshold", "params": {"threshold": 0.1, "value": float("-inf")}})),
        ("'value'", "finite"),
    ),
    "a custom argument of NaN": (
        json.dumps(_design({"type": "Mine", "params": {"sizes": [1, float("nan")]}}, custom_layers=[MINE])),
        ("layers[0] (Mine)", "'sizes'", "finite"),
    ),
    "out_features = 10**30": (
        _big_int_in(json.dumps(_design(LINEAR)), 31),
        ("layers[0] (Linear)", "'out_features'", f"{MAX_INT:,}"),
    ),
    "100,000 layers": (json.dumps(_design(*[{"type": "ReLU"}] * 100_000)), ("layers:", f"{MAX_LAYERS:,}")),
    "too many custom layers": (
        json.dumps(_design(custom_layers=[_custom(f"Layer{n}") for n in range(MAX_CUSTOM_LAYERS + 1)])),
        ("custom_layers:", f"{MAX_CUSTOM_LAYERS}"),
    ),
    "a very long name": (json.dumps(_design(name="n" * 10_000)), ("name:", "10,000 characters")),
    "a very long label": (json.dumps(_design({"type": "ReLU", "label": "l" * 10_000})), ("layers[0] (ReLU)", "label")),
    "a very long type": (json.dumps(_design({"type": "T" * 100_000})), ("layers[0]", "unknown layer type")),
    "a very long custom source": (
        json.dumps(_design(custom_layers=[_custom("Mine", top="# " + "x" * MAX_SOURCE_CHARS + "\n")])),
        ("custom_layers[0] (Mine)", f"{MAX_SOURCE_CHARS:,}"),
    ),
    "a very long text argument": (
        json.dumps(_design({"type": "Mine", "params": {"text": "t" * 100_000}}, custom_layers=[MINE])),
        ("layers[0] (Mine)", "'text'", "characters"),
    ),
    "a very long list argument": (
        json.dumps(_design({"type": "Mine", "params": {"sizes": [1] * 100_000}}, custom_layers=[MINE])),
        ("layers[0] (Mine)", "'sizes'", "items"),
    ),
    "a lone surrogate in a text argument": (
        json.dumps(_design({"type": "Mine", "params": {"text": "\ud800"}}, custom_layers=[MINE])),
        ("layers[0] (Mine)", "'text'", "surrogate"),
    ),
    "a type with a line break": (json.dumps(_design({"type": "ReLU\nerror: all good"})), ("layers[0]",)),
    "an unknown field with a line break": (json.dumps(_design(**{"x\ny": 1})), ("['x\\ny']", "unknown field")),
    "a file over the size limit": (" " * 2_000_001 + "{}", ("2,000,003 characters long", "at most 2,000,000")),
}


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_load_design_raises_one_design_error_naming_the_field(case: str) -> None:
    text, phrases = HOSTILE_FILES[case]
    with pytest.raises(DesignError) as refused:
        load_design(text)
    message = str(refused.value)
    assert all(phrase in message for phrase in phrases), message
    assert "\n" not in message and len(message) < 400, message


LINK_CASES = [case for case in HOSTILE_FILES if case != "a file over the size limit"]


@pytest.mark.parametrize("case", LINK_CASES)
def test_a_design_link_raises_one_design_error_naming_the_field(case: str) -> None:
    text, phrases = HOSTILE_FILES[case]
    with pytest.raises(DesignError) as refused:
        decode_design(_link(text))
    message = str(refused.value)
    assert message.startswith("design link: ") and all(phrase in message for phrase in phrases), message
    assert "\n" not in message


def test_a_5_kb_link_of_120_000_layers_is_refused_by_the_layer_limit() -> None:
    link = _link(json.dumps(_design(*[{"type": "ReLU"}] * 120_000), separators=(",", ":")))
    assert len(link) < 10_000
    with pytest.raises(DesignError, match=rf"layers: the design has 120,000 layers; .* at most {MAX_LAYERS:,}"):
        decode_design(link)


@pytest.mark.parametrize("text", ["x" * 5_000_000, None, 42, b"bytes"], ids=["huge", "none", "int", "bytes"])
def test_a_link_that_is_not_link_text_is_refused(text: Any) -> None:
    with pytest.raises(DesignError, match="design link"):
        decode_design(text)


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("error: ") and "Traceback" not in err and "unexpected" not in err, err[-3000:]
    return lines[0]


@pytest.mark.parametrize("command", ["summary", "export", "graph"])
@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_the_cli_exits_1_with_one_line_naming_the_field(case: str, command: str, tmp_path: Path, capsys) -> None:
    text, phrases = HOSTILE_FILES[case]
    path = tmp_path / "hostile.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    assert cli.main([command, str(path)]) == 1
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert out == "" and all(phrase in line for phrase in phrases), line


def _python(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# Real processes import torch (over a second each): one command per case, cycling through the three.
@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_the_cli_process_exits_1_with_one_line_naming_the_field(case: str, tmp_path: Path) -> None:
    text, phrases = HOSTILE_FILES[case]
    command = ("summary", "export", "graph")[list(HOSTILE_FILES).index(case) % 3]
    path = tmp_path / "hostile.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    done = _python("-m", "builder", command, str(path))
    assert (done.returncode, done.stdout) == (1, ""), done.stderr[-3000:]
    line = _one_error_line(done.stderr)
    assert all(phrase in line for phrase in phrases), line


HUGE_SHAPES = ["99999999999999999999999", "9" * 5000, f"{2**40},2", f"2,{2**31}", "0,2", "1," * 200 + "1"]


@pytest.mark.parametrize("command", ["summary", "export", "graph", "import"])
@pytest.mark.parametrize("shape", HUGE_SHAPES, ids=["23-digits", "5000-digits", "2**41-elements", "2**31", "0", "long"])
def test_an_input_shape_out_of_bounds_is_a_usage_error(shape: str, command: str, capsys) -> None:
    target = ROOT / "examples" / "d2l-mlp.json" if command != "import" else Path(__file__)
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, str(target), "--input-shape", shape])
    assert exit_.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--input-shape" in errors[0] and len(errors[0]) < 300, errors


def test_the_cli_process_refuses_a_huge_input_shape_in_one_line() -> None:
    done = _python("-m", "builder", "summary", "examples/d2l-mlp.json", "--input-shape", "99999999999999999999999")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "c10" not in done.stderr, done.stderr
    assert [line for line in done.stderr.splitlines() if "error:" in line] == [
        "python -m builder summary: error: argument --input-shape: every size must be a whole number from 1 to "
        f"{MAX_INT:,}, got 99999999999999999999999"
    ]


@pytest.mark.parametrize(
    "shape", [[2**20, 2**20], [MAX_INT, 512], [1, 1, 2**20, 2**20]], ids=["2**40", "max-size", "image-2**40"]
)
def test_the_largest_allowed_input_is_traced_on_the_meta_device(shape: list[int]) -> None:
    """Inference answers for the largest input the limits allow, without allocating it."""
    layers = [{"type": "Flatten"}, {"type": "LazyLinear", "params": {"out_features": 4}}, {"type": "ReLU"}]
    design = design_from_dict(_design(*layers, shape=shape))
    assert math.prod(shape) <= MAX_INPUT_ELEMENTS
    trace = infer_shapes(design)
    assert trace.ok, trace.error and trace.error.message
    assert trace.output_shape == (shape[0], 4)


# Anything at all: random damage to a valid design, and odd Python objects in every field, give a DesignError.

SEED_TEXT = (ROOT / "examples" / "my-linear.json").read_text(encoding="utf-8")
TOKENS = ("NaN", "Infinity", "-Infinity", "1e999", "9" * 30, "[[[[[[", "]]]", "{", "}", '"\\ud800"', "null", ",", ":")


def _damaged(rng: random.Random) -> str:
    text = SEED_TEXT
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(text))
        action = rng.choice(("cut", "insert", "drop", "swap"))
        if action == "cut":
            text = text[:at]
        elif action == "insert":
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif action == "drop":
            text = text[:at] + text[at + rng.randint(1, 20) :]
        else:
            text = text[:at] + chr(rng.randrange(0x20, 0x7F)) + text[at + 1 :]
    return text


@pytest.mark.parametrize("seed", range(20))
def test_damaged_files_raise_only_design_errors(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        with _only_design_errors():
            load_design(_damaged(rng))


@contextlib.contextmanager
def _only_design_errors() -> Iterator[None]:
    """Success or a DesignError pass; any other exception fails the test with its traceback."""
    with contextlib.suppress(DesignError):
        yield


ODD_VALUES: tuple[Any, ...] = (
    None, True, -1, 2**70, 10**5000, float("nan"), float("inf"), "", "x" * 10_000, "\ud800", [], [[]] * 3,
    {}, {"a": 1}, {1: 2}, object(), b"bytes", (1, 2), {1, 2}, [float("nan")], [2**70],
)  # fmt: skip
FIELDS: tuple[tuple[str, ...], ...] = (
    ("version",), ("name",), ("input",), ("input", "shape"), ("input", "dtype"), ("layers",), ("custom_layers",),
    ("layers", 0), ("layers", 0, "type"), ("layers", 0, "id"), ("layers", 0, "label"), ("layers", 0, "params"),
    ("layers", 0, "params", "out_features"), ("custom_layers", 0, "name"), ("custom_layers", 0, "source"),
    ("custom_layers", 0, "params"), ("custom_layers", 0, "params", "units"),
)  # fmt: skip


def _with(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = list(data) if isinstance(data, list) else dict(data)
    copy[path[0]] = _with(copy[path[0]], path[1:], value) if len(path) > 1 else value
    return copy


@pytest.mark.parametrize("field", FIELDS, ids=[".".join(map(str, f)) for f in FIELDS])
def test_odd_python_values_in_any_field_raise_only_design_errors(field: tuple[Any, ...]) -> None:
    seed = json.loads(SEED_TEXT)
    seed["custom_layers"][0]["params"] = {"in_units": 64, "units": 8}
    for value in ODD_VALUES:
        with _only_design_errors():
            design_from_dict(_with(seed, field, value))
