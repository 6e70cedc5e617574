"""Importing real-model code: the book's models in both editions and torchvision-style residual blocks.

Each fixture in tests/fixtures/import/ is run here, with a stand-in for the book's ``d2l`` module, to know what the
code builds (output shape and parameter count on the input the code itself uses); the imported design must trace to
the same. When the book's own repository is on this machine (``fetch`` puts it under /work/.mirror), the chapters'
PyTorch code is extracted and checked the same way; that code is never copied into this repository.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from builder.cli_import import register_import_command
from builder.custom import define_trusted
from builder.design import Design, ParallelBlock, ResidualBlock, is_block, walk
from builder.export import ExportStyle, export_code
from builder.importer import ImportFailed, import_code
from builder.inference import infer_shapes

FIXTURES = Path(__file__).parent / "fixtures" / "import"
_STUB = importlib.util.spec_from_file_location("d2l_stub", FIXTURES / "d2l_stub.py")
assert _STUB is not None and _STUB.loader is not None
d2l_stub = importlib.util.module_from_spec(_STUB)
_STUB.loader.exec_module(d2l_stub)
BOOK = Path("/work/.mirror/d2l-ai+d2l-en/repo")

# fixture -> (the variable holding the model once the code ran, the input the code uses or trains on)
CASES: dict[str, tuple[str, tuple[int, ...]]] = {
    "d2l_mlp": ("model", (1, 1, 28, 28)),
    "d2l_lenet": ("model", (1, 1, 28, 28)),
    "d2l_bn_lenet": ("model", (2, 1, 28, 28)),
    "d2l_alexnet": ("model", (1, 1, 224, 224)),
    "d2l_vgg": ("model", (1, 1, 224, 224)),
    "d2l_nin": ("", (1, 1, 224, 224)),
    "d2l_googlenet": ("", (1, 1, 96, 96)),
    "d2l_resnet18": ("model", (1, 1, 96, 96)),
    "d2l_densenet": ("model", (1, 1, 96, 96)),
    "d2l_classic_mlp": ("net", (1, 1, 28, 28)),
    "d2l_classic_lenet": ("net", (1, 1, 28, 28)),
    "d2l_classic_bn_lenet": ("net", (2, 1, 28, 28)),
    "d2l_classic_alexnet": ("net", (1, 1, 224, 224)),
    "d2l_classic_vgg": ("net", (1, 1, 224, 224)),
    "d2l_classic_nin": ("net", (1, 1, 224, 224)),
    "d2l_classic_googlenet": ("net", (1, 1, 96, 96)),
    "d2l_classic_resnet18": ("net", (1, 1, 224, 224)),
    "d2l_classic_densenet": ("net", (1, 1, 96, 96)),
    "torchvision_blocks": ("model", (1, 3, 64, 64)),
    "torchvision_resnet": ("model", (1, 3, 64, 64)),
    "torchvision_vit": ("model", (2, 3, 32, 32)),
}
# What the code states itself (layer_summary, a tensor fed to the model, the data set's image size), so the import
# needs no input_shape.
STATED = {"d2l_mlp", "d2l_densenet", "d2l_lenet", "d2l_alexnet", "d2l_vgg", "d2l_nin", "d2l_googlenet",
          "d2l_resnet18", "d2l_classic_lenet", "d2l_classic_alexnet", "d2l_classic_nin", "d2l_classic_googlenet",
          "d2l_classic_resnet18", "torchvision_blocks", "torchvision_resnet", "torchvision_vit"}  # fmt: skip
# The blocks each model must come in with: (Residual count, Parallel count), inner blocks included.
BLOCKS = {
    "d2l_googlenet": (0, 9), "d2l_classic_googlenet": (0, 9), "d2l_resnet18": (8, 0),
    "d2l_classic_resnet18": (8, 0), "d2l_densenet": (16, 0), "d2l_classic_densenet": (16, 0),
    "torchvision_blocks": (6, 0), "torchvision_resnet": (8, 0), "torchvision_vit": (4, 0),
}  # fmt: skip


def _run(code: str, variable: str, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """Run the code (with the d2l stand-in), feed its model ``shape``: output shape and parameter count."""
    d2l_stub.install()
    namespace: dict[str, Any] = {"__name__": "fixture"}
    torch.manual_seed(0)
    with torch.no_grad():
        exec(compile(code, "fixture", "exec"), namespace)
        model = namespace[variable] if variable else _last_model(namespace)
        model.eval()
        output = model(torch.randn(*shape))
    return tuple(output.shape), sum(p.numel() for p in model.parameters())


def _last_model(namespace: dict[str, Any]) -> nn.Module:
    """The model a ``Cls().layer_summary(...)`` paste built but did not keep: build it again with defaults."""
    classes = [v for v in namespace.values() if isinstance(v, type) and issubclass(v, d2l_stub.Classifier)]
    return classes[-1]()


def _imported(code: str, shape: tuple[int, ...] | None) -> tuple[Design, Any]:
    result = import_code(code, input_shape=shape)
    design = result.design
    trace = infer_shapes(design, define_trusted(design.custom_layers))
    assert trace.ok, trace.error
    return design, result


def _blocks(design: Design) -> tuple[int, int]:
    """(Residual count, Parallel count), a repeated block counted once per copy."""
    return _count(design.layers, 1)


def _count(entries: tuple[Any, ...], copies: int) -> tuple[int, int]:
    residual = parallel = 0
    for entry in entries:
        if not is_block(entry):
            continue
        times = copies * entry.repeat
        residual += times * isinstance(entry, ResidualBlock)
        parallel += times * isinstance(entry, ParallelBlock)
        for stack in entry.stacks():
            inner = _count(stack.entries, times)
            residual, parallel = residual + inner[0], parallel + inner[1]
    return residual, parallel


@pytest.mark.parametrize("name", list(CASES))
def test_the_imported_design_builds_what_the_code_builds(name: str) -> None:
    code = (FIXTURES / f"{name}.py").read_text()
    variable, shape = CASES[name]
    expected_shape, expected_params = _run(code, variable, shape)
    design, result = _imported(code, None if name in STATED else shape)
    trace = infer_shapes(design, define_trusted(design.custom_layers))
    assert design.input.shape == shape
    assert (trace.output_shape, trace.total_params) == (expected_shape, expected_params)
    assert result.problems == (), "\n".join(map(str, result.problems))
    assert not design.custom_layers, "every pasted class is read into layers and blocks"
    assert _blocks(design) == BLOCKS.get(name, (0, 0))


def test_the_book_style_class_says_its_model_is_self_net_and_ignores_set_up_calls() -> None:
    result = import_code((FIXTURES / "d2l_alexnet.py").read_text())
    notes = [str(n) for n in result.notes]
    assert any("AlexNet has no forward of its own" in n and "the model is self.net" in n for n in notes)
    assert any(".save_hyperparameters(...) does not change the layers; ignored" in n for n in notes)
    assert any(".apply(...) does not change the layers; ignored" in n for n in notes)
    assert any("input shape (1, 1, 224, 224) taken from layer_summary" in n for n in notes)


def test_the_conditional_shortcut_follows_the_literal_argument() -> None:
    """ResNet's first stage has identity shortcuts; the others start with a 1x1-conv projection."""
    design, _ = _imported((FIXTURES / "d2l_resnet18.py").read_text(), None)
    residuals = [e.entry for e in walk(design.layers) if isinstance(e.entry, ResidualBlock)]
    shortcuts = [[layer.type for layer in block.shortcut] for block in residuals]
    assert shortcuts == [[], [], ["LazyConv2d"], [], ["LazyConv2d"], [], ["LazyConv2d"], []]
    assert all(block.merge == "add" for block in residuals)


