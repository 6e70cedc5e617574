"""Exported code: golden files for a few designs, and an oracle run of every catalog sample in a fresh process.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/test_export.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from builder.catalog import catalog
from builder.design import CustomLayerSpec, Design, DType, InputSpec, LayerSpec, design_from_dict
from builder.export import ExportStyle, attribute_names, class_name, export_code, layer_source, snake_case
from builder.inference import infer_shapes, inspect_design
from builder.samples import sample_design
from builder.trace import Trace

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")

GOLDEN = Path(__file__).parent / "golden" / "export"
RUNNER = Path(__file__).parent / "oracle_runner.py"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SEQ, MOD = ExportStyle.SEQUENTIAL, ExportStyle.MODULE

CENTERED = "class CenteredLayer(nn.Module):\n    def forward(self, X):\n        return X - X.mean()\n"


def _design(name: str, shape: tuple[int, ...], layers: list[tuple[str, dict[str, Any]]], **extra: Any) -> Design:
    specs = tuple(LayerSpec(type=layer_type, params=params) for layer_type, params in layers)
    dtype = extra.pop("dtype", DType.FLOAT32)
    return Design(name=name, input=InputSpec(shape=shape, dtype=dtype), layers=specs, **extra)


DESIGNS: dict[str, Design] = {
    "d2l_mlp": _design(
        "d2l mlp", (2, 20), [("LazyLinear", {"out_features": 256}), ("ReLU", {}), ("LazyLinear", {"out_features": 10})]
    ),
    "lenet": _design(
        "LeNet",
        (1, 1, 28, 28),
        [
            ("Conv2d", {"in_channels": 1, "out_channels": 6, "kernel_size": 5, "padding": 2}),
            ("Sigmoid", {}),
            ("AvgPool2d", {"kernel_size": 2, "stride": 2}),
            ("Conv2d", {"in_channels": 6, "out_channels": 16, "kernel_size": [5, 5], "stride": 1}),
            ("BatchNorm2d", {"num_features": 16}),
            ("Sigmoid", {}),
            ("MaxPool2d", {"kernel_size": 2, "return_indices": True}),
            ("Flatten", {}),
            ("Linear", {"in_features": 400, "out_features": 120}),
            ("Dropout", {"p": 0.5}),
            ("Linear", {"in_features": 120, "out_features": 10}),
        ],
    ),
    "lstm_text": _design(
        "LSTM text classifier",
        (2, 16),
        [
            ("Embedding", {"num_embeddings": 1000, "embedding_dim": 32}),
            ("LSTM", {"input_size": 32, "hidden_size": 64, "batch_first": True}),
            ("LayerNorm", {"normalized_shape": [64]}),
            ("Flatten", {}),
            ("Linear", {"in_features": 1024, "out_features": 2}),
        ],
        dtype=DType.INT64,
    ),
    "centered_layer": _design(
        "centered layer",
        (4, 8),
        [("Linear", {"in_features": 8, "out_features": 128}), ("CenteredLayer", {})],
        custom_layers=(CustomLayerSpec(name="CenteredLayer", source=CENTERED),),
    ),
    "transformer_float64": _design(
        "tiny transformer",
        (2, 10, 16),
        [
            ("TransformerEncoder", {"d_model": 16, "nhead": 2, "num_layers": 2, "dim_feedforward": 32,
                                    "batch_first": True, "activation": "gelu"}),
            ("MultiheadAttention", {"embed_dim": 16, "num_heads": 2, "batch_first": True}),
            ("Transformer", {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
                             "dim_feedforward": 32, "batch_first": True}),
            ("LazyLinear", {"out_features": 4}),
        ],
        dtype=DType.FLOAT64,
    ),
}  # fmt: skip


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> dict[str, Any]:
    params = {"in_channels": cin, "out_channels": cout, "kernel_size": kernel, "padding": kernel // 2, "bias": False}
    return {"type": "Conv2d", "params": params | ({"stride": stride} if stride != 1 else {})}


def _bn(channels: int) -> dict[str, Any]:
    return {"type": "BatchNorm2d", "params": {"num_features": channels}}


RELU: dict[str, Any] = {"type": "ReLU"}
# Every kind of block: a projection shortcut, a repeated block with a lazy layer, branches with an identity, a
# squeeze-and-excitation gate (mul) and a concatenating skip.
DESIGNS["blocks"] = design_from_dict({
    "version": 2, "name": "blocks demo", "input": {"shape": [1, 3, 16, 16]},
    "layers": [
        _conv(3, 16, 3), _bn(16), RELU,
        {"type": "Residual", "label": "down1", "body": [_conv(16, 32, 3, 2), _bn(32), RELU, _conv(32, 32, 3), _bn(32)],
         "shortcut": [_conv(16, 32, 1, 2), _bn(32)]},
        RELU,
        {"type": "Sequential", "label": "stage", "repeat": 2, "layers": [
            {"type": "Residual", "label": "basic", "body": [
                {"type": "LazyConv2d", "params": {"out_channels": 32, "kernel_size": 3, "padding": 1}}, _bn(32)]},
            RELU]},
        {"type": "Parallel", "label": "mix", "branches": [
            [{"type": "Conv2d", "params": {"in_channels": 32, "out_channels": 8, "kernel_size": 1}}],
            [{"type": "MaxPool2d", "params": {"kernel_size": 3, "stride": 1, "padding": 1}}], []]},
        {"type": "Residual", "label": "gate", "merge": "mul", "body": [
            {"type": "AdaptiveAvgPool2d", "params": {"output_size": 1}},
            {"type": "Conv2d", "params": {"in_channels": 72, "out_channels": 72, "kernel_size": 1}},
            {"type": "Sigmoid"}]},
        {"type": "Residual", "merge": "concat", "body": [{"type": "LazyConv2d", "params": {"out_channels": 8,
                                                                                          "kernel_size": 1}}]},
        {"type": "AdaptiveAvgPool2d", "params": {"output_size": 1}}, {"type": "Flatten"},
        {"type": "LazyLinear", "params": {"out_features": 10}},
    ],
})  # fmt: skip
# A layer that returns a tuple inside a block's body: the module style's nn.Sequential needs Stackable too.
DESIGNS["lstm_residual"] = design_from_dict({
    "version": 2, "name": "lstm residual", "input": {"shape": [2, 5, 16]},
    "layers": [{"type": "Residual", "label": "recurrent", "repeat": 2, "body": [
        {"type": "LSTM", "params": {"input_size": 16, "hidden_size": 16, "batch_first": True}},
        {"type": "LayerNorm", "params": {"normalized_shape": [16]}}]}],
})  # fmt: skip

# Parameter tying next to blocks: the same LazyLinear (its sizes inferred at its first use) runs before and after
# a Residual, and a shared LSTM (a tuple-returning layer: Stackable in the sequential style).
DESIGNS["tied_blocks"] = design_from_dict({
    "version": 2, "name": "tied blocks", "input": {"shape": [2, 20]},
    "layers": [
        {"type": "LazyLinear", "params": {"out_features": 16}}, RELU,
        {"type": "LazyLinear", "id": "tied", "params": {"out_features": 16}},
        {"type": "Residual", "body": [{"type": "Linear", "params": {"in_features": 16, "out_features": 16}}, RELU]},
        {"type": "Shared", "of": "tied"},
        {"type": "LSTM", "id": "rnn", "params": {"input_size": 16, "hidden_size": 16}}, {"type": "Shared", "of": "rnn"},
    ],
})  # fmt: skip


@dataclass(frozen=True)
class Export:
    """One export_code call: which design, which style, materialized or not, with the trace's shape comments."""

    design: Design
    style: ExportStyle
    materialize: bool = False
    traced: bool = True

    def code(self, trace: Trace) -> str:
        return export_code(self.design, trace if self.traced else None, self.style, self.materialize)


