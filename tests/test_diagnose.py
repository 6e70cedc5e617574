"""Every common mistake is reported with the layer, what it expected and the fix; every offered fix works.

Forward-pass mistakes come back as ``trace.error`` (a LayerError); mistakes in the file itself as DesignError.
"""

from __future__ import annotations

from typing import Any

import pytest

from builder.design import Design, DesignError, design_from_dict, load_design
from builder.diagnose import FixKind
from builder.edit import apply_fix
from builder.run import analyze


def _design(shape: list[int], *layers: tuple[str, dict[str, Any]], dtype: str = "float32") -> dict[str, Any]:
    return {
        "input": {"shape": shape, "dtype": dtype},
        "layers": [{"type": layer_type, "params": params} for layer_type, params in layers],
    }


CONV_1_TO_4 = ("Conv2d", {"in_channels": 1, "out_channels": 4, "kernel_size": 3})

# name -> (design, failing layer index, phrases the message must contain)
FORWARD_MISTAKES: dict[str, tuple[dict[str, Any], int, tuple[str, ...]]] = {
    "mismatched in_features": (
        _design([2, 20], ("Linear", {"in_features": 30, "out_features": 10})),
        0,
        ("layer 1 Linear(in_features=30, out_features=10)", "expected in_features=30", "set in_features=20"),
    ),
    "mismatched in_features after another layer": (
        _design(
            [2, 20],
            ("Linear", {"in_features": 20, "out_features": 64}),
            ("ReLU", {}),
            ("Linear", {"in_features": 32, "out_features": 10}),
        ),
        2,
        ("layer 3 Linear", "got input (2, 64)", "set in_features=64"),
    ),
    "mismatched channels": (
        _design([1, 3, 28, 28], ("Conv2d", {"in_channels": 1, "out_channels": 8, "kernel_size": 3})),
        0,
        ("layer 1 Conv2d", "expected 1 input channels", "with 3 channels", "set in_channels=3"),
    ),
    "missing Flatten": (
        _design([1, 1, 8, 8], CONV_1_TO_4, ("Linear", {"in_features": 144, "out_features": 10})),
        1,
        ("layer 2 Linear", "4-D input (1, 4, 6, 6)", "insert Flatten before it", "in_features=144"),
    ),
    "kernel larger than its input": (
        _design([1, 1, 4, 4], ("Conv2d", {"in_channels": 1, "out_channels": 4, "kernel_size": 5})),
        0,
        ("layer 1 Conv2d", "kernel_size 5 is larger than the input's spatial size (4, 4)", "reduce kernel_size"),
    ),
    "kernel larger than its input after pooling": (
        _design(
            [1, 1, 8, 8],
            CONV_1_TO_4,
            ("MaxPool2d", {"kernel_size": 2}),
            ("Conv2d", {"in_channels": 4, "out_channels": 4, "kernel_size": 5}),
        ),
        2,
        ("layer 3 Conv2d", "kernel_size 5 is larger", "(3, 3)", "remove a pooling layer"),
    ),
    "mismatched BatchNorm2d channels": (
        _design([1, 3, 8, 8], ("BatchNorm2d", {"num_features": 16})),
        0,
        ("layer 1 BatchNorm2d", "expected num_features=16", "set num_features=3"),
    ),
    "BatchNorm2d on (N, C) features": (
        _design([2, 20], ("BatchNorm2d", {"num_features": 7})),  # setting 20 would not help
        0,
        ("layer 1 BatchNorm2d", "expected a 4-D input but got a 2-D input (2, 20)", "use BatchNorm1d"),
    ),
    "float input to an Embedding": (
        _design([2, 16], ("Embedding", {"num_embeddings": 100, "embedding_dim": 8})),
        0,
        ("layer 1 Embedding", "expected integer token ids", "set the input dtype to int64"),
    ),
    "mismatched LSTM input_size": (
        _design([2, 5, 12], ("LSTM", {"input_size": 16, "hidden_size": 8, "batch_first": True})),
        0,
        ("layer 1 LSTM", "expected input_size=16", "set input_size=12"),
    ),
}

