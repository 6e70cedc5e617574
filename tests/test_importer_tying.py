"""The importer reads one module object used twice back as a Shared entry (parameter tying)."""

from __future__ import annotations

import pytest

from builder.design import is_shared
from builder.examples import load_example
from builder.export import ExportStyle, export_code
from builder.importer import ImportFailed, import_code
from builder.inference import infer_shapes

BOOK = """
import torch
from torch import nn

shared = nn.LazyLinear(8)
net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.LazyLinear(1))
X = torch.rand(size=(2, 20))
net(X)
"""


def _entries(code: str) -> list[tuple[str, str, str]]:
    design = import_code(code).design
    return [(e.id, e.type, e.of if is_shared(e) else "") for e in design.layers]


def test_the_books_shared_layer_is_read_as_a_shared_entry() -> None:
    result = import_code(BOOK)
    assert _entries(BOOK)[2:5] == [
        ("layer-3", "LazyLinear", ""),
        ("layer-4", "ReLU", ""),
        ("layer-5", "Shared", "layer-3"),
    ]
    assert result.design.version == 2 and result.design.input.shape == (2, 20)
    assert infer_shapes(result.design).total_params == 249  # as torch counts the book's net
    assert any("shared is used again: the same module object" in str(note) for note in result.notes)


def test_a_module_class_calling_one_attribute_twice_ties_it() -> None:
    code = export_code(load_example("d2l-tied-mlp"), style=ExportStyle.MODULE)
    assert ("layer-5", "Shared", "layer-3") in _entries(code)


def test_a_shared_lstm_in_stackable_ties_too() -> None:
    code = """
from torch import nn
rnn = nn.LSTM(16, 16)
model = nn.Sequential(Stackable(rnn, first_output=True), Stackable(rnn, first_output=True))
"""
    assert _entries(code) == [("layer-1", "LSTM", ""), ("layer-2", "Shared", "layer-1")]


def test_separate_objects_stay_separate_and_a_reused_sequential_is_refused() -> None:
    assert all(
        kind != "Shared"
        for _, kind, _ in _entries("from torch import nn\nnn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))")
    )
    code = (
        "from torch import nn\nblock = nn.Sequential(nn.Linear(4, 4), nn.ReLU())\nmodel = nn.Sequential(block, block)\n"
    )
    with pytest.raises(ImportFailed, match=r"line 3.*block is used again, and it holds 2 layers"):
        import_code(code)