GOLDEN_EXPORTS: dict[str, Export] = {
    "d2l_mlp_sequential": Export(DESIGNS["d2l_mlp"], SEQ),
    "d2l_mlp_module": Export(DESIGNS["d2l_mlp"], MOD),
    "d2l_mlp_sequential_materialized": Export(DESIGNS["d2l_mlp"], SEQ, materialize=True),
    "d2l_mlp_module_materialized": Export(DESIGNS["d2l_mlp"], MOD, materialize=True),
    "d2l_mlp_sequential_untraced": Export(DESIGNS["d2l_mlp"], SEQ, traced=False),
    "lenet_sequential": Export(DESIGNS["lenet"], SEQ),
    "lenet_module": Export(DESIGNS["lenet"], MOD),
    "lstm_text_sequential": Export(DESIGNS["lstm_text"], SEQ),
    "lstm_text_module": Export(DESIGNS["lstm_text"], MOD),
    "centered_layer_sequential": Export(DESIGNS["centered_layer"], SEQ),
    "centered_layer_module": Export(DESIGNS["centered_layer"], MOD),
    "transformer_float64_sequential": Export(DESIGNS["transformer_float64"], SEQ),
    "transformer_float64_module_materialized": Export(DESIGNS["transformer_float64"], MOD, materialize=True),
    "blocks_sequential": Export(DESIGNS["blocks"], SEQ),
    "blocks_module": Export(DESIGNS["blocks"], MOD),
    "blocks_sequential_materialized": Export(DESIGNS["blocks"], SEQ, materialize=True),
    "blocks_module_materialized": Export(DESIGNS["blocks"], MOD, materialize=True),
    "lstm_residual_sequential": Export(DESIGNS["lstm_residual"], SEQ),
    "lstm_residual_module": Export(DESIGNS["lstm_residual"], MOD),
    "tied_blocks_sequential": Export(DESIGNS["tied_blocks"], SEQ),
    "tied_blocks_module": Export(DESIGNS["tied_blocks"], MOD),
    "tied_blocks_sequential_materialized": Export(DESIGNS["tied_blocks"], SEQ, materialize=True),
    "tied_blocks_module_materialized": Export(DESIGNS["tied_blocks"], MOD, materialize=True),
}


