"""Tensor operations in forward, read back as the builder's tensor ops (builder.tensor_ops).

``x.permute(0, 2, 1)``, ``x.transpose(0, 1)`` / ``swapaxes``, ``x.reshape(-1, 16)`` with literal sizes, ``x[:, 0]``,
``x[:, 1:3]``, ``x.mean(dim)``, ``F.one_hot(x, n).float()``, ``x * 0.5``, and the learned tensors of ``__init__``
(``self.pos_embedding = nn.Parameter(torch.zeros(1, 65, 192))``) used as ``x + self.pos_embedding``,
``x * self.layer_scale`` or ``torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)``. The classes an
exported file defines for them (the sequential style) are recognised when their code is exactly the builder's.
Anything else is refused by the caller with its reason: nothing here guesses.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from typing import Any

from builder.design import LayerSpec
from builder.importer.literals import Scope, literal
from builder.importer.notes import NotLiteral, Unsupported
from builder.importer.syntax import FUNCTIONAL, NN, _dotted
from builder.tensor_code import class_source
from builder.tensor_ops import TENSOR_OPS

# x.<method>(...) -> the tensor op computing it.
TENSOR_OP_METHODS: frozenset[str] = frozenset({"permute", "transpose", "swapaxes", "swapdims", "mean"})
# Constructors of a learned tensor's starting value: torch.<name>(*sizes) and the value each element starts at.
FILLS: dict[str, float | None] = {"zeros": 0.0, "ones": 1.0, "randn": None, "rand": None, "empty": None}
FLOAT_CASTS: frozenset[str] = frozenset({"float", "float32", "torch.float32", "torch.float"})


@dataclass(frozen=True)
class LearnedTensor:
    """``self.<name> = nn.Parameter(...)`` in __init__: its shape, and its starting value when every element has
    the same one (None: random or unknown)."""

    shape: tuple[int, ...]
    fill: float | None


@cache
def _class_dump(name: str) -> str:
    return ast.dump(ast.parse(class_source(name)).body[0])


def exported_tensor_op(cls: ast.ClassDef | None) -> str | None:
    """The tensor op a pasted class is, when its code is exactly the builder's (an exported file defines it)."""
    if cls is None or cls.name not in TENSOR_OPS:
        return None
    return cls.name if ast.dump(cls) == _class_dump(cls.name) else None


def _ints(nodes: list[ast.expr], scope: Scope) -> list[int]:
    values = [literal(node, scope) for node in nodes]
    if not all(type(v) is int for v in values):
        raise NotLiteral(nodes[0], "sizes must be whole numbers")
    return values


def _sizes(call: ast.Call, scope: Scope) -> list[int]:
    """``torch.zeros(1, 65, 192)`` or ``torch.zeros((1, 65, 192))``: the sizes."""
    args = call.args
    if len(args) == 1 and isinstance(args[0], ast.Tuple | ast.List):
        return _ints(list(args[0].elts), scope)
    if len(args) == 1:
        value = literal(args[0], scope)
        if isinstance(value, list | tuple):
            return _ints([ast.Constant(v) for v in value], scope)
    return _ints(list(args), scope)


def learned_tensor(resolve: Any, value: ast.expr, scope: Scope) -> LearnedTensor | None:
    """What ``nn.Parameter(torch.zeros(1, 1, 192))`` holds, or None when ``value`` is no such literal parameter.

    ``resolve`` turns a callee into its qualified name (the importer's aliases). Accepted starts: ``torch.zeros``,
    ``ones``, ``randn``, ``rand``, ``empty`` (and ``.normal_()`` and such on them), ``torch.full(sizes, v)``, and
    ``v * torch.ones(sizes)``.
    """
    if not (isinstance(value, ast.Call) and resolve(value.func) == f"{NN}.Parameter" and len(value.args) == 1):
        return None
    return _tensor(resolve, value.args[0], scope)


def _tensor(resolve: Any, node: ast.expr, scope: Scope) -> LearnedTensor | None:
    try:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for factor, tensor in ((node.left, node.right), (node.right, node.left)):
                inner = _tensor(resolve, tensor, scope) if isinstance(tensor, ast.Call) else None
                if inner is not None:
                    scale = literal(factor, scope)
                    fill = None if inner.fill is None else inner.fill * float(scale)
                    return LearnedTensor(inner.shape, fill)
            return None
        if not isinstance(node, ast.Call):
            return None
        if isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_"):  # .normal_(std=0.02)
            inner = _tensor(resolve, node.func.value, scope)
            return None if inner is None else LearnedTensor(inner.shape, None)
        callee = resolve(node.func) or ""
        name = callee.removeprefix("torch.")
        if callee == "torch.full" and len(node.args) == 2:
            return LearnedTensor(
                tuple(_sizes(ast.Call(node.func, node.args[:1], []), scope)), float(literal(node.args[1], scope))
            )
        if callee.startswith("torch.") and name in FILLS:
            return LearnedTensor(tuple(_sizes(node, scope)), FILLS[name])
    except (NotLiteral, TypeError, ValueError):
        return None
    return None


