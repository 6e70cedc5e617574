"""The paste's classes and functions during one abstract evaluation: their methods, bases and class attributes."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from builder.importer.values import ClassRef, Function, Refused

if TYPE_CHECKING:
    from builder.importer.reader import Importer


class Definitions:
    """Where a method or a base of a pasted class is found; the state lives in the evaluator using this."""

    importer: Importer
    globals: dict[str, Any]
    methods: dict[str, dict[str, ast.FunctionDef]]
    class_attrs: dict[str, dict[str, Any]]

    def expr(self, node: ast.expr, env: dict[str, Any]) -> Any:  # the evaluator's
        raise NotImplementedError

    def define(self, stmt: ast.stmt) -> bool:
        """Register a class or function (``@d2l.add_to_class(C)`` attaches it to C); True when it was one."""
        if isinstance(stmt, ast.ClassDef):
            self.globals[stmt.name] = ClassRef(stmt.name)
            self.methods.setdefault(stmt.name, {})
            self.methods[stmt.name] |= {n.name: n for n in stmt.body if isinstance(n, ast.FunctionDef)}
            self.class_attrs[stmt.name] = self._class_attributes(stmt)
            return True
        if isinstance(stmt, ast.FunctionDef):
            owner = self._added_to(stmt)
            if owner is None:
                self.globals[stmt.name] = Function(stmt)
            elif owner in self.importer.classes:
                self.methods.setdefault(owner, {})[stmt.name] = stmt
            return True
        return False

    def _added_to(self, func: ast.FunctionDef) -> str | None:
        for decorator in func.decorator_list:
            if isinstance(decorator, ast.Call) and (self.importer.resolve(decorator.func) or "").endswith(
                "add_to_class"
            ):
                target = decorator.args[0] if decorator.args else None
                return ast.unparse(target) if target is not None else ""
        return None

    def _class_attributes(self, cls: ast.ClassDef) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                try:
                    attrs[stmt.targets[0].id] = self.expr(stmt.value, {})
                except Refused:
                    continue
        return attrs

    def base_of(self, name: str) -> str | None:
        """The pasted class ``name`` derives from, if any."""
        cls = self.importer.classes.get(name)
        for base in cls.bases if cls else []:
            if isinstance(base, ast.Name) and base.id in self.importer.classes:
                return base.id
        return None

    def outside_base(self, name: str) -> str | None:
        """The qualified name of the first base of pasted class ``name`` when that base is not pasted."""
        cls = self.importer.classes.get(name)
        bases = [self.importer._base_name(b) for b in cls.bases] if cls else []
        return next((b for b in bases if b and b not in self.importer.classes), None)

    def method(self, cls: str, name: str) -> tuple[ast.FunctionDef, str] | None:
        """The method and the class defining it, searching the pasted bases."""
        seen: set[str] = set()
        current: str | None = cls
        while current is not None and current not in seen:
            seen.add(current)
            found = self.methods.get(current, {}).get(name)
            if found is not None:
                return found, current
            current = self.base_of(current)
        return None


def imported_from(tree: ast.Module, name: str) -> str:
    """``MLP, imported from ..ops.misc`` when an import of the paste names it; else just the name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            return f"{name}, imported from {'.' * node.level}{node.module or ''}"
    return name
