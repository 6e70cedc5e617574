"""Reading the syntax tree: dotted names, imports and aliases, the parameters of a def, assignments."""

from __future__ import annotations

import ast
from collections.abc import Callable

NN = "torch.nn"
FUNCTIONAL = "torch.nn.functional"
# Names a paste may use without importing them (D2L's snippets assume `from torch import nn`).
DEFAULT_ALIASES: dict[str, str] = {"torch": "torch", "nn": NN, "F": FUNCTIONAL}

COMPOUND = (ast.ClassDef, ast.FunctionDef, ast.For, ast.While, ast.If, ast.With, ast.Try)


def _dotted(node: ast.AST) -> str | None:
    """``self.hidden_dim`` or ``nn.Linear`` as text, for a chain of names and attributes."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def read_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> qualified name for every import of the pasted code (``nn`` -> ``torch.nn``)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    aliases[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name != "*":
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _star_imports(tree: ast.Module) -> list[str]:
    return [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.names[0].name == "*"]


def _module_bases(cls: ast.ClassDef, resolve: Callable[[ast.AST], str | None], known: set[str]) -> bool:
    for base in cls.bases:
        name = resolve(base)
        if name and (name.startswith(f"{NN}.") or name in known):
            return True
    return False


def _first_name(target: ast.expr) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Tuple) and target.elts and isinstance(target.elts[0], ast.Name):
        return target.elts[0].id
    return None


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    return next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == name), None)


def _init_names(init: ast.FunctionDef) -> tuple[str, ...]:
    return tuple(a.arg for a in [*init.args.posonlyargs, *init.args.args][1:])


def _init_defaults(init: ast.FunctionDef) -> dict[str, ast.expr | None]:
    """Every named parameter of __init__ after self, with its default expression (None when it has none)."""
    return _function_defaults(init, skip=1)


def _function_defaults(func: ast.FunctionDef, skip: int = 0) -> dict[str, ast.expr | None]:
    positional = [*func.args.posonlyargs, *func.args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(func.args.defaults)) + list(func.args.defaults)
    named = {a.arg: d for a, d in zip(positional, defaults, strict=True)}
    named |= {a.arg: d for a, d in zip(func.args.kwonlyargs, func.args.kw_defaults, strict=True)}
    return dict(list(named.items())[skip:])


def _assigned_name(stmt: ast.stmt) -> str | None:
    """The name of ``name = ...`` or ``name: T = ...``; None for any other statement."""
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
    return targets[0].id if len(targets) == 1 and isinstance(targets[0], ast.Name) else None
