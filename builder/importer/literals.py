"""Literal values of the pasted code: constants, tuples, names bound to literals, bounded arithmetic."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from builder.importer.notes import NotLiteral
from builder.importer.syntax import _assigned_name, _dotted

BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
MAX_MAGNITUDE = 10**15  # no layer size comes near it; larger results are refused rather than computed


@dataclass
class Scope:
    """Names bound in the pasted code: literal values, and expressions that build modules."""

    values: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, tuple[ast.expr, Scope]] = field(default_factory=dict)
    parent: Scope | None = None

    def child(self) -> Scope:
        return Scope(parent=self)

    def copy(self) -> Scope:
        return Scope(dict(self.values), dict(self.modules), self.parent)

    def value(self, name: str) -> Any:
        """The literal bound to ``name``; KeyError when there is none."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values:
                return scope.values[name]
            if name in scope.modules:
                raise KeyError(name)
            scope = scope.parent
        raise KeyError(name)

    def module(self, name: str) -> tuple[ast.expr, Scope] | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.modules:
                return scope.modules[name]
            if name in scope.values:
                return None
            scope = scope.parent
        return None


def _arith(node: ast.BinOp, left: Any, right: Any) -> Any:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
    op = BINARY.get(type(node.op))
    if not numbers or op is None:
        raise NotLiteral(node, "only arithmetic on numbers is evaluated")
    if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > MAX_MAGNITUDE):
        raise NotLiteral(node, "the power is too large to evaluate")
    try:
        result = op(left, right)
    except (ArithmeticError, ValueError) as error:
        raise NotLiteral(node, f"it does not evaluate ({error})") from None
    if isinstance(result, complex) or abs(result) > MAX_MAGNITUDE:
        raise NotLiteral(node, "the result is out of range for a layer argument")
    return result


def literal(node: ast.AST, scope: Scope) -> Any:
    """The value of a literal expression: constants, tuples and lists, names bound to literals, arithmetic."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool | int | float | str | type(None)):
            return node.value
        raise NotLiteral(node, f"a {type(node.value).__name__} is not a layer argument")
    if isinstance(node, ast.Tuple | ast.List):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            raise NotLiteral(node, "a starred item is only expanded when the code runs")
        return [literal(e, scope) for e in node.elts]
    if isinstance(node, ast.UnaryOp):
        value = literal(node.operand, scope)
        if isinstance(node.op, ast.Not) and isinstance(value, bool):
            return not value
        if isinstance(node.op, ast.USub | ast.UAdd) and isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
        raise NotLiteral(node, "only the sign of a number is evaluated")
    if isinstance(node, ast.BinOp):
        return _arith(node, literal(node.left, scope), literal(node.right, scope))
    name = _dotted(node)
    if name is not None:
        try:
            return scope.value(name)
        except KeyError:
            raise NotLiteral(node, f"`{name}` is not bound to a literal value in the pasted code") from None
    raise NotLiteral(node, "its value is only known when the code runs")


def _json_ready(value: Any) -> Any:
    """Tuples become lists, as a design file stores them."""
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


def _is_minus_one(node: ast.expr) -> bool:
    try:
        return literal(node, Scope()) == -1
    except NotLiteral:
        return False


def _bind_statement(stmt: ast.stmt, scope: Scope) -> None:
    """Record `name = literal` and `name = <call>` for later look-ups; other statements change nothing here."""
    name = _assigned_name(stmt)
    value = getattr(stmt, "value", None)
    if name is None or value is None:
        return
    try:
        scope.values[name] = literal(value, scope)
        scope.modules.pop(name, None)
    except NotLiteral:
        scope.values.pop(name, None)
        if isinstance(value, ast.Call | ast.Name | ast.Attribute):
            scope.modules[name] = (value, scope.copy())
