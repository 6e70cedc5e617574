"""Abstract evaluation of the paste: helper functions, classes, loops and forward, without running anything.

The evaluator walks statements and expressions over the values of :mod:`builder.importer.values`. Literal
arithmetic is computed (bounded), loops over ``range(literal)`` and literal sequences are unrolled, lists, ``*layers``,
``nn.Sequential``, ``nn.ModuleList`` and ``add_module`` are followed, and a pasted class is instantiated by
evaluating its ``__init__`` (``@d2l.add_to_class`` methods included). In ``forward`` the tensor is a
:class:`~builder.importer.values.Tensor`; merging two paths of it makes a block (:mod:`builder.importer.flow`).
Whatever needs a run is :class:`~builder.importer.values.Refused` with its line and reason.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from builder.catalog import catalog
from builder.importer import dataflow, flow_tensors, introspect
from builder.importer.invocation import BUILTINS, Invocation, _Return
from builder.importer.literals import _arith
from builder.importer.notes import NotLiteral
from builder.importer.syntax import NN
from builder.importer.values import (
    MODULE_VALUES,
    ClassRef,
    Function,
    Instance,
    Layer,
    LayerType,
    Learned,
    Modules,
    Opaque,
    Refused,
    Size,
    Tensor,
)

COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: operator.contains(b, a),
    ast.NotIn: lambda a, b: not operator.contains(b, a),
}
INIT_ITERATORS: frozenset[str] = frozenset({"modules", "named_modules", "parameters", "named_parameters"})


class Evaluator(Invocation):
    """Evaluates the paste's statements and expressions abstractly, within a budget."""

    # -- statements -------------------------------------------------------------------------------------------

    def block(self, body: list[ast.stmt], env: dict[str, Any]) -> None:
        for stmt in body:
            self.statement(stmt, env)

    def statement(self, stmt: ast.stmt, env: dict[str, Any]) -> None:
        self.tick(stmt)
        if isinstance(stmt, ast.Expr):
            if not isinstance(stmt.value, ast.Constant):
                self.expr(stmt.value, env)
        elif isinstance(stmt, ast.Assign):
            value = self.expr(stmt.value, env)
            for target in stmt.targets:
                self.assign(target, value, env)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self.assign(stmt.target, self.expr(stmt.value, env), env)
        elif isinstance(stmt, ast.AugAssign):
            load = ast.copy_location(ast.BinOp(left=_loaded(stmt.target), op=stmt.op, right=stmt.value), stmt)
            self.assign(stmt.target, self.expr(load, env), env)
        elif isinstance(stmt, ast.Return):
            raise _Return(self.expr(stmt.value, env) if stmt.value is not None else None)
        elif isinstance(stmt, ast.If):
            self.block(stmt.body if self.truth(stmt.test, env) else stmt.orelse, env)
        elif isinstance(stmt, ast.For):
            self.loop(stmt, env)
        elif isinstance(stmt, ast.Assert | ast.Pass | ast.Import | ast.ImportFrom):
            return
        elif isinstance(stmt, ast.FunctionDef):
            env[stmt.name] = Function(stmt)
        else:
            raise Refused(stmt, f"a {type(stmt).__name__.lower()} statement is not followed statically")

    def loop(self, stmt: ast.For, env: dict[str, Any]) -> None:
        if _initialisation_loop(stmt):
            self.importer.info(stmt, "a loop that initialises parameters does not change the layers; ignored")
            return
        items = self.iterate(self.expr(stmt.iter, env), stmt.iter)
        if stmt.orelse:
            raise Refused(stmt, "a for ... else is not followed statically")
        for item in items:
            self.assign(stmt.target, item, env)
            for inner in stmt.body:
                if isinstance(inner, ast.Break | ast.Continue):
                    raise Refused(inner, "break and continue are not followed statically")
                self.statement(inner, env)

    def iterate(self, value: Any, node: ast.AST) -> list[Any]:
        if isinstance(value, list | tuple | str):
            return list(value)
        if isinstance(value, range):
            return list(value)
        if isinstance(value, Modules):
            self.called.add(id(value))  # forward loops over it: its layers are used one by one
            return list(value.children)
        if isinstance(value, Opaque):
            raise Refused(value.node, f"a loop over a value only known at run time ({value.why})")
        raise Refused(node, "a loop over something other than a literal sequence or a module container")

    def assign(self, target: ast.expr, value: Any, env: dict[str, Any]) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            items = flow_tensors.unpack(target, value, len(target.elts)) if isinstance(value, Size) else None
            items = items if items is not None else self.iterate(value, target)
            if len(items) != len(target.elts):
                raise Refused(target, f"unpacks {len(items)} values into {len(target.elts)} names")
            for element, item in zip(target.elts, items, strict=True):
                self.assign(element, item, env)
        elif isinstance(target, ast.Attribute):
            owner = self.expr(target.value, env)
            if not isinstance(owner, Instance):
                raise Refused(target, "sets an attribute of something other than self")
            owner.attrs[target.attr] = value
        elif isinstance(target, ast.Subscript) and not isinstance(target.slice, ast.Slice):
            container, key = self.expr(target.value, env), self.expr(target.slice, env)
            if not isinstance(container, dict | list) or isinstance(key, Opaque):
                raise Refused(target, "an item is set on something other than a literal dict or list")
            try:
                container[key] = value
            except (IndexError, TypeError) as error:
                raise Refused(target, f"the item cannot be set ({error})") from None
        else:
            raise Refused(target, "an assignment to a slice is not followed statically")

    def truth(self, node: ast.expr, env: dict[str, Any]) -> bool:
        value = self.expr(node, env)
        if isinstance(value, Opaque | Tensor | Size):
            why = value.why if isinstance(value, Opaque) else "it depends on the tensor"
            raise Refused(node, f"a branch on a value only known at run time ({why})")
        return bool(value) if not isinstance(value, (*MODULE_VALUES, LayerType)) else True

    # -- expressions ------------------------------------------------------------------------------------------

    def expr(self, node: ast.expr, env: dict[str, Any]) -> Any:
        self.tick(node)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.name(node, env)
        if isinstance(node, ast.Attribute):
            return self.attribute(node, env)
        if isinstance(node, ast.Tuple | ast.List):
            items = self.sized(self.items(node.elts, env), node)
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Call):
            return self.call(node, env)
        if isinstance(node, ast.BinOp):
            return self.binary(node, self.expr(node.left, env), self.expr(node.right, env))
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, self.expr(node.operand, env))
        if isinstance(node, ast.BoolOp):
            return self.boolean(node, env)
        if isinstance(node, ast.Compare):
            return self.compare(node, env)
        if isinstance(node, ast.IfExp):
            return self.expr(node.body if self.truth(node.test, env) else node.orelse, env)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, env)
        if isinstance(node, ast.JoinedStr):
            return "".join(self.formatted(part, env) for part in node.values)
        if isinstance(node, ast.ListComp | ast.GeneratorExp):
            return self.sized(self.comprehension(node.elt, node.generators, dict(env)), node)
        if isinstance(node, ast.Dict):
            return {self.expr(k, env): self.expr(v, env) for k, v in zip(node.keys, node.values, strict=True) if k}
        raise Refused(node, f"a {type(node).__name__} expression is not followed statically")

    def comprehension(self, elt: ast.expr, generators: list[ast.comprehension], env: dict[str, Any]) -> list[Any]:
        """``[f(x) for x in xs if p(x)]`` over literal sequences."""
        if not generators:
            return [self.expr(elt, env)]
        first, rest = generators[0], generators[1:]
        items: list[Any] = []
        for item in self.iterate(self.expr(first.iter, env), first.iter):
            self.assign(first.target, item, env)
            if all(self.truth(test, env) for test in first.ifs):
                items += self.comprehension(elt, rest, env)
        return items

    def formatted(self, part: ast.expr, env: dict[str, Any]) -> str:
        value = self.expr(part.value, env) if isinstance(part, ast.FormattedValue) else self.expr(part, env)
        return str(value)

    def items(self, elements: list[ast.expr], env: dict[str, Any]) -> list[Any]:
        items: list[Any] = []
        for element in elements:
            if isinstance(element, ast.Starred):
                items += self.iterate(self.expr(element.value, env), element)
            else:
                items.append(self.expr(element, env))
        return items

    def name(self, node: ast.Name, env: dict[str, Any]) -> Any:
        for scope in (env, self.globals):
            if node.id in scope:
                return scope[node.id]
        if node.id in BUILTINS or node.id in ("range", "super", "print", "isinstance"):
            return Opaque(node, f"the builtin {node.id}")
        return Opaque(node, f"`{node.id}` is not defined in the pasted code")

    def attribute(self, node: ast.Attribute, env: dict[str, Any]) -> Any:
        head = node
        while isinstance(head, ast.Attribute):
            head = head.value
        if isinstance(head, ast.Name) and head.id not in env and head.id not in self.globals:
            qualified = self.importer.resolve(node) or ""
            short = qualified.rsplit(".", 1)[-1]
            if qualified.startswith(f"{NN}.") and short in catalog():
                return LayerType(short, node)
            return Opaque(node, f"`{ast.unparse(node)}` is not followed statically")
        owner = self.expr(node.value, env)
        if isinstance(owner, Instance):
            return self.instance_attribute(owner, node)
        if isinstance(owner, ClassRef) and node.attr in self.class_attrs.get(owner.name, {}):
            return self.class_attrs[owner.name][node.attr]
        if isinstance(owner, Tensor) and node.attr == "shape":
            return Size(node, owner)
        if isinstance(owner, Layer):
            return introspect.layer_attribute(owner, node)
        if isinstance(owner, Modules):
            return introspect.modules_attribute(owner, node)
        if isinstance(owner, Opaque):
            return owner
        return Opaque(node, f"the attribute .{node.attr} is not followed statically")

    def instance_attribute(self, owner: Instance, node: ast.Attribute) -> Any:
        if node.attr in owner.attrs:
            return owner.attrs[node.attr]
        found = self.method(owner.cls, node.attr)
        if found is not None:
            return Function(found[0], found[1], owner)
        current: str | None = owner.cls
        while current is not None:
            if node.attr in self.class_attrs.get(current, {}):
                return self.class_attrs[current][node.attr]
            current = self.base_of(current)
        if node.attr == "training":
            return Opaque(node, "self.training")
        if owner.unread is not None:  # set, perhaps, by the __init__ of a base the paste lacks
            return Opaque(owner.unread.node, owner.unread.why)
        return Opaque(node, f"self.{node.attr} is not set in the code read")

    def binary(self, node: ast.BinOp, left: Any, right: Any) -> Any:
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            learned = left if isinstance(left, Learned) else right if isinstance(right, Learned) else None
            tensor = left if isinstance(left, Tensor) else right
            if learned is not None:
                return flow_tensors.with_learned(self, node, tensor, learned)
            return dataflow.arithmetic(self, node, left, right)
        if isinstance(left, Size) or isinstance(right, Size):
            return flow_tensors.size_arithmetic(node, left, right)
        for value in (left, right):
            if isinstance(value, Opaque):
                raise Refused(value.node, f"arithmetic on a value only known at run time ({value.why})")
        if isinstance(node.op, ast.Add) and isinstance(left, list | tuple | str) and type(left) is type(right):
            return self.sized(left + right, node)
        if isinstance(node.op, ast.Mod) and isinstance(left, str):
            return self.sized(left % right, node)
        try:
            return _arith(node, left, right)
        except NotLiteral as error:
            raise Refused(node, error.why) from None

    def unary(self, node: ast.UnaryOp, value: Any) -> Any:
        if isinstance(node.op, ast.Not) and not isinstance(value, Opaque | Tensor):
            return not value
        if isinstance(node.op, ast.USub | ast.UAdd) and isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
        raise Refused(node, "only the sign of a number and `not` are evaluated")

    def boolean(self, node: ast.BoolOp, env: dict[str, Any]) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.truth(operand, env)
            if value is isinstance(node.op, ast.Or):
                return value
        return value

    def compare(self, node: ast.Compare, env: dict[str, Any]) -> bool:
        left = self.expr(node.left, env)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.expr(right_node, env)
            for value in (left, right):
                identity = isinstance(op, ast.Is | ast.IsNot) and not (isinstance(value, Opaque) and not value.present)
                if isinstance(value, Opaque | Tensor | Size) and not identity:
                    why = f" ({value.why})" if isinstance(value, Opaque) else ""
                    raise Refused(node, f"a comparison with a value only known at run time{why}")
            try:
                if not COMPARE[type(op)](left, right):
                    return False
            except TypeError as error:
                raise Refused(node, f"the comparison does not evaluate ({error})") from None
            left = right
        return True

    def subscript(self, node: ast.Subscript, env: dict[str, Any]) -> Any:
        value = self.expr(node.value, env)
        if isinstance(value, Size):
            dim = self.expr(node.slice, env) if not isinstance(node.slice, ast.Slice) else None
            known = value.tensor is not None and value.dim is None and type(dim) is int
            return Size(node, value.tensor, dim) if known else Size(node)
        if isinstance(value, Tensor):
            return flow_tensors.index(node, value, _literals(env))
        if isinstance(node.slice, ast.Slice):
            parts = [self.expr(p, env) if p is not None else None for p in (node.slice.lower, node.slice.upper)]
            index: Any = slice(*parts)
        else:
            index = self.expr(node.slice, env)
        if isinstance(value, Modules):
            self.called.add(id(value))
            children = value.children[index]
            return Modules(children, sequential=value.sequential) if isinstance(index, slice) else children
        if isinstance(value, list | tuple | str | dict):
            try:
                return value[index]
            except (IndexError, KeyError, TypeError) as error:
                raise Refused(node, f"the index does not evaluate ({error})") from None
        raise Refused(node, "indexing a value only known at run time")


def _initialisation_loop(stmt: ast.For) -> bool:
    """``for m in self.modules(): nn.init...(m.weight)``: it sets values, never layers."""
    iterated = stmt.iter
    over_modules = (
        isinstance(iterated, ast.Call)
        and isinstance(iterated.func, ast.Attribute)
        and iterated.func.attr in INIT_ITERATORS
    )
    assigns = any(isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign) for n in ast.walk(stmt))
    return over_modules and not assigns


def _loaded(target: ast.expr) -> ast.expr:
    """The target of ``Y += X`` read as an expression (same locations, so notes name its line)."""
    copy = deepcopy(target)
    for node in ast.walk(copy):
        if hasattr(node, "ctx"):
            node.ctx = ast.Load()
    return copy


def _literals(env: dict[str, Any]) -> dict[str, Any]:
    """The names of ``env`` bound to literal values (an index may be one)."""
    return {k: v for k, v in env.items() if isinstance(v, bool | int | float | str | type(None))}