# ---------------------------------------------------------------------------------------------- forward


def _dims(node: ast.Call) -> list[ast.expr]:
    args = list(node.args)
    if len(args) == 1 and isinstance(args[0], ast.Tuple | ast.List):
        return list(args[0].elts)
    return args


def method_layer(node: ast.Call, method: str, scope: Scope) -> LayerSpec:
    """``x.permute(0, 2, 1)``, ``x.transpose(0, 1)``, ``x.swapaxes(0, 1)``, ``x.mean((2, 3), keepdim=True)``;
    ``scope`` holds the names bound to literals (``self.vocab_size``)."""
    try:
        if method == "permute":
            return LayerSpec(type="Permute", params={"dims": _ints(_dims(node), scope)})
        if method in ("transpose", "swapaxes", "swapdims"):
            dim0, dim1 = _ints(list(node.args), scope) if len(node.args) == 2 else (None, None)
            if dim0 is None:
                raise Unsupported(node, f".{method}() takes the two dimensions to swap")
            return LayerSpec(type="Transpose", params={"dim0": dim0, "dim1": dim1})
        return _mean(node, scope)
    except NotLiteral as error:
        raise Unsupported(node, f".{method}() with dimensions that are not literal numbers ({error.why})") from None


def _mean(node: ast.Call, scope: Scope) -> LayerSpec:
    keywords = {k.arg: k.value for k in node.keywords}
    dim = node.args[0] if node.args else keywords.get("dim")
    if dim is None or len(node.args) > 2 or set(keywords) - {"dim", "keepdim"}:
        raise Unsupported(node, ".mean() over the whole tensor, or with a dtype, has no layer: give dim")
    value = literal(dim, scope)
    dims = list(value) if isinstance(value, list | tuple) else [value]
    if not all(type(d) is int for d in dims):
        raise Unsupported(node, ".mean() with dimensions that are not whole numbers")
    keep = node.args[1] if len(node.args) == 2 else keywords.get("keepdim")
    params: dict[str, Any] = {"dims": dims}
    if keep is not None and literal(keep, scope) is True:
        params["keepdim"] = True
    return LayerSpec(type="Mean", params=params)


def reshape_layer(node: ast.Call, scope: Scope) -> LayerSpec | None:
    """``x.reshape(-1, 16)`` / ``x.view(2, 8, 4)`` with literal sizes: Reshape; None when a size is computed."""
    try:
        sizes = _ints(_dims(node), scope)
    except NotLiteral:
        return None
    return LayerSpec(type="Reshape", params={"shape": sizes}) if sizes else None


def _index(node: ast.expr, scope: Scope) -> int | slice | None:
    """A literal index (``0``, ``-1``) or slice (``1:3``, ``::2``); None otherwise."""
    try:
        if isinstance(node, ast.Slice):
            parts = [None if part is None else literal(part, scope) for part in (node.lower, node.upper, node.step)]
            ok = all(part is None or type(part) is int for part in parts)
            return slice(*parts) if ok else None
        value = literal(node, scope)
    except NotLiteral:
        return None
    return value if type(value) is int else None


def _is_full(node: ast.expr) -> bool:
    return isinstance(node, ast.Slice) and node.lower is None and node.upper is None and node.step is None


def subscript_layer(node: ast.Subscript, scope: Scope) -> LayerSpec | None:
    """``x[:, 0]`` -> Select(1, 0), ``x[..., 1:3]`` -> Slice(-1, 1, 3); None for other indexing."""
    items = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    ellipsis = [n for n, item in enumerate(items) if isinstance(item, ast.Constant) and item.value is Ellipsis]
    if ellipsis and ellipsis != [0]:
        return None
    rest = items[1:] if ellipsis else items
    picked = [n for n, item in enumerate(rest) if not _is_full(item)]
    if len(picked) != 1:
        return None
    position = picked[0]
    if ellipsis and position != 0:
        return None
    dim = position if not ellipsis else -len(rest)
    index = _index(rest[position], scope)
    if isinstance(index, int):
        return LayerSpec(type="Select", params={"dim": dim, "index": index})
    if isinstance(index, slice) and index.step not in (0,) and (index.step is None or index.step > 0):
        params = {"dim": dim} | {k: v for k, v in (("start", index.start), ("end", index.stop)) if v is not None}
        return LayerSpec(type="Slice", params=params | ({"step": index.step} if index.step not in (None, 1) else {}))
    return None


