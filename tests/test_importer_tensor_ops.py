"""The importer reads tensor operations back as the builder's tensor ops: the book's RNN language model, a ViT
written with torchvision's idioms, each call on its own, and refuses what has no tensor op with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from builder.design import design_from_dict
from builder.export import ExportStyle, export_code
from builder.importer import ImportFailed, import_code
from builder.inference import infer_shapes

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")

# D2L 9.6 (concise RNN), as the book writes it: one-hot of X.T, the RNN, the output layer, swapaxes back.
RNN_LM = """
import torch
from torch import nn
from torch.nn import functional as F


class RNNLM(nn.Module):
    def __init__(self, vocab_size=28, num_hiddens=32):
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(vocab_size, num_hiddens)
        self.linear = nn.LazyLinear(vocab_size)

    def forward(self, X):
        embs = F.one_hot(X.T, self.vocab_size).type(torch.float32)
        rnn_outputs, _ = self.rnn(embs)
        return self.linear(rnn_outputs).swapaxes(0, 1)


model = RNNLM()
X = torch.randint(0, 28, (2, 16))
"""

# torchvision's VisionTransformer idioms (n = x.shape[0], batch_class_token, torch.cat([...], dim=1), x[:, 0]) in
# one class, CIFAR-sized; torchvision's own builds its encoder layers in a loop, which a stack cannot read.
VIT = """
import torch
import torch.nn as nn


