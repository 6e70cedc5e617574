"""The layer catalog against real torch: every entry's sample design runs, and agrees with torch on the CPU."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import nn

from builder.adapters import call_layer
from builder.catalog import EXCLUDED, CallStyle, Category, ParamKind, by_category, call_style, catalog
from builder.design import Design
from builder.inference import infer_shapes
from builder.layer_run import dummy_input, torch_params
from builder.samples import sample_design
from builder.tensor_ops import TOKEN_INPUTS

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")  # batch_first=False

LAYER_TYPES = list(catalog())
LAZY_TYPES = [name for name, entry in catalog().items() if entry.lazy]

SEED = (
    "Linear", "Flatten", "Dropout", "Dropout2d", "Dropout3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "Threshold", "ConstantPad2d", "ReplicationPad1d", "ZeroPad2d", "GroupNorm", "LayerNorm", "InstanceNorm2d",
    "Conv1d", "Conv2d", "Conv3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool2d", "FractionalMaxPool2d",
    "AvgPool2d", "AdaptiveAvgPool2d", "ConvTranspose2d", "Upsample", "Unfold", "Fold", "Embedding", "LSTM", "GRU",
    "RNN", "LSTMCell", "GRUCell", "RNNCell", "Transformer", "TransformerEncoder", "TransformerDecoder",
    "TransformerEncoderLayer", "TransformerDecoderLayer", "MultiheadAttention",
)  # fmt: skip
CONTAINERS = ("Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Container")


def _torch_layer(layer_type: str, params: dict[str, Any]) -> nn.Module:
    """The layer built straight from torch.nn, encoders the way torch documents them."""
    kwargs = torch_params(catalog()[layer_type], params)
    if not catalog()[layer_type].builtin:  # builder.tensor_ops: tests/test_tensor_ops.py checks them against torch
        return catalog()[layer_type].factory(**kwargs)
    if layer_type in ("TransformerEncoder", "TransformerDecoder"):
        num_layers = kwargs.pop("num_layers")
        return getattr(nn, layer_type)(getattr(nn, f"{layer_type}Layer")(**kwargs), num_layers=num_layers)
    return getattr(nn, layer_type)(**kwargs)


def _run_on_cpu(design: Design) -> tuple[nn.Module, torch.Tensor]:
    """Build the design's one layer on the CPU and run it on a real input; return the layer and its output."""
    spec = design.layers[0]
    layer = _torch_layer(spec.type, spec.params).eval()
    with torch.no_grad():
        out = call_layer(layer, call_style(spec.type, spec.params), dummy_input(design, "cpu"))
    return layer, out


@pytest.mark.parametrize("layer_type", LAYER_TYPES)
def test_sample_runs_like_torch_on_cpu(layer_type: str) -> None:
    design = sample_design(layer_type)
    trace = infer_shapes(design)
    assert trace.ok, trace.error.message if trace.error else "trace did not run"
    layer, out = _run_on_cpu(design)
    assert trace.output_shape == tuple(out.shape)
    assert trace.total_params == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize("layer_type", LAZY_TYPES)
def test_lazy_sample_reports_inferred_sizes(layer_type: str) -> None:
    design = sample_design(layer_type)
    traced = infer_shapes(design).layers[0]
    assert traced.params_before and all(p.shape is None for p in traced.params_before)
    assert all(p.shape is not None for p in traced.params_after)
    concrete = getattr(nn, layer_type).cls_to_become.__name__
    written = sample_design(concrete).layers[0].params  # what the concrete layer must be told
    expected = {name: value for name, value in written.items() if catalog()[layer_type].param(name) is None}
    assert expected and dict(traced.inferred) == expected
    layer, _ = _run_on_cpu(design)
    assert {name: getattr(layer, name) for name in expected} == expected


@pytest.mark.parametrize("layer_type", LAYER_TYPES)
def test_sample_design_is_one_layer_of_that_type(layer_type: str) -> None:
    design = sample_design(layer_type)
    assert [layer.type for layer in design.layers] == [layer_type]
    takes_ids = catalog()[layer_type].category is Category.EMBEDDING or layer_type in TOKEN_INPUTS
    assert design.input.dtype == ("int64" if takes_ids else "float32")


def test_sample_design_names_the_catalog_when_the_type_is_unknown() -> None:
    with pytest.raises(KeyError, match="catalog"):
        sample_design("Linaer")


@pytest.mark.parametrize("layer_type", SEED)
def test_seed_layer_is_in_the_catalog(layer_type: str) -> None:
    assert layer_type in catalog()


def test_every_lazy_layer_of_torch_is_in_the_catalog() -> None:
    lazy = {
        name
        for name in dir(nn)
        if name.startswith("Lazy") and inspect.isclass(cls := getattr(nn, name)) and issubclass(cls, nn.Module)
    }
    assert lazy and lazy == set(LAZY_TYPES)


def test_losses_containers_and_excluded_layers_are_absent() -> None:
    losses = [name for name in dir(nn) if name.endswith("Loss")]
    assert len(losses) > 10
    assert not set(catalog()) & {*losses, *CONTAINERS, *EXCLUDED}