def test_identical_consecutive_blocks_come_in_as_one_repeated_block() -> None:
    """The current DenseNet's dense blocks: four identical concat Residuals each, read as one block x4."""
    design, _ = _imported((FIXTURES / "d2l_densenet.py").read_text(), None)
    repeats = [e.repeat for e in design.layers if isinstance(e, ResidualBlock)]
    assert repeats == [4, 4, 4, 4]


def test_densenet_concatenates_input_and_output_along_the_channels() -> None:
    design, _ = _imported((FIXTURES / "d2l_classic_densenet.py").read_text(), (1, 1, 96, 96))
    residuals = [e.entry for e in walk(design.layers) if isinstance(e.entry, ResidualBlock)]
    assert {(block.merge, block.dim, len(block.shortcut)) for block in residuals} == {("concat", None, 0)}


def test_a_helper_is_never_taken_for_the_model() -> None:
    code = (FIXTURES / "d2l_nin.py").read_text().replace("NiN().layer_summary((1, 1, 224, 224))\n", "")
    design, _ = _imported(code, (1, 1, 224, 224))
    assert sum(1 for e in walk(design.layers) if e.entry.type == "LazyConv2d") == 12  # not one nin_block's 3


TWO_MODELS = """\
import torch
from torch import nn


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


def wide():
    return nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
"""


