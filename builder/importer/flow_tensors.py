"""Tensor operations during abstract evaluation: learned tensors, indexing, sizes read off the tensor, reshapes.

``x + self.pos_embedding`` (AddParameter), ``torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)``
(PrependToken), ``x[:, 0]`` (Select), ``n, c, h, w = x.shape`` and sizes computed from them, and
``x.reshape(n, self.hidden_dim, n_h * n_w)``: a Flatten only where the sizes are the tensor's own (the batch, then
numbers equal to its dimensions at the input the code feeds, with the batch still the batch at another batch size),
never a Reshape with the dummy batch baked in. The same rules as :mod:`builder.importer.tensor_ops` (the chain
reader's), on evaluated values; anything else is refused with the line and reason.
"""

from __future__ import annotations

import ast
import math
from typing import TYPE_CHECKING, Any

from builder.design import Design, InputSpec, LayerSpec
from builder.importer.literals import Scope
from builder.importer.tensor_ops import learned_tensor, parameter_layer, subscript_layer
from builder.importer.values import Learned, Opaque, Refused, Size, Tensor

if TYPE_CHECKING:
    from builder.importer.evaluate import Evaluator

# Arguments of MultiheadAttention that change only the weights it also returns, never its output.
WEIGHT_FLAGS: frozenset[str] = frozenset({"need_weights", "average_attn_weights"})
# Calls that check the input and compute nothing: read as notes, their arguments never evaluated.
CHECKS: frozenset[str] = frozenset({"torch._assert"})


def learned(ev: Evaluator, node: ast.Call, env: dict[str, Any]) -> Learned:
    """``nn.Parameter(torch.zeros(1, 1, dim))`` with its sizes evaluated: the learned tensor."""
    from builder.importer.flow import literal_call  # flow imports this module

    inner = node.args[0] if len(node.args) == 1 else None
    sizes = _literal_sizes(ev, inner, env) if inner is not None else None
    value = learned_tensor(ev.importer.resolve, ast.Call(node.func, [sizes], []), Scope()) if sizes else None
    if value is None:
        literal_call(ev, node, env)  # the refusal names an argument only known at run time, when there is one
        raise Refused(node, "nn.Parameter of something other than torch.zeros/ones/randn/rand/empty/full(sizes)")
    return Learned(value, node)


def _literal_sizes(ev: Evaluator, node: ast.expr, env: dict[str, Any]) -> ast.expr | None:
    """``torch.empty(1, seq_length, hidden_dim).normal_(std=0.02)`` with every size replaced by its value."""
    from builder.importer.flow import literal_call

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_"):
        inner = _literal_sizes(ev, node.func.value, env)
        func = ast.copy_location(ast.Attribute(inner, node.func.attr, ast.Load()), node.func) if inner else None
        return ast.copy_location(ast.Call(func, [], []), node) if func is not None else None
    if isinstance(node, ast.Call):
        return literal_call(ev, node, env)
    if isinstance(node, ast.BinOp):
        left, right = _literal_sizes(ev, node.left, env), _literal_sizes(ev, node.right, env)
        return ast.copy_location(ast.BinOp(left, node.op, right), node) if left and right else None
    from builder.importer.flow import constant

    return constant(ev.expr(node, env), node)


def with_learned(ev: Evaluator, node: ast.BinOp, tensor: Tensor, value: Learned) -> Tensor:
    """``x + self.pos_embedding`` -> AddParameter, ``x * self.gamma`` -> MulParameter, used once."""
    layer = parameter_layer(node.op, value.tensor) if not value.expanded else None
    if layer is None:
        raise Refused(node, f"`{ast.unparse(node)}`: only x + <parameter> and x * <parameter> are tensor ops")
    return tensor.then([_once(ev, value, layer, node)])


def _once(ev: Evaluator, value: Learned, layer: LayerSpec, node: ast.AST) -> LayerSpec:
    if id(value) in ev.used:
        raise Refused(node, "a learned tensor used a second time would be a second parameter in the design")
    ev.used.add(id(value))
    return layer


def expand(node: ast.Call, value: Learned, args: list[Any]) -> Learned:
    """``self.class_token.expand(n, -1, -1)`` with ``n`` the batch: the token, to be put in front."""
    if len(value.tensor.shape) != 3 or value.tensor.shape[:2] != (1, 1):
        raise Refused(node, "only a (1, 1, dim) class token is expanded over the batch (PrependToken)")
    if len(args) != 3 or not (isinstance(args[0], Size) and args[0].batch) or args[1:] != [-1, -1]:
        raise Refused(node, "a class token is expanded as .expand(<the batch, x.shape[0]>, -1, -1)")
    return Learned(value.tensor, value.node, expanded=True)


def prepend(ev: Evaluator, node: ast.Call, parts: list[Any], dim: Any) -> Tensor | None:
    """``torch.cat([token, x], dim=1)`` with ``token`` an expanded class token: PrependToken; None otherwise."""
    if len(parts) != 2 or not isinstance(parts[0], Learned) or not isinstance(parts[1], Tensor):
        return None
    if not parts[0].expanded or dim != 1:
        raise Refused(node, "a learned tensor is concatenated only as a class token in front, dim=1")
    layer = LayerSpec(type="PrependToken", params={"dim": parts[0].tensor.shape[2]})
    return parts[1].then([_once(ev, parts[0], layer, node)])