@pytest.mark.parametrize(
    ("layer_type", "name", "expected"),
    [
        ("Linear", "in_features", {"kind": ParamKind.INT, "required": True, "minimum": 1}),
        ("Linear", "bias", {"kind": ParamKind.BOOL, "default": True, "required": False}),
        ("Dropout", "p", {"kind": ParamKind.FLOAT, "default": 0.5, "minimum": 0, "maximum": 1}),
        ("Conv2d", "kernel_size", {"kind": ParamKind.INT_OR_TUPLE, "required": True, "arity": 2, "minimum": 1}),
        ("Conv3d", "kernel_size", {"kind": ParamKind.INT_OR_TUPLE, "arity": 3}),
        ("Conv2d", "padding", {"kind": ParamKind.INT_OR_TUPLE, "default": 0, "choices": ("valid", "same")}),
        ("Conv2d", "padding_mode", {"kind": ParamKind.CHOICE, "default": "zeros"}),
        ("MaxPool2d", "stride", {"default": None, "optional": True}),
        ("LeakyReLU", "negative_slope", {"kind": ParamKind.FLOAT, "default": 0.01}),
        ("GELU", "approximate", {"kind": ParamKind.CHOICE, "choices": ("none", "tanh"), "default": "none"}),
        ("LayerNorm", "normalized_shape", {"kind": ParamKind.SHAPE, "required": True}),
        ("Embedding", "padding_idx", {"kind": ParamKind.INT, "optional": True}),
        ("EmbeddingBag", "mode", {"kind": ParamKind.CHOICE, "choices": ("mean", "sum", "max"), "default": "mean"}),
        ("Upsample", "mode", {"kind": ParamKind.CHOICE, "default": "nearest"}),
        ("LSTM", "num_layers", {"kind": ParamKind.INT, "default": 1, "minimum": 1}),
        ("RNN", "nonlinearity", {"kind": ParamKind.CHOICE, "default": "tanh", "keyword_only": True}),
        ("TransformerEncoderLayer", "activation", {"kind": ParamKind.CHOICE, "default": "relu"}),
        ("TransformerEncoder", "num_layers", {"kind": ParamKind.INT, "required": True}),
        ("Transformer", "d_model", {"kind": ParamKind.INT, "default": 512, "required": False}),
        ("Permute", "dims", {"kind": ParamKind.SHAPE, "required": True, "minimum": None}),
        ("Reshape", "shape", {"kind": ParamKind.SHAPE, "required": True, "minimum": -1}),
        ("Slice", "end", {"kind": ParamKind.INT, "optional": True, "default": None}),
        ("Mean", "keepdim", {"kind": ParamKind.BOOL, "default": False}),
        ("OneHot", "num_classes", {"kind": ParamKind.INT, "required": True, "minimum": 1}),
        ("AddParameter", "shape", {"kind": ParamKind.SHAPE, "default": "auto", "choices": ("auto",), "minimum": 1}),
        ("PrependToken", "dim", {"kind": ParamKind.INT, "default": "auto", "choices": ("auto",)}),
    ],
)
def test_parameter_spec(layer_type: str, name: str, expected: dict[str, Any]) -> None:
    spec = catalog()[layer_type].param(name)
    assert spec is not None
    assert {key: getattr(spec, key) for key in expected} == expected


def test_gru_has_no_proj_size_and_lstm_has() -> None:
    assert catalog()["GRU"].param("proj_size") is None
    assert catalog()["LSTM"].param("proj_size") is not None


@pytest.mark.parametrize(
    ("layer_type", "params", "style"),
    [
        ("Linear", {}, CallStyle.SINGLE),
        ("LSTM", {}, CallStyle.FIRST_OUTPUT),
        ("LSTMCell", {}, CallStyle.FIRST_OUTPUT),
        ("GRUCell", {}, CallStyle.SINGLE),
        ("MultiheadAttention", {}, CallStyle.SELF_ATTENTION),
        ("Transformer", {}, CallStyle.PAIR),
        ("TransformerEncoder", {}, CallStyle.SINGLE),
        ("TransformerDecoder", {}, CallStyle.PAIR),
        ("Bilinear", {}, CallStyle.PAIR),
        ("MaxPool2d", {"return_indices": True}, CallStyle.FIRST_OUTPUT),
    ],
)
def test_call_style(layer_type: str, params: dict[str, Any], style: CallStyle) -> None:
    assert call_style(layer_type, params) is style


@pytest.mark.parametrize(
    ("layer_type", "category"),
    [
        ("Linear", Category.LINEAR),
        ("ConvTranspose2d", Category.CONVOLUTION),
        ("AdaptiveAvgPool2d", Category.POOLING),
        ("GroupNorm", Category.NORMALIZATION),
        ("Threshold", Category.ACTIVATION),
        ("ZeroPad2d", Category.PADDING),
        ("GRUCell", Category.RECURRENT),
        ("MultiheadAttention", Category.TRANSFORMER),
        ("Embedding", Category.EMBEDDING),
        ("Unfold", Category.SHAPE),
        ("LazyLinear", Category.LAZY),
        ("Permute", Category.TENSOR_OPS),
        ("PrependToken", Category.TENSOR_OPS),
    ],
)
def test_category(layer_type: str, category: Category) -> None:
    assert catalog()[layer_type].category is category


def test_torch_tensor_operations_show_in_the_tensor_ops_group_too() -> None:
    group = [entry.name for entry in by_category()[Category.TENSOR_OPS]]
    assert group[:3] == ["Permute", "Transpose", "Reshape"]
    assert {"Flatten", "Unflatten", "ChannelShuffle", "AddParameter", "PrependToken"} <= set(group)
    assert "Flatten" in [entry.name for entry in by_category()[Category.SHAPE]]
    assert catalog()["Flatten"].category is Category.SHAPE
