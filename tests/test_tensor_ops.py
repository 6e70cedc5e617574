"""The builder's own layers (builder.tensor_ops) against the torch calls they stand for: values on the CPU, the
inline code the module-style export writes, "auto" sizes, the diagnoses, and a design mixing them with custom
layers in the sandbox."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from builder.catalog import catalog
from builder.design import (
    CustomLayerSpec,
    Design,
    DesignError,
    DType,
    InputSpec,
    LayerSpec,
    design_from_dict,
    validate_design,
)
from builder.export import ExportStyle, export_code
from builder.inference import infer_shapes, inspect_design
from builder.layer_run import torch_params
from builder.run import analyze
from builder.tensor_code import inline_op
from builder.tensor_ops import TENSOR_OPS

Case = tuple[str, dict[str, Any], tuple[int, ...], Callable[[torch.Tensor], torch.Tensor]]

# (layer, arguments, input shape, the torch call it stands for); learnable tensors start at zeros or init.
CASES: dict[str, Case] = {
    "permute": ("Permute", {"dims": [0, 2, 3, 1]}, (2, 3, 4, 5), lambda x: x.permute(0, 2, 3, 1)),
    "transpose": ("Transpose", {"dim0": 0, "dim1": 1}, (2, 3, 4), lambda x: x.swapaxes(0, 1)),
    "reshape": ("Reshape", {"shape": [-1, 12]}, (2, 3, 4), lambda x: x.view(-1, 12)),
    "select": ("Select", {"dim": 1, "index": 0}, (2, 3, 4), lambda x: x[:, 0]),
    "select-last": ("Select", {"dim": -1, "index": -1}, (2, 3, 4), lambda x: x[..., -1]),
    "slice": ("Slice", {"dim": 1, "start": 1, "end": 3}, (2, 4, 5), lambda x: x[:, 1:3]),
    "slice-step": ("Slice", {"dim": -2, "step": 2}, (2, 4, 5), lambda x: x[:, ::2, :]),
    "mean": ("Mean", {"dims": [2, 3]}, (2, 3, 4, 5), lambda x: x.mean((2, 3))),
    "mean-keepdim": ("Mean", {"dims": [1], "keepdim": True}, (2, 3, 4), lambda x: x.mean(1, keepdim=True)),
    "one-hot": ("OneHot", {"num_classes": 7}, (2, 5), lambda x: nn.functional.one_hot(x, 7).float()),
    "mul-constant": ("MulConstant", {"factor": 0.125}, (2, 3), lambda x: x / 8),
    "add-parameter": ("AddParameter", {"shape": [1, 3, 4]}, (2, 3, 4), lambda x: x),
    "mul-parameter": ("MulParameter", {"shape": [4], "init": 0.5}, (2, 3, 4), lambda x: x * 0.5),
    "prepend-token": ("PrependToken", {"dim": 4}, (2, 3, 4), lambda x: torch.cat((torch.zeros(2, 1, 4), x), 1)),
}


def _input(layer_type: str, shape: tuple[int, ...]) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if layer_type == "OneHot":
        return torch.randint(0, 7, shape, generator=generator)
    return torch.randn(shape, generator=generator)


def _layer(layer_type: str, params: dict[str, Any]) -> nn.Module:
    return TENSOR_OPS[layer_type](**torch_params(catalog()[layer_type], params)).eval()


def _one(layer_type: str, params: dict[str, Any], shape: tuple[int, ...], **extra: Any) -> Design:
    dtype = DType.INT64 if layer_type == "OneHot" else DType.FLOAT32
    layers = (LayerSpec(type=layer_type, params=params),)
    return Design(name="one", input=InputSpec(shape=shape, dtype=dtype), layers=layers, **extra)


def test_every_tensor_op_has_a_case() -> None:
    assert {case[0] for case in CASES.values()} == set(TENSOR_OPS)


@pytest.mark.parametrize("case", list(CASES))
def test_a_tensor_op_computes_the_torch_call_it_stands_for(case: str) -> None:
    layer_type, params, shape, torch_call = CASES[case]
    x = _input(layer_type, shape)
    with torch.no_grad():
        assert torch.equal(_layer(layer_type, params)(x), torch_call(x))
    trace = infer_shapes(_one(layer_type, params, shape))
    assert trace.output_shape == tuple(torch_call(x).shape)


@pytest.mark.parametrize("case", list(CASES))
def test_the_inline_code_computes_what_the_layer_computes(case: str) -> None:
    layer_type, params, shape, _ = CASES[case]
    layer, x = _layer(layer_type, params), _input(layer_type, shape)
    inline = inline_op(layer_type, params)
    assert inline is not None
    namespace: dict[str, Any] = {"torch": torch, "nn": nn, "F": nn.functional, "x": x}
    reference = ""
    if inline.parameter is not None:
        reference = "parameter"
        namespace[reference] = eval(inline.parameter[1], namespace)  # the constructor the export writes
        assert [tuple(p.shape) for p in layer.parameters()] == [tuple(namespace[reference].shape)]
    with torch.no_grad():
        assert torch.equal(eval(inline.code(reference), namespace), layer(x))


@pytest.mark.parametrize(
    ("layer_type", "params", "expected"),
    [
        ("Select", {"dim": 1, "index": 0}, "x[:, 0]"),
        ("Select", {"dim": -1, "index": 2}, "x[..., 2]"),
        ("Slice", {"dim": 2, "start": 1, "end": -1, "step": 2}, "x[:, :, 1:-1:2]"),
        ("Slice", {"dim": -2, "end": 3}, "x[..., :3, :]"),
        ("Mean", {"dims": [2, 3], "keepdim": True}, "x.mean(dim=(2, 3), keepdim=True)"),
        ("Reshape", {"shape": [-1, 16]}, "x.reshape(-1, 16)"),
        ("OneHot", {"num_classes": 28}, "F.one_hot(x, 28).float()"),
        ("AddParameter", {"shape": [1, 65, 192]}, "x + self.pos_embedding"),
        ("PrependToken", {"dim": 192}, "torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)"),
    ],
)
def test_inline_code_reads_as_the_book_writes_it(layer_type: str, params: dict[str, Any], expected: str) -> None:
    inline = inline_op(layer_type, params)
    assert inline is not None and inline.code(f"self.{inline.parameter[0]}" if inline.parameter else "") == expected


def test_an_auto_size_has_no_inline_form_until_it_is_materialized() -> None:
    assert inline_op("AddParameter", {}) is None and inline_op("PrependToken", {"dim": "auto"}) is None


@pytest.mark.parametrize(
    ("layer_type", "params", "inferred", "count"),
    [
        ("AddParameter", {}, {"shape": [1, 5, 8]}, 40),
        ("MulParameter", {"shape": "auto"}, {"shape": [8]}, 8),
        ("PrependToken", {}, {"dim": 8}, 8),
    ],
)
def test_an_auto_size_is_taken_from_the_input_like_a_lazy_layer(
    layer_type: str, params: dict[str, Any], inferred: dict[str, Any], count: int
) -> None:
    design = _one(layer_type, params, (2, 5, 8))
    before = inspect_design(design).layers[0]
    assert before.lazy and before.params == 0
    traced = infer_shapes(design).layers[0]
    assert dict(traced.inferred) == inferred and traced.params == count
    code = export_code(design, infer_shapes(design), ExportStyle.MODULE, materialize=True)
    assert "nn.Parameter(" in code and "UninitializedParameter" not in code


def test_module_style_names_parameters_once_and_numbers_repeats() -> None:
    layers = (
        LayerSpec(type="PrependToken", params={"dim": 8}),
        LayerSpec(type="MulParameter", params={"shape": [8]}),
        LayerSpec(type="MulParameter", params={"shape": [8], "init": 0.1}),
    )
    design = Design(name="scales", input=InputSpec(shape=(2, 5, 8)), layers=layers)
    code = export_code(design, infer_shapes(design), ExportStyle.MODULE)
    assert "self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))" in code
    assert "self.layer_scale1 = nn.Parameter(torch.ones(8))" in code
    assert "self.layer_scale2 = nn.Parameter(torch.full((8,), 0.1))" in code
    assert "class MulParameter" not in code


@pytest.mark.parametrize(
    ("layer_type", "params", "shape", "problem"),
    [
        ("Select", {"dim": 1, "index": 5}, (2, 3, 4), "Select index 5 out of range for dim 1 of size 3"),
        ("Select", {"dim": 3, "index": 0}, (2, 3, 4), "Select dim=3 is out of range for the input (2, 3, 4)"),
        ("Permute", {"dims": [0, 1]}, (2, 3, 4), "must name each of the 3 dimensions"),
        ("Transpose", {"dim0": 0, "dim1": -4}, (2, 3, 4), "use a dim from -3 to 2"),
        ("Slice", {"dim": -4}, (2, 3, 4), "Slice dim=-4 is out of range"),
        ("Reshape", {"shape": [-1, 7]}, (2, 3, 4), "does not fit the input (2, 3, 4) of 24 elements"),
        ("AddParameter", {"shape": [1, 5, 4]}, (2, 3, 4), "does not broadcast to the input (2, 3, 4)"),
        ("PrependToken", {}, (2, 3), "takes a sequence (N, L, dim)"),
        ("PrependToken", {"dim": 5}, (2, 3, 4), "must be the input's last size, here 4"),
        ("OneHot", {"num_classes": 3}, (2, 3), "expected integer token ids"),
    ],
)
def test_a_failing_tensor_op_is_explained(
    layer_type: str, params: dict[str, Any], shape: tuple[int, ...], problem: str
) -> None:
    layers = (LayerSpec(type=layer_type, params=params),)
    error = infer_shapes(Design(name="bad", input=InputSpec(shape=shape), layers=layers)).error
    assert error is not None and problem in error.message


def test_the_fix_of_an_index_out_of_range_picks_the_last() -> None:
    error = infer_shapes(_one("Select", {"dim": 1, "index": 5}, (2, 3, 4))).error
    assert error is not None and [(f.param, f.value) for f in error.fixes] == [("index", 2)]


@pytest.mark.parametrize(
    ("params", "words"),
    [({"dims": "0, 2"}, "dims"), ({"dims": [0, 2, 1], "keepdim": 1}, "keepdim"), ({"shape": [1, 0]}, "at least 1")],
)
def test_arguments_are_validated_like_any_layers(params: dict[str, Any], words: str) -> None:
    layer_type = "AddParameter" if "shape" in params else "Mean"
    with pytest.raises(DesignError, match=words):
        validate_design(_one(layer_type, params, (2, 3, 4)))


def test_a_custom_layer_cannot_take_a_tensor_ops_name() -> None:
    source = "class Permute(nn.Module):\n    def forward(self, x):\n        return x\n"
    design = _one("Permute", {"dims": [0, 1]}, (2, 3), custom_layers=(CustomLayerSpec(name="Permute", source=source),))
    with pytest.raises(DesignError, match="one of the builder's tensor ops"):
        validate_design(design)


CENTERED = "class CenteredLayer(nn.Module):\n    def forward(self, X):\n        return X - X.mean()\n"


def test_a_design_mixing_a_custom_layer_and_tensor_ops_traces_in_the_sandbox() -> None:
    layers = (
        LayerSpec(type="Permute", params={"dims": [0, 2, 1]}),
        LayerSpec(type="CenteredLayer"),
        LayerSpec(type="PrependToken"),
        LayerSpec(type="AddParameter"),
        LayerSpec(type="Select", params={"dim": 1, "index": 0}),
    )
    design = Design(
        name="mixed",
        input=InputSpec(shape=(2, 8, 5)),
        layers=layers,
        custom_layers=(CustomLayerSpec(name="CenteredLayer", source=CENTERED),),
    )
    trace = analyze(design)
    assert trace.ok, trace.error and trace.error.message
    assert [t.output_shape for t in trace.layers] == [(2, 5, 8), (2, 5, 8), (2, 6, 8), (2, 6, 8), (2, 8)]
    assert [dict(t.inferred) for t in trace.layers[2:4]] == [{"dim": 8}, {"shape": [1, 6, 8]}]
    assert trace.total_params == 8 + 48


def test_a_failing_tensor_op_is_explained_in_the_sandbox_too() -> None:
    layers = (LayerSpec(type="CenteredLayer"), LayerSpec(type="Select", params={"dim": 1, "index": 5}))
    design = Design(
        name="mixed",
        input=InputSpec(shape=(2, 3, 4)),
        layers=layers,
        custom_layers=(CustomLayerSpec(name="CenteredLayer", source=CENTERED),),
    )
    error = analyze(design).error
    assert error is not None and "Select index 5 out of range for dim 1 of size 3" in error.message


@pytest.mark.parametrize("style", list(ExportStyle))
def test_a_shared_learned_tensor_is_one_parameter_in_the_export(style: ExportStyle, tmp_path: Path) -> None:
    design = design_from_dict({
        "version": 2, "name": "tied scale", "input": {"shape": [2, 5, 8]},
        "layers": [{"type": "MulParameter", "id": "scale", "params": {"shape": [8], "init": 0.5}},
                   {"type": "Linear", "params": {"in_features": 8, "out_features": 8}},
                   {"type": "Shared", "of": "scale"}],
    })  # fmt: skip
    trace = infer_shapes(design)
    assert trace.ok and trace.total_params == 8 + 72
    path = tmp_path / "model.py"
    path.write_text(export_code(design, trace, style))
    model = runpy.run_path(str(path), run_name="exported")["build_model"]().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 5, 8))
    assert tuple(out.shape) == (2, 5, 8) and sum(p.numel() for p in model.parameters()) == 80
