"""The restricted namespace custom code runs in, enforced at run time in the job process.

Independent of the static check (it holds when that check is switched off):

- ``compile_restricted`` rewrites every attribute read ``a.b`` into ``_sandbox_attr_(a, "b")`` and refuses, at
  compile time, what no rewrite can guard: ``match`` (its class patterns read attributes by name inside the
  interpreter), ``global``/``nonlocal``, dunder names wherever an identifier stands, and stores to dunder or private
  attributes of anything but ``self``;
- ``guarded_attribute`` refuses dunder attributes (``__globals__``, ``__closure__``, ``__subclasses__``...), private
  attributes of anything but a layer, and the denied attributes (``format``, frames, file APIs), and never hands
  out a raw module;
- ``SafeModule`` is a read-only view of an allowed module that offers only the module's allowlist
  (``builder.sandbox.policy``), so no function that returns a raw module or reads attributes by name is reachable;
- the builtins are a short allowlist with a guarded ``__import__``.
"""

from __future__ import annotations

import ast
import builtins
import sys
import types
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from builder.sandbox.policy import (
    ALLOWED_IMPORTS,
    DEFINABLE_DUNDERS,
    INTERNALS,
    RESERVED_PREFIX,
    attribute_refusal,
    is_dunder,
    module_refusal,
)

ATTRIBUTE_GUARD = "_sandbox_attr_"
SAFE_BUILTIN_NAMES: tuple[str, ...] = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "classmethod",
    "complex", "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "id",
    "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct",
    "ord", "pow", "print", "property", "range", "repr", "reversed", "round", "set", "slice", "sorted",
    "staticmethod", "str", "sum", "super", "tuple", "type", "zip", "NotImplemented", "Ellipsis", "__build_class__",
)  # fmt: skip


class SandboxRefusal(PermissionError):
    """Custom code tried something the sandbox refuses at run time."""


class SafeModule:
    """A read-only view of an allowed module: only the attributes on its allowlist."""

    __slots__ = ("_SafeModule__module",)

    def __init__(self, module: types.ModuleType) -> None:
        object.__setattr__(self, "_SafeModule__module", module)

    def __getattribute__(self, name: str) -> Any:
        return module_attribute(object.__getattribute__(self, "_SafeModule__module"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise SandboxRefusal(f"modules are read-only in custom layers; cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise SandboxRefusal(f"modules are read-only in custom layers; cannot delete {name}")

    def __repr__(self) -> str:
        return f"<module {object.__getattribute__(self, '_SafeModule__module').__name__!r}>"


def module_attribute(module: types.ModuleType, name: str) -> Any:
    """``module.name`` as custom code may see it: allowlisted names only, submodules as SafeModules."""
    refusal = module_refusal(module.__name__, name) if isinstance(name, str) else "names are text"
    if refusal:
        raise SandboxRefusal(refusal)
    return _safe_value(getattr(module, name))


def _safe_value(value: Any) -> Any:
    if issubclass(type(value), types.ModuleType):
        if value.__name__ not in ALLOWED_IMPORTS:
            raise SandboxRefusal(f"the module {value.__name__} is not available in custom layers")
        return SafeModule(value)
    return value


def guarded_attribute(obj: Any, name: str) -> Any:
    """``obj.name`` for custom code: dunders, others' private attributes and denied names are refused."""
    private_ok = issubclass(type(obj), nn.Module)
    refusal = attribute_refusal(name, private_ok=private_ok)
    if refusal:
        raise SandboxRefusal(refusal)
    return _safe_value(getattr(obj, name))


def guarded_import(
    name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
) -> SafeModule:
    """``__import__`` for custom code: only allowed modules that torch has already imported."""
    if level or name not in ALLOWED_IMPORTS or name not in sys.modules:
        raise ImportError(f"import {name} is not allowed: custom layers may import only torch and math")
    return SafeModule(sys.modules[name if fromlist else name.partition(".")[0]])


def safe_builtins() -> dict[str, Any]:
    """The builtins custom code sees: a short allowlist, the exception classes, the guards."""
    names = list(SAFE_BUILTIN_NAMES)
    names += [n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)]
    chosen = {name: getattr(builtins, name) for name in names}
    return chosen | {"__import__": guarded_import, ATTRIBUTE_GUARD: guarded_attribute}


def namespace(module_name: str) -> dict[str, Any]:
    """A fresh global namespace for one custom layer's code, with ``torch``, ``nn`` and ``F`` bound."""
    return {
        "__builtins__": safe_builtins(),
        "__name__": module_name,
        "torch": SafeModule(torch),
        "nn": SafeModule(nn),
        "F": SafeModule(F),
    }


# ---------------------------------------------------------------------------------------------------------------
# The rewrite


class RestrictedCodeError(SyntaxError):
    """Code the rewrite refuses; ``lineno`` says where."""


class _Rewrite(ast.NodeTransformer):
    """Guard attribute reads; refuse what no guard can hold."""

    def refuse(self, node: ast.AST, message: str) -> None:
        raise RestrictedCodeError(message, ("", getattr(node, "lineno", None), 0, ""))

    def check_identifier(self, node: ast.AST, identifier: str | None, definable: bool = False) -> None:
        if identifier is None:
            return
        if identifier.startswith(RESERVED_PREFIX):
            self.refuse(node, f"`{identifier}` is reserved for the sandbox")
        may_define = definable and is_dunder(identifier) and identifier in DEFINABLE_DUNDERS
        if identifier.startswith("__") and identifier != "__name__" and not may_define:
            self.refuse(node, f"`{identifier}` is not allowed: {INTERNALS}")

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            call = ast.Call(ast.Name(ATTRIBUTE_GUARD, ast.Load()), [node.value, ast.Constant(node.attr)], [])
            return ast.copy_location(call, node)
        on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        if node.attr.startswith("__") or (node.attr.startswith("_") and not on_self):
            self.refuse(node, f"`{node.attr}` cannot be set or deleted: a layer may change only its own attributes")
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        self.check_identifier(node, node.id)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.check_identifier(node, node.name, definable=True)
        return self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.check_identifier(node, node.name)
        return self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        self.check_identifier(node, node.arg)
        return self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> ast.AST:
        self.check_identifier(node, node.arg)
        return self.generic_visit(node)

    def visit_alias(self, node: ast.alias) -> ast.AST:
        self.check_identifier(node, node.asname)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        self.check_identifier(node, node.name)
        return self.generic_visit(node)

    def visit_Match(self, node: ast.Match) -> ast.AST:
        self.refuse(node, "`match` is not allowed in a layer: its patterns read attributes by name")
        return node

    def visit_Global(self, node: ast.Global) -> ast.AST:
        self.refuse(node, "`global` is not allowed in a layer")
        return node

    def visit_Nonlocal(self, node: ast.Nonlocal) -> ast.AST:
        self.refuse(node, "`nonlocal` is not allowed in a layer")
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        self.refuse(node, "async code is not allowed in a layer")
        return node


def compile_restricted(source: str, filename: str) -> types.CodeType:
    """Compile custom code with every attribute read guarded.

    Raises:
        SyntaxError: the code does not parse, or (RestrictedCodeError) holds what the sandbox refuses.
    """
    tree = _Rewrite().visit(ast.parse(source, filename=filename))
    return compile(ast.fix_missing_locations(tree), filename, "exec")