def _sample_exports() -> dict[str, Export]:
    exports = {}
    for name, entry in catalog().items():
        design = sample_design(name)
        for style in ExportStyle:
            exports[f"{name}-{style}"] = Export(design, style)
            if entry.lazy or not entry.builtin:  # the builder's learnable tensors are lazy while "auto"
                exports[f"{name}-{style}-materialized"] = Export(design, style, materialize=True)
    return exports


ORACLE_EXPORTS: dict[str, Export] = {**_sample_exports(), **{f"golden-{k}": v for k, v in GOLDEN_EXPORTS.items()}}

_traces: dict[str, Trace] = {}


def _trace(design: Design) -> Trace:
    """infer_shapes, once per design (designs are immutable; the name is unique among the designs here)."""
    if design.name not in _traces:
        _traces[design.name] = infer_shapes(design)
    return _traces[design.name]


def _run_oracle(paths: list[Path], cwd: Path) -> dict[str, dict[str, Any]]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # the project is not importable
    done = subprocess.run(
        [sys.executable, str(RUNNER), *map(str, paths)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Trace, dict[str, Any]]]:
    """Every oracle export written to a file and run by one fresh process: case id -> (builder's trace, result)."""
    folder = tmp_path_factory.mktemp("exported")
    paths = {}
    for case, export in ORACLE_EXPORTS.items():
        paths[case] = folder / f"{case.replace('-', '_')}.py"
        paths[case].write_text(export.code(_trace(export.design)))
    results = _run_oracle(list(paths.values()), folder)
    return {case: (_trace(ORACLE_EXPORTS[case].design), results[str(path)]) for case, path in paths.items()}


@pytest.mark.parametrize("case", list(ORACLE_EXPORTS))
def test_exported_code_runs_like_the_trace(case: str, oracle: dict[str, tuple[Trace, dict[str, Any]]]) -> None:
    trace, result = oracle[case]
    assert trace.ok, trace.error.message if trace.error else "trace did not run"
    assert "error" not in result, result.get("error")
    assert tuple(result["shape"]) == trace.output_shape
    assert result["params"] == trace.total_params
    want = "torch.float64" if trace.input_dtype is DType.FLOAT64 else None
    assert want is None or result["dtype"] == want
    assert not result["imports_builder"]


@pytest.mark.parametrize("name", list(GOLDEN_EXPORTS))
def test_export_matches_golden_file(name: str) -> None:
    export = GOLDEN_EXPORTS[name]
    code = export.code(_trace(export.design))
    path = GOLDEN / f"{name}.py"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    assert path.exists(), f"{path} is missing; create it with UPDATE_GOLDEN=1 pytest {__file__}"
    assert code == path.read_text(), f"{name} differs from its golden file; if intended, rerun with UPDATE_GOLDEN=1"


def test_exported_file_runs_as_a_script(tmp_path: Path) -> None:
    design = DESIGNS["d2l_mlp"]
    path = tmp_path / "model.py"
    path.write_text(export_code(design, _trace(design)))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "(2, 10)"