# name -> (design file text, phrases the DesignError must contain)
FILE_MISTAKES: dict[str, tuple[str, tuple[str, ...]]] = {
    "unknown layer type": (
        '{"input": {"shape": [1, 1, 8, 8]}, "layers": [{"type": "Conv2D", "params": {"in_channels": 1}}]}',
        ("layers[0] (Conv2D)", "unknown layer type 'Conv2D'", "did you mean 'Conv2d'?"),
    ),
    "misspelled parameter": (
        '{"input": {"shape": [1, 1, 8, 8]}, "layers": [{"type": "Conv2d", "params": '
        '{"in_channels": 1, "out_channels": 4, "kernal_size": 3}}]}',
        ("layers[0] (Conv2d)", "unknown parameter 'kernal_size'", "did you mean 'kernel_size'?"),
    ),
    "negative size": (
        '{"input": {"shape": [2, 20]}, "layers": [{"type": "Linear", "params": '
        '{"in_features": 20, "out_features": -5}}]}',
        ("layers[0] (Linear)", "'out_features' must be at least 1, got -5"),
    ),
    "missing required parameter": (
        '{"input": {"shape": [2, 20]}, "layers": [{"type": "Linear", "params": {"in_features": 20}}]}',
        ("layers[0] (Linear)", "missing required parameter(s) out_features"),
    ),
    "malformed JSON": (
        '{"input": {"shape": [2, 20]},\n "layers": [\n  {"type": "ReLU"}\n  {"type": "ReLU"}\n]}',
        ("not valid JSON", "line 4, column 3"),
    ),
    "non-positive input size": (
        '{"input": {"shape": [2, 0]}, "layers": [{"type": "ReLU"}]}',
        ("input.shape", "at least 1"),
    ),
}


@pytest.mark.parametrize("name", list(FORWARD_MISTAKES))
def test_forward_mistake_names_the_layer_and_the_fix(name: str) -> None:
    data, index, phrases = FORWARD_MISTAKES[name]
    trace = analyze(design_from_dict(data))
    assert trace.error is not None, f"{name}: the design ran"
    assert trace.error.index == index
    assert len(trace.layers) == index  # the layers before it keep their results
    for phrase in phrases:
        assert phrase in trace.error.message


@pytest.mark.parametrize("name", list(FILE_MISTAKES))
def test_file_mistake_names_the_layer_and_the_fix(name: str) -> None:
    text, phrases = FILE_MISTAKES[name]
    with pytest.raises(DesignError) as caught:
        load_design(text)
    for phrase in phrases:
        assert phrase in str(caught.value)


def test_empty_stack_says_to_add_a_layer() -> None:
    with pytest.raises(DesignError, match="no layers; add at least one layer"):
        analyze(design_from_dict(_design([2, 20])))


FIXES = [
    (name, position)
    for name, (data, _, _) in FORWARD_MISTAKES.items()
    for position in range(len(analyze(design_from_dict(data)).error.fixes))
]


def _first_fix_certain(data: dict[str, Any]) -> bool:
    fixes = analyze(design_from_dict(data)).error.fixes
    return bool(fixes) and fixes[0].certain


def test_most_mistakes_come_with_a_certain_fix() -> None:
    certain = [name for name, (data, _, _) in FORWARD_MISTAKES.items() if _first_fix_certain(data)]
    assert len(certain) >= 5, certain


@pytest.mark.parametrize(("name", "position"), FIXES)
def test_applying_a_fix_makes_the_design_run(name: str, position: int) -> None:
    design: Design = design_from_dict(FORWARD_MISTAKES[name][0])
    error = analyze(design).error
    fix = error.fixes[position]
    fixed = apply_fix(design, error, fix)
    trace = analyze(fixed)
    assert trace.ok, f"{name}: fix '{fix.description}' left: {trace.error.message}"
    if fix.kind is FixKind.INSERT_FLATTEN:
        assert [layer.type for layer in fixed.layers][error.index] == "Flatten"