def is_one_hot_cast(resolve: Any, node: ast.Call) -> bool:
    """``F.one_hot(x, n).float()`` or ``.type(torch.float32)``: one-hot vectors as floats."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)):
        return False
    if resolve(func.value.func) != f"{FUNCTIONAL}.one_hot":
        return False
    if func.attr == "float" and not node.args:
        return True
    cast = _dotted(node.args[0]) if func.attr in ("type", "to") and len(node.args) == 1 else None
    return cast is not None and (resolve(node.args[0]) or cast) in FLOAT_CASTS


def one_hot_layer(call: ast.Call, scope: Scope) -> LayerSpec:
    """``F.one_hot(x, 28)``: OneHot(28); the number of classes must be given."""
    given = (
        call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "num_classes"), None)
    )
    try:
        classes = literal(given, scope) if given is not None else None
    except NotLiteral:
        classes = None
    if type(classes) is not int or classes < 1:
        raise Unsupported(call, "F.one_hot() needs num_classes as a literal number for its output size")
    return LayerSpec(type="OneHot", params={"num_classes": classes})


def parameter_layer(op: ast.operator, tensor: LearnedTensor) -> LayerSpec | None:
    """``x + self.p`` -> AddParameter(shape), ``x * self.p`` -> MulParameter(shape, init)."""
    if isinstance(op, ast.Add):
        return LayerSpec(type="AddParameter", params={"shape": list(tensor.shape)})
    if isinstance(op, ast.Mult):
        init = {} if tensor.fill in (None, 1.0) else {"init": tensor.fill}
        return LayerSpec(type="MulParameter", params={"shape": list(tensor.shape)} | init)
    return None


# Where each layer holding a learned tensor starts it (builder/tensor_ops.py): MulParameter at its init.
STARTS: dict[str, float] = {"AddParameter": 0.0, "PrependToken": 0.0, "MulParameter": 1.0}


def start_note(layer: LayerSpec, tensor: LearnedTensor) -> str | None:
    """What to tell when the code starts its learned tensor elsewhere than the layer will (random, or another
    value): the design keeps the layer and its shape; starting values, as every layer's initialization, are not
    part of it."""
    start = float(layer.params.get("init", STARTS.get(layer.type, 0.0)))
    if tensor.fill is not None and tensor.fill == start:
        return None
    code = "random values" if tensor.fill is None else f"{tensor.fill:g}"
    return (
        f"{layer.type} starts its learned tensor at {start:g} where the code starts it at {code}: the design keeps "
        "the layer and its shape, not starting values (as for every layer's initialization)"
    )


def constant_factor(node: ast.expr, scope: Scope) -> float | None:
    """A literal number a tensor is multiplied by."""
    try:
        value = literal(node, scope)
    except NotLiteral:
        return None
    return float(value) if type(value) in (int, float) else None


def expanded_token(node: ast.expr, live: str, sizes: set[str], tensors: dict[str, LearnedTensor]) -> str | None:
    """``self.cls_token.expand(x.shape[0], -1, -1)`` (or ``expand(n, -1, -1)`` with ``n = x.shape[0]``): the
    learned (1, 1, dim) tensor it expands over the batch, or None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "expand"):
        return None
    name = _dotted(node.func.value) or ""
    attr = name.removeprefix("self.") if name.startswith("self.") else ""
    learned = tensors.get(attr)
    if learned is None or len(learned.shape) != 3 or learned.shape[:2] != (1, 1):
        return None
    sizes_given = [ast.unparse(arg) for arg in node.args]
    batch = {f"{live}.shape[0]", f"{live}.size(0)", *sizes}
    if len(sizes_given) != 3 or sizes_given[1:] != ["-1", "-1"] or sizes_given[0] not in batch:
        return None
    return attr


def token_of(
    node: ast.Call, live: str, tokens: dict[str, str], sizes: set[str], tensors: dict[str, LearnedTensor]
) -> tuple[LayerSpec, str] | None:
    """``torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)``, or ``torch.cat([batch_class_token,
    x], dim=1)`` with ``batch_class_token`` such an expansion (``tokens``: name -> attribute): PrependToken(dim), and
    the attribute of its token."""
    dim = next((k.value for k in node.keywords if k.arg == "dim"), node.args[1] if len(node.args) > 1 else None)
    parts = node.args[0] if node.args else None
    if not (isinstance(parts, ast.Tuple | ast.List) and len(parts.elts) == 2 and dim is not None):
        return None
    token, tail = parts.elts
    if not (isinstance(tail, ast.Name) and tail.id == live and constant_factor(dim, Scope()) == 1.0):
        return None
    attr = tokens.get(token.id) if isinstance(token, ast.Name) else expanded_token(token, live, sizes, tensors)
    if attr is None:
        return None
    return LayerSpec(type="PrependToken", params={"dim": tensors[attr].shape[2]}), attr