def index(node: ast.Subscript, tensor: Tensor, env_values: dict[str, Any]) -> Tensor:
    """``x[:, 0]`` -> Select, ``x[:, 1:3]`` -> Slice, the indices evaluated first."""
    layer = subscript_layer(node, Scope(values=env_values))
    if layer is None:
        raise Refused(node, "this indexing of the tensor has no layer: Select and Slice take one dim, literal indices")
    return tensor.then([layer])


def unpack(node: ast.AST, size: Size, count: int) -> list[Size]:
    """``n, c, h, w = x.shape``: one size per dimension (the tensor has ``count`` dimensions, or the code fails)."""
    if size.tensor is None or size.dim is not None:
        raise Refused(node, "unpacks a size only known at run time")
    return [Size(node, size.tensor, dim) for dim in range(count)]


def size_arithmetic(node: ast.BinOp, left: Any, right: Any) -> Size:
    """``h // p``, ``n_h * n_w``: a size computed from sizes, which only a Flatten's last size may be."""
    for value in (left, right):
        if not isinstance(value, Size | int) or isinstance(value, bool):
            raise Refused(node, "arithmetic of a size with something other than a whole number")
    return Size(node)


def self_attention(ev: Evaluator, node: ast.Call, layer: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``self.self_attention(query=x, key=x, value=x, need_weights=False)``: x is query, key and value, as the
    stack calls MultiheadAttention; the output and (unknown) attention weights, the code keeping the output."""
    from builder.importer.flow import through

    inputs = list(args) + [kwargs.pop(name) for name in ("query", "key", "value") if name in kwargs]
    extra = set(kwargs) - WEIGHT_FLAGS
    if len(inputs) != 3 or not isinstance(inputs[0], Tensor) or any(i is not inputs[0] for i in inputs):
        raise Refused(node, "MultiheadAttention stands in a stack as self-attention: x as query, key and value")
    if extra:
        raise Refused(node, f"MultiheadAttention with {', '.join(sorted(extra))}: a stack passes no masks")
    output = through(ev, node, layer, inputs[0], as_stacked=True)
    return (output, Opaque(node, "the attention weights are not part of a stack"))


# ---------------------------------------------------------------------------------------------- reshape


def reshape(ev: Evaluator, node: ast.Call, tensor: Tensor, sizes: list[Any]) -> LayerSpec | None:
    """``x.reshape(n, 192, n_h * n_w)``: Flatten(start_dim=2) when it provably is one; None when every size is a
    literal number (a Reshape); refused otherwise, with why."""
    if all(type(s) is int for s in sizes):
        return None
    where = f"`{ast.unparse(node)}`"
    *leading, last = sizes
    if not leading or not (isinstance(leading[0], Size) and leading[0].batch):
        raise Refused(node, f"{where} keeps no batch first; only (batch, sizes..., rest) reads as a Flatten")
    if any(isinstance(s, Size) for s in leading[1:]) or not all(type(s) is int for s in leading[1:]):
        raise Refused(node, f"{where}: sizes read off the tensor after the batch have no tensor op; give numbers")
    shape, other = _traced(ev, node, tensor)
    kept = len(leading)
    if len(shape) <= kept or list(shape[1:kept]) != leading[1:] or list(other[1:kept]) != leading[1:]:
        raise Refused(node, f"{where}: the tensor is {shape}; the sizes before the last must be its own dimensions")
    if other[0] != shape[0] + 1 or (type(last) is int and last not in (-1, math.prod(shape[kept:]))):
        raise Refused(node, f"{where}: the tensor is {shape}; the sizes do not keep the batch and flatten the rest")
    ev.importer.info(
        node, f"read as Flatten(start_dim={kept}): the batch and the tensor's own sizes {shape[1:kept]}, the rest "
        f"flattened (the tensor is {shape} at the input the code feeds)",
    )  # fmt: skip
    return LayerSpec(type="Flatten", params={"start_dim": kept})


def _traced(ev: Evaluator, node: ast.AST, tensor: Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The tensor's shape at the input the code feeds, and at that input with one more in the batch."""
    from builder.inference import infer_shapes

    if not tensor.root or ev.importer.probe is None:
        raise Refused(
            node, "a reshape with sizes read off the tensor is read only in the model's own forward, with the input "
            "the code feeds it (model(torch.randn(...)))",
        )  # fmt: skip
    shapes = []
    fed = ev.importer.probe
    for batch in (fed[0], fed[0] + 1):
        design = Design(name="probe", input=InputSpec(shape=(batch, *fed[1:])), layers=tuple(tensor.entries()))
        trace = infer_shapes(design)
        if not trace.ok or trace.output_shape is None:
            raise Refused(node, f"the layers before it do not trace at the input {design.input.shape}")
        shapes.append(tuple(trace.output_shape))
    return shapes[0], shapes[1]
