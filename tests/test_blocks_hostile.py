"""Hostile designs with blocks: the same three promises as tests/test_hostile_designs.py, for the tree.

The exported file only builds the model whatever a block's label holds; the graph is only the design's nodes,
clusters and edges, its texts escaped; a hostile file or link is one DesignError (the CLI: exit 1, one line).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from builder import cli
from builder.design import DesignError, design_from_dict, load_design
from builder.export import ExportStyle, export_code
from builder.graph import render_graph
from builder.inference import infer_shapes
from builder.share import decode_design

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).parent / "oracle_runner.py"
MARKER = "PWNED"
PAYLOAD = f"open('{MARKER}', 'w')"
SVG = "{http://www.w3.org/2000/svg}"
LABELS: tuple[str, ...] = (
    f'x"); {PAYLOAD} #',
    f"x'''; {PAYLOAD}; '''",
    '<<table><tr><td href="javascript:alert(1)">x</td></tr></table>>',
    'x" URL="javascript:alert(2)" y="',
    "} digraph evil { x",
    "trailing backslash \\",
    "forward",
    "__init__",
    "None",
)
LINEAR = {"type": "Linear", "params": {"in_features": 4, "out_features": 4}}


def _design(*layers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"version": 2, "name": "hostile", "input": {"shape": [2, 4]}, "layers": list(layers), **fields}


def _hostile_blocks() -> dict[str, Any]:
    """Every kind of block, each with a hostile label, nested."""
    blocks = []
    for number, label in enumerate(LABELS):
        kind = ("Sequential", "Residual", "Parallel")[number % 3]
        stack = {"Sequential": {"layers": [LINEAR]}, "Residual": {"body": [LINEAR]},
                 "Parallel": {"branches": [[LINEAR], []], "merge": "add"}}[kind]  # fmt: skip
        blocks.append({"type": kind, "label": label, **stack})
    blocks[1]["body"].append(blocks.pop(0))  # nested
    return _design(*blocks, name=LABELS[0])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("hostile-blocks")
    design = design_from_dict(_hostile_blocks())
    trace = infer_shapes(design)
    paths = []
    for style in ExportStyle:
        for materialize in (False, True):
            path = folder / f"model_{style}_{materialize}.py"
            path.write_text(export_code(design, trace, style, materialize), encoding="utf-8")
            paths.append(path)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(RUNNER), *map(str, paths)], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, json.loads(done.stdout.splitlines()[-1])


def test_hostile_block_labels_export_files_that_only_build_the_model(exported: tuple[Path, dict[str, Any]]) -> None:
    folder, results = exported
    assert len(results) == 4
    for result in results.values():
        assert "error" not in result, result["error"]
        assert result["shape"] == [2, 4] and not result["imports_builder"]
    assert not (folder / MARKER).exists()


def _svg(source: str) -> ElementTree.Element:
    done = subprocess.run(["dot", "-Tsvg"], input=source, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return ElementTree.fromstring(done.stdout)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot binary is not installed")
@pytest.mark.parametrize("options", [{}, {"depth": 1}], ids=["expanded", "collapsed"])
def test_hostile_block_labels_are_text_in_the_svg(options: dict[str, Any]) -> None:
    design = design_from_dict(_hostile_blocks())
    svg = _svg(render_graph(design, infer_shapes(design), **options).source)
    assert not list(svg.iter(f"{SVG}a"))
    for element in svg.iter():
        assert all("javascript:" not in value.lower() for value in element.attrib.values())
    texts = [text.text for text in svg.iter(f"{SVG}text")]
    for label in LABELS[1:] if not options else [LABELS[1], *LABELS[2:]]:
        assert label in texts, f"label {label!r} is not shown as it was written"
    clusters = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "cluster"]
    assert len(clusters) == (len(LABELS) if not options else 0)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot binary is not installed")
def test_a_block_design_that_skipped_validation_still_draws_safely() -> None:
    base = design_from_dict(_design({"type": "Residual", "body": [LINEAR]}))
    block = base.layers[0].model_copy(update={"id": 'a" URL="javascript:alert(1)', "label": "<b>x</b>\\"})
    svg = _svg(render_graph(base.model_copy(update={"layers": (block,)})).source)
    assert not list(svg.iter(f"{SVG}a"))
    assert [g.findtext(f"{SVG}title") for g in svg.iter(f"{SVG}g") if g.get("class") == "cluster"] == [
        "cluster_layer-1"
    ]


def _nested(depth: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "ReLU"}
    for _ in range(depth):
        entry = {"type": "Residual", "body": [entry]}
    return entry


def _link(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode())).decode().rstrip("=")


# name -> (file text, phrases the message must hold)
HOSTILE: dict[str, tuple[str, tuple[str, ...]]] = {
    "blocks nested 5,000 deep": (
        '{"version": 2, "input": {"shape": [2, 4]}, "layers": [' + '{"type": "Residual", "body": [' * 5_000
        + "]}" * 5_000 + "]}",
        ("nested too deeply",),
    ),
    "blocks nested 100 deep": (json.dumps(_design(_nested(100))), ("blocks nest more than",)),
    "a repeat of 10**30": (json.dumps(_design({"type": "Residual", "repeat": 10**30, "body": [LINEAR]})),
                           ("layers[0].repeat",)),
    "a billion runs by repeats": (
        json.dumps(_design({"type": "Sequential", "repeat": 1000, "layers": [
            {"type": "Sequential", "repeat": 1000, "layers": [{"type": "ReLU"}]}]})),
        ("would run 1,000,000 layers",),
    ),
    "100,000 empty branches": (json.dumps(_design({"type": "Parallel", "branches": [[]] * 100_000})),
                               ("branches; a Parallel holds at most 64",)),
    "120,000 layers inside a block": (
        json.dumps(_design({"type": "Sequential", "layers": [{"type": "ReLU"}] * 120_000}), separators=(",", ":")),
        ("layers: the design has 120,001 layers",),
    ),
    "a merge that is a list": (json.dumps(_design({"type": "Residual", "merge": ["add"], "body": [LINEAR]})),
                               ("layers[0].merge",)),
    "a merge with a line break": (
        json.dumps(_design({"type": "Residual", "merge": "add\nerror: ok", "body": [LINEAR]})),
        ("layers[0] (Residual): unknown merge",),
    ),
    "a dim of 2**40": (json.dumps(_design({"type": "Residual", "merge": "concat", "dim": 2**40, "body": [LINEAR]})),
                       ("layers[0] (Residual): dim must be",)),
    "a branch that is not a list": (json.dumps(_design({"type": "Parallel", "branches": [{"type": "ReLU"}]})),
                                    ("layers[0].branches[0]",)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_block_file_or_link_is_one_design_error(case: str) -> None:
    text, phrases = HOSTILE[case]
    for read in (load_design, lambda t: decode_design(_link(t))):
        with pytest.raises(DesignError) as refused:
            read(text)
        message = str(refused.value)
        assert all(phrase in message for phrase in phrases), message
        assert "\n" not in message and len(message) < 400, message


@pytest.mark.parametrize("case", list(HOSTILE))
def test_the_cli_exits_1_with_one_line_for_a_hostile_block_file(case: str, tmp_path: Path, capsys) -> None:
    text, phrases = HOSTILE[case]
    path = tmp_path / "hostile.json"
    path.write_text(text, encoding="utf-8")
    assert cli.main(["summary", str(path)]) == 1
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert out == "" and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    assert all(phrase in lines[0] for phrase in phrases), lines[0]


SEED = (ROOT / "examples" / "unet.json").read_text(encoding="utf-8")
TOKENS = ("NaN", "9" * 30, "[[[[", "]]", "{", "}", "null", ",", '"Residual"', '"Parallel"', '"branches"', '"repeat"')


def _damaged(rng: random.Random) -> str:
    text = SEED
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


@pytest.mark.parametrize("seed", range(10))
def test_damaged_block_files_raise_only_design_errors(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        with contextlib.suppress(DesignError):
            load_design(_damaged(rng))


ODD: tuple[Any, ...] = (None, True, -1, 0, 2**70, float("nan"), "", "x" * 10_000, [], [[]], {}, {"a": 1}, [None])
FIELDS: tuple[str, ...] = ("type", "id", "label", "repeat", "merge", "dim", "body", "shortcut", "branches", "layers")


@pytest.mark.parametrize("field", FIELDS)
def test_odd_values_in_any_block_field_raise_only_design_errors(field: str) -> None:
    for kind, stack in (("Residual", {"body": [LINEAR]}), ("Parallel", {"branches": [[LINEAR]]})):
        for value in ODD:
            with contextlib.suppress(DesignError):
                design_from_dict(_design({"type": kind, **stack, field: value}))
