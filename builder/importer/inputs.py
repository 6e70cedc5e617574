"""The model's input: the shape and dtype the paste states, else one the first layer accepts."""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from builder.catalog import Category, LayerEntry, catalog
from builder.design import Design, DesignError, DType, InputSpec, LayerSpec
from builder.importer.literals import Scope, literal
from builder.importer.notes import NotLiteral, Severity
from builder.importer.syntax import _assigned_name

if TYPE_CHECKING:
    from builder.importer.models import _TopLevel
    from builder.importer.reader import Importer


DTYPES: dict[str, DType] = {
    "torch.float32": DType.FLOAT32,
    "torch.float": DType.FLOAT32,
    "torch.float64": DType.FLOAT64,
    "torch.double": DType.FLOAT64,
    "torch.int64": DType.INT64,
    "torch.long": DType.INT64,
}
TENSOR_FACTORIES: frozenset[str] = frozenset(
    {"torch.rand", "torch.randn", "torch.zeros", "torch.ones", "torch.empty", "torch.randint"}
)
# Methods on a built model that keep its layers: model.double(), Model().to(device).


def read_input(importer: Importer, top: _TopLevel, chosen: ast.AST) -> tuple[tuple[int, ...] | None, DType | None]:
    """Input shape and dtype the paste states: INPUT_SHAPE / INPUT_DTYPE, or the dummy tensor fed to the model."""
    shape = dtype = None
    if "INPUT_DTYPE" in top.constants:
        dtype = _dtype_of(importer, top.constants["INPUT_DTYPE"])
    if "INPUT_SHAPE" in top.constants:
        shape = _shape_of(importer, top.constants["INPUT_SHAPE"], top.scope)
    if shape is None:
        call = _dummy_tensor(importer, top, chosen)
        if call is not None:
            shape, tensor_dtype = _tensor_shape(importer, call, top.scope)
            dtype = dtype or tensor_dtype
            if shape is not None:
                importer.info(call, f"input shape {shape} taken from the tensor fed to the model")
    return shape, dtype or importer.model_dtype


def _dtype_of(importer: Importer, node: ast.expr) -> DType | None:
    name = importer.resolve(node) or (node.value if isinstance(node, ast.Constant) else "")
    dtype = DTYPES.get(str(name)) or DTYPES.get(f"torch.{name}")
    if dtype is None:
        importer.note(node, f"INPUT_DTYPE must be one of {', '.join(DTYPES)}; float32 is used")
    return dtype


def _shape_of(importer: Importer, node: ast.expr, scope: Scope) -> tuple[int, ...] | None:
    try:
        value = literal(node, scope)
        shape = tuple(value) if isinstance(value, list) else (value,)
        return InputSpec(shape=shape).shape
    except NotLiteral as error:
        importer.note(error.node, f"the input shape is not a literal ({error.why}); a shape is chosen instead")
    except (TypeError, ValueError):
        importer.note(node, "the input shape must be up to 6 whole numbers of at least 1; a shape is chosen instead")
    return None


def _dummy_tensor(importer: Importer, top: _TopLevel, chosen: ast.AST) -> ast.Call | None:
    """The tensor the paste feeds its model (``net(X)``), or its only dummy tensor."""
    fed = top.model_inputs.get(_assigned_name(chosen) or "") if isinstance(chosen, ast.stmt) else None
    if isinstance(fed, ast.Call) and importer.resolve(fed.func) in TENSOR_FACTORIES:
        return fed
    if isinstance(fed, ast.Name) and fed.id in top.tensors:
        return top.tensors[fed.id]
    return next(iter(top.tensors.values())) if len(top.tensors) == 1 else None