class VisionTransformer(nn.Module):
    def __init__(self, image_size=32, patch_size=4, hidden_dim=192, num_layers=12, num_heads=3, mlp_dim=768):
        super().__init__()
        self.conv_proj = nn.Conv2d(3, hidden_dim, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        seq_length = (image_size // patch_size) ** 2 + 1
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, hidden_dim).normal_(std=0.02))
        layer = nn.TransformerEncoderLayer(hidden_dim, num_heads, mlp_dim, 0.0, "gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers)
        self.ln = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.heads = nn.Linear(hidden_dim, 10)

    def forward(self, x):
        x = self.conv_proj(x)
        x = x.flatten(2).permute(0, 2, 1)
        n = x.shape[0]
        batch_class_token = self.class_token.expand(n, -1, -1)
        x = torch.cat([batch_class_token, x], dim=1)
        x = x + self.pos_embedding
        x = self.ln(self.encoder(x))
        x = x[:, 0]
        return self.heads(x)


model = VisionTransformer()
out = model(torch.randn(1, 3, 32, 32))
"""


def _types(code: str) -> list[tuple[str, dict[str, Any]]]:
    return [(layer.type, dict(layer.params)) for layer in import_code(code).design.layers]


def test_the_books_rnn_language_model_imports_as_tensor_ops() -> None:
    result = import_code(RNN_LM)
    assert [(layer.type, dict(layer.params)) for layer in result.design.layers] == [
        ("Transpose", {"dim0": 0, "dim1": 1}),
        ("OneHot", {"num_classes": 28}),
        ("RNN", {"input_size": 28, "hidden_size": 32}),
        ("LazyLinear", {"out_features": 28}),
        ("Transpose", {"dim0": 0, "dim1": 1}),
    ]
    assert any("x.T read as Transpose(0, 1)" in note.message for note in result.notes)
    trace = infer_shapes(result.design)
    assert trace.ok and trace.output_shape == (2, 16, 28) and trace.total_params == 2_908


def test_a_vit_written_with_torchvisions_idioms_imports_with_its_learned_tensors() -> None:
    result = import_code(VIT)
    assert [layer.type for layer in result.design.layers] == [
        "Conv2d", "Flatten", "Permute", "PrependToken", "AddParameter", "TransformerEncoder", "LayerNorm", "Select",
        "Linear",
    ]  # fmt: skip
    params = {layer.type: dict(layer.params) for layer in result.design.layers}
    assert params["PrependToken"] == {"dim": 192} and params["AddParameter"] == {"shape": [1, 65, 192]}
    assert params["Select"] == {"dim": 1, "index": 0} and params["Permute"] == {"dims": [0, 2, 1]}
    assert not result.problems
    trace = infer_shapes(result.design)
    assert trace.ok and trace.output_shape == (1, 10)
    namespace: dict[str, Any] = {}
    exec(VIT, namespace)  # the pasted model itself, for its parameter count
    assert trace.total_params == sum(p.numel() for p in namespace["model"].parameters())


def _forward(line: str, init: str = "") -> str:
    return (
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        f"        self.fc = nn.Linear(4, 4)\n{init}"
        f"    def forward(self, x):\n        x = self.fc(x)\n        x = {line}\n        return x\n\n"
        "net = Net()\nnet(torch.randn(2, 3, 4))\n"
    )


@pytest.mark.parametrize(
    ("line", "init", "layer"),
    [
        ("x.permute(2, 0, 1)", "", ("Permute", {"dims": [2, 0, 1]})),
        ("x.permute((0, 2, 1))", "", ("Permute", {"dims": [0, 2, 1]})),
        ("x.transpose(1, 2)", "", ("Transpose", {"dim0": 1, "dim1": 2})),
        ("x.reshape(6, 4)", "", ("Reshape", {"shape": [6, 4]})),
        ("x.view(-1, 12)", "", ("Reshape", {"shape": [-1, 12]})),
        ("x[:, -1]", "", ("Select", {"dim": 1, "index": -1})),
        ("x[..., 0]", "", ("Select", {"dim": -1, "index": 0})),
        ("x[:, 1:3]", "", ("Slice", {"dim": 1, "start": 1, "end": 3})),
        ("x[:, :, ::2]", "", ("Slice", {"dim": 2, "step": 2})),
        ("x.mean(dim=1)", "", ("Mean", {"dims": [1]})),
        ("x.mean((1, 2), keepdim=True)", "", ("Mean", {"dims": [1, 2], "keepdim": True})),
        ("x * 0.5", "", ("MulConstant", {"factor": 0.5})),
        ("2 * x", "", ("MulConstant", {"factor": 2.0})),
        ("self.gamma * x", "        self.gamma = nn.Parameter(1e-6 * torch.ones(4))\n",
         ("MulParameter", {"shape": [4], "init": 1e-6})),
        ("x * self.gamma", "        self.gamma = nn.Parameter(torch.full((4,), 0.5))\n",
         ("MulParameter", {"shape": [4], "init": 0.5})),
        ("x + self.pos", "        self.pos = nn.Parameter(torch.randn(1, 3, 4))\n",
         ("AddParameter", {"shape": [1, 3, 4]})),
    ],
)  # fmt: skip
def test_each_tensor_operation_becomes_its_tensor_op(line: str, init: str, layer: tuple[str, dict[str, Any]]) -> None:
    assert _types(_forward(line, init)) == [("Linear", {"in_features": 4, "out_features": 4}), layer]


@pytest.mark.parametrize(
    ("line", "init", "why"),
    [
        ("x[:, 0, 1]", "", "Select and Slice take one dim"),
        ("x[:, ::-1]", "", "Select and Slice take one dim"),
        ("x.mean()", "", ".mean() over the whole tensor"),
        ("x.permute(0, n, 1)", "", "not literal numbers"),
        ("x - self.pos", "        self.pos = nn.Parameter(torch.zeros(4))\n", "arithmetic on the tensor has no layer"),
        ("x * self.scale", "        self.scale = torch.ones(4)\n", "arithmetic on the tensor has no layer"),
        ("F.one_hot(x, 4)", "", "no equivalent layer"),
        ("torch.cat((self.tok.expand(x.shape[0], -1, -1), x), dim=2)",
         "        self.tok = nn.Parameter(torch.zeros(1, 1, 4))\n", "torch.cat() combines or reshapes tensors"),
    ],
)  # fmt: skip
def test_what_has_no_tensor_op_is_refused_with_the_reason(line: str, init: str, why: str) -> None:
    with pytest.raises(ImportFailed, match="not imported: the design would differ") as caught:
        import_code(_forward(line, init))
    assert why in str(caught.value)


def test_a_one_hot_cast_to_float_is_one_layer() -> None:
    code = (
        "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n\nclass Net(nn.Module):\n"
        "    def forward(self, x):\n        return F.one_hot(x, num_classes=5).float()\n\n"
        "Net()(torch.zeros(2, 3, dtype=torch.int64))\n"
    )
    assert _types(code) == [("OneHot", {"num_classes": 5})]


def test_a_pasted_class_named_like_a_tensor_op_but_different_stays_a_custom_layer() -> None:
    code = (
        "import torch\nfrom torch import nn\n\nclass Permute(nn.Module):\n"
        "    def forward(self, x):\n        return x.flip(0)\n\nnet = nn.Sequential(nn.Linear(4, 4), Permute())\n"
    )
    with pytest.raises(ImportFailed) as caught:
        import_code(code)
    assert "Permute" in str(caught.value)


def test_a_learned_tensor_used_twice_is_tied_not_doubled() -> None:
    init = "        self.gamma = nn.Parameter(torch.ones(4))\n"
    code = _forward("self.fc(x * self.gamma) * self.gamma", init)
    result = import_code(code)
    layers = result.design.layers
    assert [entry.type for entry in layers] == ["Linear", "MulParameter", "Shared", "Shared"]  # self.fc twice too
    assert (layers[2].of, layers[3].of) == (layers[0].id, layers[1].id)
    assert infer_shapes(result.design).total_params == (16 + 4) + 4


def test_a_learned_tensor_used_by_two_operations_is_refused() -> None:
    init = "        self.p = nn.Parameter(torch.zeros(4))\n"
    with pytest.raises(ImportFailed, match="used by AddParameter and then by MulParameter"):
        import_code(_forward("self.fc(x + self.p) * self.p", init))


@pytest.mark.parametrize("style", list(ExportStyle))
def test_a_tied_tensor_op_round_trips(style: ExportStyle) -> None:
    design = design_from_dict({
        "version": 2, "name": "tied scale", "input": {"shape": [2, 5, 8]},
        "layers": [{"type": "MulParameter", "id": "scale", "params": {"shape": [8], "init": 0.5}},
                   {"type": "Linear", "params": {"in_features": 8, "out_features": 8}},
                   {"type": "Shared", "of": "scale"}],
    })  # fmt: skip
    result = import_code(export_code(design, infer_shapes(design), style))
    assert not result.problems
    assert [(e.type, getattr(e, "of", None)) for e in result.design.layers] == [
        ("MulParameter", None), ("Linear", None), ("Shared", "layer-1")
    ]  # fmt: skip
    assert result.design.layers[0].params == {"shape": [8], "init": 0.5}


# D2L 10.1-10.4: the same language model around a GRU, an LSTM, a deep GRU and a bidirectional GRU.
BOOK_RNNS = {
    "gru": "nn.GRU(vocab_size, num_hiddens)",
    "lstm": "nn.LSTM(vocab_size, num_hiddens)",
    "deep-gru": "nn.GRU(vocab_size, num_hiddens, num_layers=2)",
    "bidirectional-gru": "nn.GRU(vocab_size, num_hiddens, bidirectional=True)",
}


@pytest.mark.parametrize("rnn", BOOK_RNNS.values(), ids=list(BOOK_RNNS))
def test_the_books_recurrent_models_import_as_the_code_builds_them(rnn: str) -> None:
    code = RNN_LM.replace("nn.RNN(vocab_size, num_hiddens)", rnn)
    namespace: dict[str, Any] = {}
    exec(compile(code, "<book>", "exec"), namespace)  # the test runs the book's code to know what it builds
    model, X = namespace["model"], namespace["X"]
    expected = model(X).shape
    result = import_code(code)
    assert not result.problems, result.problems
    trace = infer_shapes(result.design)
    assert trace.ok and trace.output_shape == tuple(expected)
    assert trace.total_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("init", "line", "noted"),
    [
        ("        self.p = nn.Parameter(torch.zeros(4))\n", "x + self.p", False),
        ("        self.p = nn.Parameter(torch.randn(4))\n", "x + self.p", True),
        ("        self.p = nn.Parameter(torch.empty(4).normal_(std=0.02))\n", "x + self.p", True),
        ("        self.g = nn.Parameter(1e-6 * torch.ones(4))\n", "self.g * x", False),
        ("        self.g = nn.Parameter(torch.rand(4))\n", "x * self.g", True),
    ],
)
def test_a_learned_tensor_the_code_starts_elsewhere_than_its_layer_is_said(init: str, line: str, noted: bool) -> None:
    result = import_code(_forward(line, init))
    said = [note for note in result.notes if "not starting values" in note.message]
    assert len(said) == int(noted) and all(note.severity == "info" for note in said)


def test_the_class_token_and_position_embedding_say_where_the_code_starts_them() -> None:
    vit = VIT.replace("torch.zeros(1, 1, hidden_dim)", "torch.randn(1, 1, hidden_dim)")
    said = sorted(note.message.split(" ")[0] for note in import_code(vit).notes if "not starting" in note.message)
    assert said == ["AddParameter", "PrependToken"]  # normal_(std=0.02) and randn; torch.zeros would say nothing
