"""The command line: most cases call ``builder.cli.main`` in this process; a few run ``python -m builder`` for
real, to check exit codes, that no traceback leaks and that ``summary`` imports only what it needs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from builder import cli
from builder.graph import OUTPUT_ID

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "examples" / "d2l-mlp.json"
CUSTOM = ROOT / "examples" / "my-linear.json"


def _layers(*layers: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": layer_type, "params": params} for layer_type, params in layers]


def _json(shape: list[int], *layers: tuple[str, dict[str, Any]]) -> str:
    return json.dumps({"name": "case", "input": {"shape": shape}, "layers": _layers(*layers)})


BROKEN = _json(
    [2, 20], ("Linear", {"in_features": 20, "out_features": 64}), ("Linear", {"in_features": 30, "out_features": 10})
)

# name -> (file text, phrases the one-line error must contain)
BAD_INPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mismatched in_features": (
        _json([2, 20], ("Linear", {"in_features": 30, "out_features": 10})),
        ("layer 1 Linear", "set in_features=20"),
    ),
    "mismatched channels": (
        _json([1, 3, 28, 28], ("Conv2d", {"in_channels": 1, "out_channels": 8, "kernel_size": 3})),
        ("layer 1 Conv2d", "expected 1 input channels", "set in_channels=3"),
    ),
    "missing Flatten": (
        _json(
            [1, 1, 8, 8],
            ("Conv2d", {"in_channels": 1, "out_channels": 4, "kernel_size": 3}),
            ("Linear", {"in_features": 144, "out_features": 10}),
        ),
        ("layer 2 Linear", "insert Flatten"),
    ),
    "unknown layer type": (
        _json([1, 1, 8, 8], ("Conv2D", {"in_channels": 1, "out_channels": 4, "kernel_size": 3})),
        ("layers[0] (Conv2D)", "did you mean 'Conv2d'?"),
    ),
    "misspelled parameter": (
        _json([1, 1, 8, 8], ("Conv2d", {"in_channels": 1, "out_channels": 4, "kernal_size": 3})),
        ("layers[0] (Conv2d)", "did you mean 'kernel_size'?"),
    ),
    "negative size": (
        _json([2, 20], ("Linear", {"in_features": 20, "out_features": -5})),
        ("layers[0] (Linear)", "'out_features' must be at least 1, got -5"),
    ),
    "kernel larger than its input": (
        _json([1, 1, 4, 4], ("Conv2d", {"in_channels": 1, "out_channels": 4, "kernel_size": 5})),
        ("layer 1 Conv2d", "kernel_size 5 is larger", "reduce kernel_size"),
    ),
    "malformed JSON": ('{"input": {"shape": [2, 20]},\n  "layers": [}', ("not valid JSON", "line 2, column 14")),
    "empty stack": (_json([2, 20]), ("no layers", "add at least one layer")),
    "not a design": ("[1, 2, 3]", ("must hold a JSON object",)),
}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit status, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse on wrong usage
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_error_line(err: str, *phrases: str) -> None:
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err


@pytest.fixture
def write(tmp_path: Path):
    def write_file(text: str, name: str = "design.json") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write_file


@pytest.mark.parametrize("command", ["summary", "graph", "export"])
@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_exits_1_naming_the_layer_and_the_fix(name: str, command: str, write, capsys) -> None:
    text, phrases = BAD_INPUTS[name]
    code, _, err = run([command, write(text)], capsys)
    assert code == 1
    _assert_one_error_line(err, *phrases)


def _unreadable(tmp_path: Path, kind: str) -> Path:
    """A path the CLI cannot read as a design file."""
    if kind == "directory":
        return tmp_path
    path = tmp_path / f"{kind}.json"
    if kind == "not-utf8":
        path.write_bytes(b'{"name": "\xe9"}')  # latin-1
    return path


@pytest.mark.parametrize(
    ("kind", "phrase"), [("missing", "no such file"), ("directory", "is a directory"), ("not-utf8", "cannot read")]
)
def test_unreadable_file_exits_1(kind: str, phrase: str, tmp_path: Path, capsys) -> None:
    path = _unreadable(tmp_path, kind)
    code, out, err = run(["summary", path], capsys)
    assert (code, out) == (1, "")
    _assert_one_error_line(err, str(path), phrase)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["sumary", MLP],
        ["summary"],
        ["export", MLP, "--style", "functional"],
        ["summary", MLP, "--input-shape", "2,a"],
    ],
    ids=["no-command", "unknown-command", "no-file", "bad-style", "bad-shape"],
)
def test_wrong_usage_exits_2(argv: list[Any], capsys) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert "usage:" in err and "Traceback" not in err


def test_summary_prints_the_table(capsys) -> None:
    code, out, err = run(["summary", MLP], capsys)
    assert (code, err) == (0, "")
    assert "in_features inferred = 20" in out
    assert "Output shape: (2, 10)" in out and "Total params: 7,946" in out


def test_summary_json(capsys) -> None:
    code, out, _ = run(["summary", MLP, "--json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert data["output_shape"] == [2, 10] and data["total_params"] == 7946 and data["error"] is None
    first = data["layers"][0]
    assert {k: first[k] for k in ("index", "type", "input_shape", "output_shape", "params")} == {
        "index": 0, "type": "LazyLinear", "input_shape": [2, 20], "output_shape": [2, 256], "params": 5376,
    }  # fmt: skip


def test_summary_input_shape_overrides_the_design(capsys) -> None:
    code, out, _ = run(["summary", MLP, "--input-shape", "8,5", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["input_shape"] == [8, 5] and data["output_shape"] == [8, 10]
    assert data["layers"][0]["inferred"] == {"in_features": 5}


def test_summary_json_has_each_layers_formula(capsys) -> None:
    code, out, _ = run(["summary", MLP, "--json"], capsys)
    assert code == 0
    assert [row["formula"] for row in json.loads(out)["layers"]] == [
        "256 x 20 + 256 = 5,376", "no parameters", "10 x 256 + 10 = 2,570",
    ]  # fmt: skip


def test_summary_then_input_shape_feeds_a_second_input_through_the_built_model(capsys) -> None:
    code, out, _ = run(["summary", MLP, "--then-input-shape", "5,20", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["input_shape"] == [5, 20] and data["first_input_shape"] == [2, 20]
    assert data["output_shape"] == [5, 10]
    code, out, err = run(["summary", MLP, "--then-input-shape", "2,40"], capsys)
    assert code == 1 and out.startswith("Second input, through the model the first input (2, 20) built:")
    _assert_one_error_line(err, "layer 1 LazyLinear", "inferred in_features=20 from the first input (2, 20)")


def test_summary_of_a_failing_design_prints_what_ran_and_the_error_once(write, capsys) -> None:
    code, out, err = run(["summary", write(BROKEN)], capsys)
    assert code == 1
    assert "layer-1" in out and "(2, 64)" in out
    assert "in_features=30" not in out  # the diagnosis goes to stderr only
    _assert_one_error_line(err, "layer 2 Linear", "set in_features=64")


def test_summary_json_of_a_failing_design_carries_the_error(write, capsys) -> None:
    code, out, err = run(["summary", write(BROKEN), "--json"], capsys)
    assert code == 1
    assert json.loads(out)["error"]["index"] == 1
    _assert_one_error_line(err, "set in_features=64")


def test_graph_prints_dot_with_shapes(capsys) -> None:
    code, out, err = run(["graph", MLP], capsys)
    assert (code, err) == (0, "")
    assert out.startswith('digraph "d2l-mlp" {')
    assert '[label="(2, 256)"]' in out and "in_features = 20" in out


def test_graph_of_a_failing_design_is_written_then_exits_1(write, tmp_path: Path, capsys) -> None:
    target = tmp_path / "broken.gv"
    code, _, err = run(["graph", write(BROKEN), "-o", target], capsys)
    assert code == 1
    source = target.read_text(encoding="utf-8")
    assert 'color="#d32f2f"' in source and f"{OUTPUT_ID} [" in source
    assert err.splitlines()[-1].startswith("error: layer 2 Linear")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot binary is not installed")
def test_graph_writes_svg(tmp_path: Path, capsys) -> None:
    code, out, err = run(["graph", MLP, "-o", tmp_path / "mlp.svg"], capsys)
    assert (code, out) == (0, "")
    assert "wrote" in err
    assert b"<svg" in (tmp_path / "mlp.svg").read_bytes()


def test_graph_image_without_dot_exits_1_with_the_way_out(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, _, err = run(["graph", MLP, "-o", tmp_path / "mlp.png"], capsys)
    assert code == 1
    _assert_one_error_line(err, "install graphviz", ".gv")


def test_graph_unknown_suffix_exits_1(tmp_path: Path, capsys) -> None:
    code, _, err = run(["graph", MLP, "-o", tmp_path / "mlp.jpeg"], capsys)
    assert code == 1
    _assert_one_error_line(err, ".jpeg", ".svg")


def test_export_styles_match_builder_export() -> None:
    from builder.export import ExportStyle

    assert tuple(ExportStyle) == cli.EXPORT_STYLES


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], "nn.LazyLinear(256),  # -> (2, 256)"),
        (["--style", "module"], "class D2lMlp(nn.Module):"),
        (["--materialize"], "nn.Linear(20, 256),  # -> (2, 256)"),
    ],
)
def test_export_prints_code(options: list[str], expected: str, capsys) -> None:
    code, out, err = run(["export", MLP, *options], capsys)
    assert (code, err) == (0, "")
    assert "def build_model()" in out and expected in out
    compile(out, "exported.py", "exec")


def test_export_writes_a_file(tmp_path: Path, capsys) -> None:
    target = tmp_path / "model.py"
    code, out, err = run(["export", MLP, "-o", target], capsys)
    assert (code, out) == (0, "")
    assert "def build_model()" in target.read_text(encoding="utf-8")
    assert err == f"wrote {target}\n"


def test_export_of_a_failing_design_writes_the_code_then_exits_1(write, capsys) -> None:
    code, out, err = run(["export", write(BROKEN)], capsys)
    assert code == 1
    assert "nn.Linear(30, 10)" in out
    _assert_one_error_line(err, "set in_features=64")


def test_materialize_of_a_failing_design_writes_nothing(write, tmp_path: Path, capsys) -> None:
    target = tmp_path / "model.py"
    code, out, err = run(["export", write(BROKEN), "--materialize", "-o", target], capsys)
    assert (code, out) == (1, "")
    assert not target.exists()
    _assert_one_error_line(err, "--materialize needs a design whose forward pass runs", "set in_features=64")


def test_custom_layers_run_in_process_with_trust(capsys) -> None:
    code, out, _ = run(["summary", CUSTOM, "--trust"], capsys)
    assert code == 0 and "Output shape: (2, 8)" in out


def test_custom_layers_without_trust_run_in_the_sandbox(capsys) -> None:
    code, out, err = run(["summary", CUSTOM], capsys)
    assert (code, err) == (0, "")
    assert "Output shape: (2, 8)" in out


def test_custom_layer_that_fails_in_the_sandbox_exits_1_with_its_message(write, capsys) -> None:
    source = "class Boom(nn.Module):\n    def forward(self, X):\n        raise ValueError('no')\n"
    design = json.loads(_json([2, 4], ("Boom", {})))
    design["custom_layers"] = [{"name": "Boom", "source": source}]
    code, _, err = run(["summary", write(json.dumps(design))], capsys)
    assert code == 1
    _assert_one_error_line(err, "layer 1 Boom")


def test_an_error_message_from_custom_code_stays_one_printable_line(write, capsys) -> None:
    source = "class Boom(nn.Module):\n    def forward(self, X):\n        raise ValueError('no\\x1b[2J\\x07way')\n"
    design = json.loads(_json([2, 4], ("Boom", {})))
    design["custom_layers"] = [{"name": "Boom", "source": source}]
    code, _, err = run(["summary", write(json.dumps(design)), "--trust"], capsys)
    assert code == 1
    _assert_one_error_line(err, "layer 1 Boom", "no [2J way")
    assert "\x1b" not in err and "\x07" not in err


def test_export_refuses_custom_code_the_static_check_refuses(write, capsys) -> None:
    source = "import os\n\n\nclass Boom(nn.Module):\n    def forward(self, X):\n        return X\n"
    design = json.loads(_json([2, 4], ("Boom", {})))
    design["custom_layers"] = [{"name": "Boom", "source": source}]
    code, out, err = run(["export", write(json.dumps(design)), "--trust"], capsys)
    assert (code, out) == (1, "")
    _assert_one_error_line(err, "custom layer Boom, line 1", "`import os` is not allowed")


# Real processes: each imports torch (over a second), so only these few.


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_process_summary_exits_0_and_imports_only_what_it_needs() -> None:
    done = _python("-X", "importtime", "-m", "builder", "summary", "examples/d2l-mlp.json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Total params: 7,946" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    unwanted = {"pandas", "streamlit", "black", "graphviz", "builder.export", "builder.graph"}
    assert not imported & unwanted


def test_process_failing_forward_pass_exits_1_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text(BROKEN, encoding="utf-8")
    done = _python("-m", "builder", "graph", str(path))
    assert done.returncode == 1
    assert done.stderr.startswith("error: layer 2 Linear") and "Traceback" not in done.stderr
    assert "digraph" in done.stdout


def test_process_malformed_json_exits_1_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"input": {"shape": [2, 20]},\n  "layers": [}', encoding="utf-8")
    done = _python("-m", "builder", "summary", str(path))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"error: {path}: not valid JSON: Expecting value at line 2, column 14\n"


def test_process_wrong_usage_exits_2() -> None:
    done = _python("-m", "builder", "summary")
    assert done.returncode == 2 and "usage:" in done.stderr and "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------------------------------
# Blocks: every refused block design is exit 1 and one line naming the block's path and the fix

RESNET = ROOT / "examples" / "resnet18.json"
CONV_8_TO_16 = {"type": "Conv2d", "params": {"in_channels": 8, "out_channels": 16, "kernel_size": 3, "stride": 2}}


def _blocks(*layers: dict[str, Any], shape: list[int] | None = None) -> str:
    return json.dumps({"version": 2, "name": "blocks", "input": {"shape": shape or [1, 8, 8, 8]}, "layers": layers})


BAD_BLOCKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "misspelled parameter in a body": (
        _blocks({"type": "Residual", "body": [{"type": "Conv2d", "params": {"in_channels": 8, "out_channels": 8,
                                                                          "kernal_size": 3}}]}),
        ("layers[0].body[0] (Conv2d): unknown parameter 'kernal_size'; did you mean 'kernel_size'?",),
    ),
    "unknown merge": (_blocks({"type": "Residual", "merge": "sum", "body": [{"type": "ReLU"}]}),
                      ("layers[0] (Residual): unknown merge 'sum'", "add, mul, concat")),
    "repeat 0": (_blocks({"type": "Sequential", "repeat": 0, "layers": []}),
                 ("layers[0] (Sequential): repeat must be a whole number from 1",)),
    "Parallel without branches": (_blocks({"type": "Parallel", "branches": []}),
                                  ("layers[0] (Parallel): a Parallel needs at least one branch",)),
    "Residual without a body": (_blocks({"type": "Residual"}), ("layers[0] (Residual): a Residual needs a body",)),
    "an add the body changed": (
        _blocks({"type": "Residual", "body": [CONV_8_TO_16]}),
        ("layer 1 Residual(merge='add')", "(1, 16, 3, 3)", "(1, 8, 8, 8)", "add a projection shortcut: Conv2d(8, 16"),
    ),
    "a concat whose branch changed the size": (
        _blocks({"type": "Parallel", "branches": [[{"type": "MaxPool2d", "params": {"kernel_size": 2}}], []]}),
        ("layer 1 Parallel(merge='concat', dim=1)", "branch 1 changed dimension 2 to 4", "keep it at 8"),
    ),
    "a layer inside a repeated block": (
        _blocks({"type": "Sequential", "repeat": 2, "layers": [{"type": "Linear", "params": {"in_features": 3,
                                                                                            "out_features": 8}}]},
                shape=[2, 8]),
        ("layer 1, copy 1, layers[0] Linear(in_features=3, out_features=8)", "set in_features=8"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("command", ["summary", "graph", "export"])
@pytest.mark.parametrize("name", list(BAD_BLOCKS))
def test_a_refused_block_design_exits_1_naming_the_block_path_and_the_fix(name: str, command: str, write,
                                                                           capsys) -> None:  # fmt: skip
    text, phrases = BAD_BLOCKS[name]
    code, _, err = run([command, write(text)], capsys)
    assert code == 1
    _assert_one_error_line(err, *phrases)


def test_summary_depth_shows_the_top_level_of_resnet18(capsys) -> None:
    code, out, err = run(["summary", RESNET, "--depth", "1"], capsys)
    assert (code, err) == (0, "")
    assert " 5  layer-5 layer1   Sequential x 2 " in out and "├─" not in out
    assert "Output shape: (1, 1000)" in out and "Total params: 11,689,512" in out
    _, full, _ = run(["summary", RESNET], capsys)
    assert "│ ├─layer-15" in full and len(full.splitlines()) > len(out.splitlines())


@pytest.mark.parametrize("depth", ["0", "-1", "x", "9999999"])
def test_summary_depth_must_be_a_whole_number_from_1(depth: str, capsys) -> None:
    code, _, err = run(["summary", RESNET, "--depth", depth], capsys)
    assert code == 2 and "--depth" in err


def test_summary_json_nests_the_blocks_children(capsys) -> None:
    code, out, _ = run(["summary", RESNET, "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and len(data["layers"]) == 11 and data["total_params"] == 11_689_512
    stage = data["layers"][4]
    assert (stage["type"], stage["repeat"], stage["label"]) == ("Sequential", 2, "layer1")
    residual = stage["layers"][0]
    assert residual["type"] == "Residual" and [row["type"] for row in residual["body"]][:2] == ["Conv2d", "BatchNorm2d"]


def test_graph_draws_blocks_collapsed_by_depth_or_by_id(capsys) -> None:
    code, collapsed, _ = run(["graph", RESNET, "--depth", "1"], capsys)
    assert code == 0 and "cluster" not in collapsed and "layer1\\nSequential x 2" in collapsed
    code, one, _ = run(["graph", RESNET, "--collapse", "layer-5"], capsys)
    assert code == 0 and 'subgraph "cluster_layer-5"' not in one and 'subgraph "cluster_layer-6"' in one


def test_graph_collapse_of_an_unknown_block_lists_the_blocks(capsys) -> None:
    code, out, err = run(["graph", RESNET, "--collapse", "layer-1"], capsys)
    assert (code, out) == (1, "")
    _assert_one_error_line(err, "--collapse layer-1: the design has no block with this id", "its blocks: layer-5, ")


@pytest.mark.parametrize("style", ["sequential", "module"])
def test_export_of_a_block_design_compiles(style: str, capsys) -> None:
    code, out, err = run(["export", RESNET, "--style", style], capsys)
    assert (code, err) == (0, "")
    compile(out, "exported.py", "exec")
    assert ("class Down128(nn.Module):" in out) is (style == "module")