def test_several_candidates_and_none_built_are_listed_and_one_can_be_picked() -> None:
    code = TWO_MODELS
    with pytest.raises(ImportFailed) as caught:
        import_code(code)
    assert caught.value.candidates == ("Small", "wide")
    assert "defines several that could be one: Small, wide" in str(caught.value)
    picked = import_code(code, model="wide")
    assert [layer.type for layer in picked.design.layers] == ["Linear", "ReLU", "Linear"]


SQUEEZE_EXCITE = """\
import torch
from torch import nn


class SE(nn.Module):
    def __init__(self, channels, reduction=4):
        super().__init__()
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(),
                                nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.se(x)


net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), SE(16))
y = net(torch.randn(2, 3, 8, 8))
"""


def test_a_gate_becomes_a_residual_with_mul() -> None:
    design, _ = _imported(SQUEEZE_EXCITE, None)
    block = design.layers[1]
    assert isinstance(block, ResidualBlock) and block.merge == "mul" and block.shortcut == ()
    assert [layer.type for layer in block.body] == ["AdaptiveAvgPool2d", "Conv2d", "ReLU", "Conv2d", "Sigmoid"]
    assert _run(SQUEEZE_EXCITE, "net", (2, 3, 8, 8)) == (
        infer_shapes(design).output_shape,
        infer_shapes(design).total_params,
    )


def test_a_class_whose_forward_cannot_be_followed_comes_in_whole_as_a_custom_layer() -> None:
    code = SQUEEZE_EXCITE.replace("return x * self.se(x)", "return x * self.se(x) if x.sum() > 0 else x")
    result = import_code(code)
    assert [layer.type for layer in result.design.layers] == ["Conv2d", "SE"]
    assert result.design.custom_layers[0].name == "SE"


def test_an_unfollowable_construct_refuses_the_model_with_its_line() -> None:
    code = (FIXTURES / "d2l_vgg.py").read_text()
    code = code.replace("for (num_convs, out_channels) in arch:", "for (num_convs, out_channels) in load(arch):")
    with pytest.raises(ImportFailed) as caught:
        import_code(code)
    message = str(caught.value)
    assert "line 21: warning: `load(arch)`: a loop over a value only known at run time" in message
    assert "class VGG is refused as a whole, nothing of it is guessed" in message


