"""Forward's data flow during abstract evaluation: paths of the tensor meeting, functions and methods on it.

Where two paths of the tensor meet (``Y + X``, ``Y += X``, ``x * self.se(x)``, ``torch.cat((b1, b2, b3, b4),
dim=1)``), the steps they share stay in the stack and the rest become a block: a Residual (body and shortcut, the
identity when one path is the input) or a Parallel (one branch per path), with the merge and dim of the code.
``F.relu(x)``, ``torch.flatten(x, 1)``, ``x.view(x.size(0), -1)`` and the tensor-op methods become layers.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from builder.design import DEFAULT_DIM, Entry, LayerSpec, Merge, ParallelBlock, ResidualBlock
from builder.importer import flow_tensors
from builder.importer.classes import _ClassInfo
from builder.importer.flow import literal_call
from builder.importer.forward import _ForwardReader
from builder.importer.functionals import FUNCTIONALS, TORCH_FUNCTIONS, _functional_for
from builder.importer.literals import Scope
from builder.importer.notes import Unsupported
from builder.importer.syntax import FUNCTIONAL, NN
from builder.importer.tensor_ops import TENSOR_OP_METHODS, method_layer, reshape_layer
from builder.importer.values import Refused, Size, Tensor

if TYPE_CHECKING:
    from builder.importer.evaluate import Evaluator

NOT_TENSOR = object()
CONCATS: frozenset[str] = frozenset({"torch.cat", "torch.concat", "torch.concatenate"})
MERGES: dict[type[ast.operator], Merge] = {ast.Add: Merge.ADD, ast.Mult: Merge.MUL}


def merge(node: ast.AST, tensors: list[Tensor], how: Merge, dim: int | None = None) -> Tensor:
    """Paths of one tensor meeting: their shared steps, then a Residual or Parallel block of the rest."""
    shared = 0
    shortest = min(len(t.path) for t in tensors)
    while shared < shortest and all(t.path[shared] is tensors[0].path[shared] for t in tensors):
        shared += 1
    rests = [t.entries(shared) for t in tensors]
    if not any(rests):
        raise Refused(node, "merges the tensor with itself; no block computes that")
    block: Entry
    if how is Merge.CONCAT:
        if len(rests) == 2 and not rests[0]:
            block = ResidualBlock(merge=how, dim=dim, body=tuple(rests[1]))
        else:
            block = ParallelBlock(merge=how, dim=dim, branches=tuple(tuple(r) for r in rests))
    elif len(rests) == 2:
        body, shortcut = (rests[1], rests[0]) if not rests[0] else (rests[0], rests[1])
        block = ResidualBlock(merge=how, body=tuple(body), shortcut=tuple(shortcut))
    else:
        block = ParallelBlock(merge=how, branches=tuple(tuple(r) for r in rests))
    return Tensor(tensors[0].path[:shared], tensors[0].root).then([block])


def arithmetic(ev: Evaluator, node: ast.BinOp, left: Any, right: Any) -> Any:
    if isinstance(left, Tensor) and isinstance(right, Tensor) and type(node.op) in MERGES:
        return merge(node, [left, right], MERGES[type(node.op)])
    if isinstance(left, Tensor) and isinstance(right, Tensor):
        raise Refused(
            node, f"`{ast.unparse(node)}` combines two tensors in a way no block merge (add, mul, concat) does"
        )
    raise Refused(node, "arithmetic of the tensor with a number or a parameter has no layer in the catalog")


def tensor_function(ev: Evaluator, node: ast.Call, qualified: str, env: dict[str, Any]) -> Any:
    """``torch.cat(...)``, ``F.relu(x)``, ``torch.flatten(x, 1)``; NOT_TENSOR for calls on no tensor."""
    if qualified in CONCATS:
        return _concat(ev, node, env)
    if qualified == "torch.stack":
        raise Refused(node, "torch.stack makes a new dimension; no block merge does (concat with torch.cat)")
    function = _functional_for(qualified)
    if function is None or not node.args:
        return NOT_TENSOR
    tensor = ev.expr(node.args[0], env)
    if not isinstance(tensor, Tensor):
        return NOT_TENSOR
    call = literal_call(ev, node, env, skip=1)
    layer = _ForwardReader(ev.importer, _ClassInfo(), "x").functional_layer(call, qualified, function)
    return tensor.then([layer])


def _concat(ev: Evaluator, node: ast.Call, env: dict[str, Any]) -> Tensor:
    args, kwargs = ev.arguments(node, env)
    tensors = ev.iterate(args[0], node) if args else []
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    token = flow_tensors.prepend(ev, node, tensors, dim)
    if token is not None:
        return token
    if len(tensors) < 2 or not all(isinstance(t, Tensor) for t in tensors):
        raise Refused(node, "torch.cat of something other than two or more paths of the tensor")
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise Refused(node, "torch.cat's dim must be a literal whole number")
    return merge(node, tensors, Merge.CONCAT, None if dim == DEFAULT_DIM else dim)


def tensor_method(ev: Evaluator, node: ast.Call, owner: Any, method: str, env: dict[str, Any]) -> Any:
    """``x.size(0)``, ``x.view(x.size(0), -1)``, ``x.flatten(1)``, ``x.relu()``."""
    if isinstance(owner, Size) or method in ("size", "dim"):
        dim = ev.expr(node.args[0], env) if method == "size" and len(node.args) == 1 else None
        whole = method == "size" and not node.args  # x.size(), as x.shape
        known = isinstance(owner, Tensor) and (type(dim) is int or whole)
        return Size(node, owner, dim) if known else Size(node)
    if method in ("view", "reshape"):
        sizes, _ = ev.arguments(node, env)
        sizes = list(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], tuple | list) else sizes
        flatten = flow_tensors.reshape(ev, node, owner, sizes) if len(sizes) > 2 or _sized(sizes) else None
        return owner.then([flatten or _flatten_view(ev, node, env)])
    if method in TENSOR_OP_METHODS:
        call = literal_call(ev, node, env)
        try:
            return owner.then([method_layer(call, method, Scope())])
        except Unsupported as error:
            raise Refused(node, error.why) from None
    if method in TORCH_FUNCTIONS:
        assert isinstance(node.func, ast.Attribute)
        call = ast.copy_location(
            ast.Call(func=node.func, args=[node.func.value, *node.args], keywords=node.keywords), node
        )
        call = literal_call(ev, call, env, skip=1)
        reader = _ForwardReader(ev.importer, _ClassInfo(), "x")
        return owner.then([reader.functional_layer(call, f"torch.{method}", FUNCTIONALS[method])])
    raise Refused(node, f"the tensor method .{method}() has no layer in the catalog")


def _flatten_view(ev: Evaluator, node: ast.Call, env: dict[str, Any]) -> LayerSpec:
    args, _ = ev.arguments(node, env)
    if len(args) == 1 and isinstance(args[0], tuple | list):
        args = list(args[0])
    if len(args) == 2 and isinstance(args[0], Size) and args[1] == -1:
        ev.importer.info(node, "read as nn.Flatten(): keeps the batch dimension, flattens the rest")
        return LayerSpec(type="Flatten")
    if len(args) == 2 and args[0] == -1 and isinstance(args[1], int):
        ev.importer.info(
            node, "read as nn.Flatten(): -1 first assumes the batch dimension is kept and the rest flattened"
        )
        return LayerSpec(type="Flatten")
    reshape = reshape_layer(literal_call(ev, node, env), Scope())
    if reshape is None:
        raise Refused(node, "a view/reshape with sizes only known at run time has no layer in the catalog")
    return reshape


def why_not_layer(qualified: str, node: ast.Call) -> str:
    if qualified.startswith(f"{FUNCTIONAL}."):
        return f"{qualified.replace(FUNCTIONAL, 'F')}() has no equivalent layer in the catalog"
    if qualified.startswith(f"{NN}."):
        return f"nn.{qualified.rsplit('.', 1)[-1]} is not a layer the builder can stack"
    return f"`{qualified or ast.unparse(node.func)}(...)` on the tensor has no layer in the catalog"


def _sized(sizes: list[Any]) -> bool:
    """Sizes after the first read off the tensor (``x.view(n, c * h * w)``): only a checked Flatten reads them."""
    return any(isinstance(s, Size) for s in sizes[1:])
