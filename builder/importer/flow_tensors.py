"""Tensor operations during abstract evaluation: learned tensors, indexing, sizes read off the tensor, reshapes.

``x + self.pos_embedding`` (AddParameter), ``torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)``
(PrependToken), ``x[:, 0]`` (Select), keyword self-attention, ``n, c, h, w = x.shape`` and sizes computed from them,
and ``x.reshape(n, self.hidden_dim, n_h * n_w)``: a Flatten only where its sizes are the batch and the tensor's own
(checked at the input the code feeds and at inputs differing from it in one size), never a Reshape with the dummy
batch baked in. The same rules as :mod:`builder.importer.tensor_ops` (the chain reader's), on evaluated values;
anything else is refused with the line and reason.
"""

from __future__ import annotations

import ast
import math
from typing import TYPE_CHECKING, Any

from builder.design import Design, InputSpec, LayerSpec
from builder.importer.literals import Scope
from builder.importer.tensor_ops import learned_tensor, parameter_layer, start_note, subscript_layer
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
    note = start_note(layer, value.tensor)
    if note is not None:
        ev.importer.info(node, note)
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
    """``x.reshape(n, 192, n_h * n_w)``: Flatten(start_dim=2) where its sizes are the batch and the tensor's own;
    None when every size is a literal number (a Reshape); refused otherwise, with why.

    The sizes are checked at the input the code feeds and at inputs differing from it in one dimension: where the
    layers before the reshape accept an input, its batch must stay the batch and the numbers the tensor's sizes (the
    last size may be anything: a reshape that does not flatten the rest fails in the code as well).
    """
    if all(type(s) is int for s in sizes):
        return None
    *leading, last = sizes
    batch = leading[0] if leading else None
    if not (isinstance(batch, Size) and batch.batch and batch.tensor is not None):
        raise Refused(node, "the reshape keeps no batch first; only (batch, sizes..., rest) reads as a Flatten")
    if any(isinstance(s, Size) for s in leading[1:]) or not all(type(s) is int for s in leading[1:]):
        raise Refused(node, "sizes read off the tensor after the batch have no tensor op; give numbers")
    fed, kept = _fed(node), len(leading)
    shape = _shape(tensor, fed(ev))
    if shape is None or len(shape) <= kept or list(shape[1:kept]) != leading[1:]:
        raise Refused(node, f"the tensor is {shape}; the sizes before the last must be its own dimensions")
    if type(last) is int and last not in (-1, math.prod(shape[kept:])):
        raise Refused(node, f"the tensor is {shape}; the last size does not flatten the rest")
    for probe in _neighbours(fed(ev)):
        at, source = _shape(tensor, probe), _shape(batch.tensor, probe)
        if at is not None and (at[0] != probe[0] or source is None or source[0] != probe[0]):
            raise Refused(node, f"at the input {probe} the batch does not stay in front ({at})")
        if at is not None and list(at[1:kept]) != leading[1:]:
            raise Refused(node, f"at the input {probe} the tensor is {at}, not {leading[1:]} after the batch")
    ev.importer.info(
        node, f"read as Flatten(start_dim={kept}): the batch, the tensor's own sizes {shape[1:kept]}, the rest "
        f"flattened (the tensor is {shape} at the input the code feeds; checked at inputs differing in one size)",
    )  # fmt: skip
    return LayerSpec(type="Flatten", params={"start_dim": kept})


def _fed(node: ast.AST) -> Any:
    """The input the code feeds its model, or a refusal when it feeds none (read when needed)."""

    def fed(ev: Evaluator) -> tuple[int, ...]:
        if ev.importer.probe is None:
            raise Refused(
                node, "a reshape with sizes read off the tensor is read only with the input the code feeds the "
                "model (model(torch.randn(...))) or the one given",
            )  # fmt: skip
        return ev.importer.probe

    return fed


def _neighbours(fed: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The fed input with one more in the batch, and with each other size doubled."""
    return [(fed[0] + 1, *fed[1:]), *((*fed[:i], 2 * fed[i], *fed[i + 1 :]) for i in range(1, len(fed)))]


def _shape(tensor: Tensor, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The tensor's shape when the model gets an input of ``shape``; None where the layers before refuse it."""
    from builder.inference import infer_shapes

    if not tensor.root:
        return None
    if not tensor.entries():
        return shape
    design = Design(name="probe", input=InputSpec(shape=shape), layers=tuple(tensor.entries()))
    trace = infer_shapes(design)
    return tuple(trace.output_shape) if trace.ok and trace.output_shape is not None else None