HOSTILE = {
    "power-tower": "def f(n):\n    return nn.Sequential(*[nn.ReLU() for _ in range(n)])\nnet = f(10**10**10)\n",
    "huge-range": "layers = []\nfor _ in range(10**12):\n    layers.append(nn.ReLU())\nnet = nn.Sequential(*layers)\n",
    "recursion": "def f(n):\n    return f(n + 1)\nnet = nn.Sequential(f(0))\n",
    "busy-loop": (
        "x = 0\nfor i in range(9999):\n    for j in range(9999):\n        x = x + 1\n"
        "net = nn.Sequential(nn.Linear(x, 2))\n"
    ),
    "deep-nesting": "net = nn.Sequential(" + "(" * 90 + "nn.ReLU()" + ")" * 90 + ")\n",
    "list-bomb": "a = [1] * 10\nfor _ in range(60):\n    a = a + a\nnet = nn.Sequential(nn.Linear(len(a), 2))\n",
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_becomes_a_note(case: str) -> None:
    """The evaluation budget stops each of these (benchmarks/bench_import.py measures how fast: well under 1 s)."""
    try:
        result = import_code(HOSTILE[case])
        text = "\n".join(map(str, result.notes))
    except ImportFailed as failed:
        text = str(failed)
    if case != "deep-nesting":
        assert "warning" in text


def _book_code(chapter: str, ref: str = "HEAD") -> str:
    """The PyTorch code of a chapter of the book (tabs resolved), from the local mirror of its repository."""
    text = subprocess.run(
        ["git", "-C", str(BOOK), "show", f"{ref}:{chapter}"], capture_output=True, text=True, check=True
    ).stdout
    cells = []
    for match in re.finditer(r"```\{\.python \.input[^}]*\}\n(.*?)```", text, re.S):
        first, _, rest = match.group(1).partition("\n")
        tab = re.match(r"\s*(?:%%tab|#@tab)\s+(.*)", first)
        if tab and {"pytorch", "all"} & {t.strip() for t in tab.group(1).split(",")}:
            try:
                cells.append(ast.unparse(_PyTorchTab().visit(ast.parse(rest))))
            except SyntaxError:
                continue
    return "\n\n".join(cells)


class _PyTorchTab(ast.NodeTransformer):
    def visit_If(self, node: ast.If) -> Any:
        self.generic_visit(node)
        test = node.test
        if isinstance(test, ast.Call) and getattr(test.func, "attr", "") == "selected":
            chosen = node.body if "pytorch" in [a.value for a in test.args] else node.orelse
            return chosen or None
        return node


# (chapter, edition) -> (variable, input); the book's own code, checked only where its repository was fetched
BOOK_CASES = {
    ("chapter_convolutional-modern/alexnet.md", "HEAD"): ("model", (1, 1, 224, 224)),
    ("chapter_convolutional-modern/vgg.md", "HEAD"): ("model", (1, 1, 224, 224)),
    ("chapter_convolutional-modern/nin.md", "HEAD"): ("model", (1, 1, 224, 224)),
    ("chapter_convolutional-modern/googlenet.md", "HEAD"): ("model", (1, 1, 96, 96)),
    ("chapter_convolutional-modern/resnet.md", "HEAD"): ("model", (1, 1, 96, 96)),
    ("chapter_convolutional-modern/densenet.md", "HEAD"): ("model", (1, 1, 96, 96)),
    ("chapter_convolutional-neural-networks/lenet.md", "HEAD"): ("model", (1, 1, 28, 28)),
    ("chapter_convolutional-modern/vgg.md", "r0.17"): ("net", (1, 1, 224, 224)),
    ("chapter_convolutional-modern/googlenet.md", "r0.17"): ("net", (1, 1, 96, 96)),
    ("chapter_convolutional-modern/resnet.md", "r0.17"): ("net", (1, 1, 224, 224)),
    ("chapter_convolutional-modern/densenet.md", "r0.17"): ("net", (1, 1, 96, 96)),
}


@pytest.mark.skipif(not BOOK.exists(), reason="the book's repository is not on this machine (fetch d2l-ai/d2l-en)")
@pytest.mark.parametrize(("chapter", "ref"), list(BOOK_CASES), ids=[f"{c.split('/')[1]}-{r}" for c, r in BOOK_CASES])
def test_the_books_own_chapters_import_exactly(chapter: str, ref: str, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _book_code(chapter, ref)
    variable, shape = BOOK_CASES[(chapter, ref)]
    runnable = _without_training(code)
    expected = _run(runnable, variable, shape)
    design, _ = _imported(code, shape)
    trace = infer_shapes(design, define_trusted(design.custom_layers))
    assert (trace.output_shape, trace.total_params) == expected


def _without_training(code: str) -> str:
    """The chapter without the statements that train or time (the stand-in makes them inert, but not d2l.*)."""
    training = re.compile(r"train_ch6\(|trainer\.fit|load_data|\.apply_init")
    lines = [line for line in code.splitlines() if not training.search(line)]
    return "\n".join(lines)


def test_cli_import_picks_a_model_by_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="python -m builder")
    register_import_command(parser.add_subparsers(dest="command", required=True))
    source = tmp_path / "two.py"
    source.write_text(TWO_MODELS)
    args = parser.parse_args(["import", str(source)])
    assert args.run(args) == 1
    assert "defines several that could be one: Small, wide" in capsys.readouterr().err
    args = parser.parse_args(["import", str(source), "--model", "Small"])
    assert args.run(args) == 0
    assert '"type": "Linear"' in capsys.readouterr().out


@pytest.mark.parametrize("style", list(ExportStyle))
@pytest.mark.parametrize(
    "name", ["d2l_googlenet", "d2l_resnet18", "d2l_densenet", "torchvision_resnet", "torchvision_vit"]
)
def test_an_imported_model_exports_and_imports_again_the_same(name: str, style: ExportStyle) -> None:
    shape = CASES[name][1]
    design, _ = _imported((FIXTURES / f"{name}.py").read_text(), None if name in STATED else shape)
    trace = infer_shapes(design)
    again = import_code(export_code(design, trace, style))
    retrace = infer_shapes(again.design)
    assert (retrace.output_shape, retrace.total_params) == (trace.output_shape, trace.total_params)
    assert _blocks(again.design) == _blocks(design)
    assert again.problems == ()