@pytest.mark.parametrize(
    ("layer_type", "params", "expected"),
    [
        ("Linear", {"in_features": 20, "out_features": 10, "bias": False}, "nn.Linear(20, 10, bias=False)"),
        ("Linear", {"in_features": 20, "out_features": 10, "bias": True}, "nn.Linear(20, 10)"),
        ("Conv2d", {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "stride": 1, "padding": 1},
         "nn.Conv2d(3, 8, 3, padding=1)"),
        ("Conv2d", {"in_channels": 3, "out_channels": 8, "kernel_size": [3, 5]}, "nn.Conv2d(3, 8, (3, 5))"),
        ("Conv2d", {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": "same"},
         "nn.Conv2d(3, 8, 3, padding='same')"),
        ("LayerNorm", {"normalized_shape": [16]}, "nn.LayerNorm([16])"),
        ("Dropout", {"p": 0.5}, "nn.Dropout()"),
        ("Dropout", {"p": 0.1}, "nn.Dropout(p=0.1)"),
        ("Threshold", {"threshold": 0.1, "value": -1e9}, "nn.Threshold(0.1, -1000000000.0)"),
        ("Upsample", {"scale_factor": 2.0, "mode": "nearest"}, "nn.Upsample(scale_factor=2.0)"),
        ("RNN", {"input_size": 16, "hidden_size": 32, "nonlinearity": "relu"},
         "nn.RNN(16, 32, nonlinearity='relu')"),
        ("TransformerEncoderLayer", {"d_model": 16, "nhead": 2, "activation": "relu"},
         "nn.TransformerEncoderLayer(16, 2)"),
        ("TransformerEncoder", {"d_model": 16, "nhead": 2, "num_layers": 2, "dim_feedforward": 32},
         "nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, dim_feedforward=32), num_layers=2)"),
        ("CenteredLayer", {"scale": 2}, "CenteredLayer(scale=2)"),
    ],
)  # fmt: skip
def test_layer_source_reads_like_torch(layer_type: str, params: dict[str, Any], expected: str) -> None:
    assert layer_source(layer_type, params) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"value": float("nan")},
        {"value": float("-inf")},
        {"value": 10**30},
        {"value": {"a": 1}},
        {"value": object()},
        {"a=__import__('os').system('x'), b": 1},
        {"class": 1},
    ],
    ids=["nan", "-inf", "huge-int", "dict", "object", "code-as-name", "keyword"],
)
def test_layer_source_writes_only_identifiers_and_plain_literals(params: dict[str, Any]) -> None:
    """Export's own guard, behind validation: anything else is refused, never written as code."""
    with pytest.raises(ValueError, match="validate the design first"):
        layer_source("CenteredLayer", params)


@pytest.mark.parametrize("layer_type", ["os.system", "A()", "x\nimport os", "class"])
def test_layer_source_refuses_a_type_that_is_not_a_name(layer_type: str) -> None:
    with pytest.raises(ValueError, match="as a Python name"):
        layer_source(layer_type, {})


@pytest.mark.parametrize(
    ("design", "style", "needed"),
    [
        ("d2l_mlp", SEQ, False),
        ("lstm_text", SEQ, True),
        ("lstm_text", MOD, False),
        ("lenet", SEQ, True),  # MaxPool2d(return_indices=True) returns a tuple
    ],
)
def test_stackable_is_included_only_when_a_layer_needs_it(design: str, style: ExportStyle, needed: bool) -> None:
    code = export_code(DESIGNS[design], style=style)
    assert ("class Stackable(nn.Module):" in code) is needed
    assert "import builder" not in code and "from builder" not in code


def test_custom_layer_source_is_included_verbatim_with_functional_imported() -> None:
    code = export_code(DESIGNS["centered_layer"])
    assert CENTERED in code
    assert "import torch.nn.functional as F\n" in code
    assert "import torch.nn.functional" not in export_code(DESIGNS["d2l_mlp"])


def test_export_is_deterministic() -> None:
    design = DESIGNS["transformer_float64"]
    assert export_code(design, infer_shapes(design), MOD) == export_code(design, infer_shapes(design), MOD)


def test_materialize_needs_a_trace() -> None:
    with pytest.raises(ValueError, match=r"infer_shapes\(design\)"):
        export_code(DESIGNS["d2l_mlp"], materialize=True)


def test_materialize_refuses_a_failed_trace() -> None:
    broken = _design(
        "broken", (2, 20), [("Linear", {"in_features": 7, "out_features": 3}), ("LazyLinear", {"out_features": 2})]
    )
    with pytest.raises(ValueError, match=r"successful trace.*in_features=7"):
        export_code(broken, infer_shapes(broken), materialize=True)


def test_materialize_refuses_a_trace_that_did_not_run() -> None:
    design = DESIGNS["d2l_mlp"]
    with pytest.raises(ValueError, match="inspect_design"):
        export_code(design, inspect_design(design), materialize=True)