def _tensor_shape(importer: Importer, call: ast.Call, scope: Scope) -> tuple[tuple[int, ...] | None, DType | None]:
    """The shape of torch.rand(2, 20), torch.rand(size=(2, 20)), torch.randint(0, 10, (2, 16))."""
    callee = importer.resolve(call.func) or ""
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    dtype = _dtype_of(importer, keywords["dtype"]) if "dtype" in keywords else None
    if callee == "torch.randint":
        dtype = dtype or DType.INT64
        size = keywords.get("size", call.args[-1] if call.args else None)
        sizes = [size] if size is not None else []
    else:
        sizes = [keywords["size"]] if "size" in keywords else list(call.args)
    try:
        values = [literal(s, scope) for s in sizes]
    except NotLiteral:
        return None, dtype
    flat = values[0] if len(values) == 1 and isinstance(values[0], list) else values
    try:
        return InputSpec(shape=tuple(flat)).shape, dtype
    except (TypeError, ValueError):
        return None, dtype


# Inputs tried, in order, when the paste does not state one: the first that runs through the stack is used.
SPATIAL: dict[int, tuple[tuple[int, ...], ...]] = {1: ((64,),), 2: ((28, 28), (32, 32), (224, 224)), 3: ((16, 16, 16),)}
SEQUENCE = (2, 8)  # (length, batch) or (batch, length) for recurrent and attention layers
FALLBACK_SHAPE = (2, 20)


def shape_candidates(layers: list[LayerSpec]) -> list[tuple[int, ...]]:
    """Inputs the first informative layer accepts (layers that keep any shape are looked through)."""
    for layer in layers:
        entry = catalog().get(layer.type)
        if entry is None:
            return []
        shapes = _shapes_for(layer, entry)
        if shapes:
            return shapes
        if entry.category not in (Category.ACTIVATION, Category.DROPOUT) and layer.type != "Flatten":
            return []
    return []


def _shapes_for(layer: LayerSpec, entry: LayerEntry) -> list[tuple[int, ...]]:
    params = {**{p.name: p.default for p in entry.params}, **layer.params}
    rank = re.search(r"([123])d$", layer.type)
    if rank:
        channels = params.get("in_channels") or params.get("num_features") or params.get("num_channels")
        options = [channels] if channels else [1, 3]
        return [(1, c, *size) for size in SPATIAL[int(rank.group(1))] for c in options]
    for name in ("in_features", "in1_features", "num_features", "num_channels"):
        if params.get(name):
            return [(2, params[name])]
    for name in ("input_size", "embed_dim", "d_model"):
        if params.get(name):
            return [(*SEQUENCE, params[name])]
    if layer.type in ("Embedding", "EmbeddingBag"):
        return [(2, 16)]
    if layer.type == "LayerNorm":
        shape = params["normalized_shape"]
        return [(2, *(shape if isinstance(shape, list) else [shape]))]
    return []


def choose_input(
    importer: Importer, layers: list[LayerSpec], stated: tuple[tuple[int, ...] | None, DType | None], where: ast.AST
) -> InputSpec:
    """The stated input, else the first candidate the stack runs on (tried only without custom layers)."""
    shape, dtype = stated
    if dtype is None and layers and layers[0].type in ("Embedding", "EmbeddingBag"):
        dtype = DType.INT64
        importer.info(where, "the first layer is an embedding: the input holds int64 token ids")
    dtype = dtype or DType.FLOAT32
    if shape is not None:
        return InputSpec(shape=shape, dtype=dtype)
    candidates = shape_candidates(layers) or [FALLBACK_SHAPE]
    chosen = _first_that_runs(layers, candidates, dtype) if not importer.custom else None
    spec = InputSpec(shape=chosen or candidates[0], dtype=dtype)
    if chosen:
        why = "the first input shape tried that runs through the stack"
    elif importer.custom:
        why = "custom layers are not run while importing"
    else:
        why = "no input tried runs through the stack" if len(candidates) > 1 else "the first layer does not tell"
    importer.note(
        where,
        f"the code states no input (INPUT_SHAPE, or a tensor fed to the model): using {spec.shape}, {why}; "
        "set the real one",
        Severity.INFO if chosen else Severity.WARNING,
    )
    return spec


def _first_that_runs(layers: list[LayerSpec], shapes: list[tuple[int, ...]], dtype: DType) -> tuple[int, ...] | None:
    from builder.inference import infer_shapes

    for shape in shapes:
        design = Design(input=InputSpec(shape=shape, dtype=dtype), layers=tuple(layers))
        try:
            if infer_shapes(design).ok:
                return shape
        except DesignError:
            return None
    return None