def test_a_failed_trace_still_exports_with_the_shapes_it_reached() -> None:
    broken = _design("broken", (2, 20), [("ReLU", {}), ("Linear", {"in_features": 7, "out_features": 3})])
    code = export_code(broken, infer_shapes(broken))
    assert "nn.ReLU(),  # -> (2, 20)\n" in code
    assert "nn.Linear(7, 3),\n" in code


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BatchNorm2d", "batch_norm2d"),
        ("LSTMCell", "lstm_cell"),
        ("LeakyReLU", "leaky_relu"),
        ("PReLU", "prelu"),
        ("ReLU6", "relu6"),
        ("MultiheadAttention", "multihead_attention"),
        ("LPPool2d", "lp_pool2d"),
        ("CenteredLayer", "centered_layer"),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


def test_attribute_names_count_per_type() -> None:
    assert attribute_names(["Linear", "ReLU", "Linear", "LSTM"]) == ["linear1", "relu1", "linear2", "lstm1"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("d2l mlp", "D2lMlp"),
        ("LeNet", "LeNet"),
        ("3 layer net", "Model3LayerNet"),
        ("none", "NoneModel"),
        ("", "Model"),
    ],
)
def test_class_name(name: str, expected: str) -> None:
    assert class_name(Design(name=name, input=InputSpec(shape=(1,)))) == expected


def test_a_block_becomes_a_class_whose_forward_reads_like_the_book() -> None:
    code = export_code(DESIGNS["blocks"], _trace(DESIGNS["blocks"]), MOD)
    assert "class Down1(nn.Module):" in code
    assert "return self.body(x) + self.shortcut(x)  # -> (1, 32, 8, 8)" in code
    assert "return self.body(x) + x  # -> (1, 32, 8, 8)" in code  # identity shortcut
    assert "return x * self.body(x)  # -> (1, 72, 8, 8)" in code  # the gate
    assert "return torch.cat((x, self.body(x)), dim=1)  # -> (1, 80, 8, 8)" in code  # the shortcut first
    assert "self.stage = nn.Sequential(*[Stage() for _ in range(2)])" in code
    assert "return torch.cat( (self.branch1(x), self.branch2(x), x), dim=1 )" in " ".join(code.split())
    assert "class Residual(" not in code and "class Parallel(" not in code


def test_the_sequential_style_defines_only_the_helpers_it_uses() -> None:
    code = export_code(DESIGNS["blocks"], style=SEQ)
    assert "class Residual(nn.Module):" in code and "class Parallel(nn.Module):" in code
    assert "class Stackable(nn.Module):" not in code
    only_residual = export_code(DESIGNS["lstm_residual"], style=SEQ)
    assert "class Parallel(" not in only_residual and "class Stackable(nn.Module):" in only_residual


def test_copies_that_materialize_differently_are_written_out() -> None:
    """A repeated block with a lazy layer is one expression for all copies; materialized, the first copy sees
    other sizes than the next ones, so the copies are written out (one class each in the module style)."""
    design = design_from_dict({
        "version": 2, "name": "lazy copies", "input": {"shape": [2, 3]},
        "layers": [{"type": "Sequential", "repeat": 3, "layers": [{"type": "LazyLinear",
                                                                    "params": {"out_features": 4}}]}],
    })  # fmt: skip
    trace = infer_shapes(design)
    lazy = export_code(design, trace, SEQ)
    assert "for _ in range(3)" in lazy and lazy.count("nn.LazyLinear(4)") == 1
    materialized = " ".join(export_code(design, trace, SEQ, materialize=True).split())
    assert "nn.Linear(3, 4)" in materialized and materialized.count("nn.Linear(4, 4)") == 2
    module = export_code(design, trace, MOD, materialize=True)
    assert "class SequentialBlock(nn.Module):" in module and "class SequentialBlock2(nn.Module):" in module
    assert "SequentialBlock(), SequentialBlock2(), SequentialBlock2()," in " ".join(module.split())


@pytest.mark.parametrize("label", ["forward", "class", "None", "3a", "Stackable", "blocks demo"])
def test_a_block_label_never_breaks_the_class_or_its_attribute(label: str, tmp_path: Path) -> None:
    design = design_from_dict({
        "version": 2, "name": "blocks demo", "input": {"shape": [2, 4]},
        "layers": [{"type": "Residual", "label": label, "body": [{"type": "Linear",
                                                                  "params": {"in_features": 4, "out_features": 4}}]}],
    })  # fmt: skip
    path = tmp_path / "model.py"
    path.write_text(export_code(design, style=MOD))
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "(2, 4)", done.stderr[-2000:]
