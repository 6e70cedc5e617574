"""Custom layers: user-written nn.Module subclasses carried as source in the design.

This module reads custom code without running it: ``check_source`` refuses what a layer has no business doing
(imports other than torch and math, top-level statements, dunder and private attributes, file and code APIs)
and ``layer_signature`` reads the constructor's parameters for a form. Both use only ``ast``, so they are safe
in the Streamlit server and the CLI. Running custom code is the sandbox's job (``builder.sandbox``).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from builder.catalog import ParamKind, ParamSpec, catalog, param_spec
from builder.design import CustomLayerSpec, DesignError

MAX_SOURCE_CHARS = 50_000

# Modules a custom layer may import (each must already be imported by torch itself), and the names bound for it.
ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {"torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.linalg", "torch.fft", "torch.special",
     "torch.autograd", "math", "__future__"}
)  # fmt: skip
PREBOUND: tuple[str, ...] = ("torch", "nn", "F")
ALLOWED_DUNDERS: frozenset[str] = frozenset({"__init__", "__name__"})

# Builtins a custom layer may not name, and why.
DENIED_NAMES: dict[str, str] = {
    "open": "a layer cannot read or write files",
    "eval": "a layer cannot run code from strings",
    "exec": "a layer cannot run code from strings",
    "compile": "a layer cannot run code from strings",
    "__import__": "write `import torch` or `import math` at the top instead",
    "getattr": "write the attribute out (self.weight), not its name as a string",
    "setattr": "assign the attribute directly (self.weight = ...)",
    "delattr": "delete the attribute directly (del self.cache)",
    "hasattr": "write the attribute out; a layer knows its own attributes",
    "globals": "a layer cannot inspect the program's namespaces",
    "locals": "a layer cannot inspect the program's namespaces",
    "vars": "a layer cannot inspect objects' namespaces",
    "dir": "a layer cannot inspect objects' namespaces",
    "input": "a layer cannot wait for input",
    "breakpoint": "a layer cannot start a debugger",
    "help": "a layer cannot start the help system",
    "exit": "a layer cannot stop the program; raise an exception with a message instead",
    "quit": "a layer cannot stop the program; raise an exception with a message instead",
    "memoryview": "a layer works on tensors, not raw memory",
}

# Attribute names refused on any object, and why: torch APIs that touch files, compile code, load native code or
# reach outside the process, and Python internals that lead from an object to the interpreter.
FRAME_ATTRIBUTES: tuple[str, ...] = (
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "f_back",
    "f_globals", "f_locals", "f_builtins", "f_code", "tb_frame", "tb_next", "cell_contents",
)  # fmt: skip
MODULE_ATTRIBUTES: tuple[str, ...] = (
    "os", "sys", "subprocess", "builtins", "importlib", "shutil", "socket", "ctypes", "pickle", "io", "pathlib",
    "inspect", "signal", "resource", "threading", "tempfile", "glob", "warnings", "types",
)  # fmt: skip
DENIED_ATTRIBUTES: dict[str, str] = {
    **dict.fromkeys(("save", "load", "from_file", "fromfile", "tofile", "serialization"), "it reads or writes files"),
    **dict.fromkeys(("hub", "package", "onnx", "export", "profiler"), "it downloads, reads or writes files"),
    **dict.fromkeys(("ops", "classes", "library", "cpp_extension", "utils"), "it loads or registers native code"),
    **dict.fromkeys(("jit", "compile"), "it compiles code outside the layer"),
    **dict.fromkeys(("distributed", "multiprocessing"), "it starts processes or opens connections"),
    **dict.fromkeys(("share_memory_", "set_num_threads", "set_num_interop_threads"), "it changes the worker process"),
    "numpy": "it leaves torch (numpy arrays can write files); stay with tensors",
    **dict.fromkeys(("format", "format_map"), "it can read attributes by name; use an f-string instead"),
    "mro": "it leads from a class to the interpreter's internals",
    **dict.fromkeys(FRAME_ATTRIBUTES, "it leads from an object to the interpreter's frames"),
    **dict.fromkeys(MODULE_ATTRIBUTES, "it is a module a layer may not use"),
}
INTERNALS = "special names lead to the interpreter's internals"
ALLOWED_MODULES_HINT = (
    "custom layers may import only torch (with torch.nn, torch.nn.functional) and math; "
    "torch, nn and F are already there"
)


@dataclass(frozen=True)
class CodeProblem:
    """Something wrong with a custom layer's code: what, where, and what to change."""

    layer: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f", line {self.line}" if self.line else ""
        return f"custom layer {self.layer}{where}: {self.message}"


def define_trusted(specs: Iterable[CustomLayerSpec]) -> dict[str, type[nn.Module]]:
    """Define custom layer classes in this process, with ``torch``, ``nn`` and ``F`` bound as in D2L.

    Only for sources the user trusts (the CLI with ``--trust``, tests). Everything else goes through
    ``builder.sandbox``, which runs the code in a limited worker process.
    """
    classes: dict[str, type[nn.Module]] = {}
    for spec in specs:
        namespace: dict[str, object] = {"torch": torch, "nn": nn, "F": F, "__name__": f"custom_{spec.name}"}
        try:
            exec(compile(spec.source, f"<custom layer {spec.name}>", "exec"), namespace)  # noqa: S102 - trusted
        except SyntaxError as error:
            raise DesignError(f"custom layer {spec.name}: syntax error at line {error.lineno}: {error.msg}") from None
        cls = namespace.get(spec.name)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise DesignError(f"custom layer {spec.name}: the source must define class {spec.name}(nn.Module)")
        classes[spec.name] = cls
    return classes


def parse_source(source: str, name: str) -> ast.Module | CodeProblem:
    """The source's syntax tree, or the problem that stops it from parsing."""
    if len(source) > MAX_SOURCE_CHARS:
        size = f"the code is {len(source):,} characters long; keep a layer under {MAX_SOURCE_CHARS:,}"
        return CodeProblem(name, size)
    try:
        return ast.parse(source, filename=f"<custom layer {name}>")
    except SyntaxError as error:
        where = f", column {error.offset}" if error.offset else ""
        text = f" in `{error.text.strip()}`" if error.text and error.text.strip() else ""
        return CodeProblem(name, f"syntax error{where}: {error.msg}{text}", error.lineno)
    except (RecursionError, MemoryError):
        return CodeProblem(name, "the code is nested too deeply to read; split long expressions into steps")


def check_source(source: str, name: str) -> tuple[CodeProblem, ...]:
    """Every reason to refuse this source before running it (empty when it may run in the sandbox).

    The source must define ``class <name>`` deriving from ``nn.Module`` with a ``forward`` method; top-level code
    is limited to imports of allowed modules, classes, functions and constants; names and attributes that lead to
    files, code loading or the interpreter's internals are refused.
    """
    tree = parse_source(source, name)
    if isinstance(tree, CodeProblem):
        return (tree,)
    problems = [*_statement_problems(tree, name), *_node_problems(tree, name), *_class_problems(tree, name)]
    unique = {(p.line or 0, p.message): p for p in problems}
    return tuple(unique[key] for key in sorted(unique))


def require_valid(specs: Iterable[CustomLayerSpec]) -> None:
    """Raise DesignError with every problem of the first custom layer whose source ``check_source`` refuses."""
    for spec in specs:
        problems = check_source(spec.source, spec.name)
        if problems:
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise DesignError(f"{problems[0]}{more}")


def _is_constant(node: ast.expr | None) -> bool:
    if node is None:
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _allowed_statement(node: ast.stmt, in_class: bool) -> bool:
    """Statements that only define things: what may stand at the top level or in a class body."""
    if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Pass) or _is_docstring(node):
        return True
    if isinstance(node, ast.Import | ast.ImportFrom):
        return not in_class
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _is_constant(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and _is_constant(node.value)
    return False


def _statement_problems(tree: ast.Module, name: str) -> Iterator[CodeProblem]:
    bodies: list[tuple[list[ast.stmt], bool]] = [(tree.body, False)]
    while bodies:
        body, in_class = bodies.pop()
        for node in body:
            if isinstance(node, ast.ClassDef):
                bodies.append((node.body, True))
            if not _allowed_statement(node, in_class):
                place = "in a class body" if in_class else "at the top level"
                yield CodeProblem(
                    name,
                    f"only imports, classes, functions and constants may stand {place}; "
                    f"move this `{_snippet(node)}` into __init__ or forward",
                    node.lineno,
                )


def _snippet(node: ast.AST) -> str:
    try:
        text = ast.unparse(node).splitlines()[0]
    except (RecursionError, ValueError):
        return type(node).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _import_problems(node: ast.Import | ast.ImportFrom, name: str) -> Iterator[CodeProblem]:
    allowed = ALLOWED_MODULES_HINT
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name not in ALLOWED_IMPORTS:
                yield CodeProblem(name, f"`import {alias.name}` is not allowed: {allowed}", node.lineno)
        return
    module = node.module or ""
    if node.level or module not in ALLOWED_IMPORTS:
        yield CodeProblem(name, f"`from {'.' * node.level}{module} import ...` is not allowed: {allowed}", node.lineno)
        return
    for alias in node.names:
        if alias.name == "*":
            yield CodeProblem(name, f"`from {module} import *` is not allowed; import the names you use", node.lineno)
        elif module == "__future__" and alias.name != "annotations":
            yield CodeProblem(name, f"`from __future__ import {alias.name}` is not allowed", node.lineno)
        else:
            yield from _attribute_problem(alias.name, name, node.lineno, on_self=False)


def _attribute_problem(attr: str, name: str, line: int, on_self: bool) -> Iterator[CodeProblem]:
    if attr.startswith("__") and attr.endswith("__"):
        if attr not in ALLOWED_DUNDERS:
            yield CodeProblem(name, f"`{attr}` is not allowed: {INTERNALS}", line)
    elif attr.startswith("_") and not on_self:
        yield CodeProblem(name, f"`{attr}` is not allowed: a layer may use private attributes only of self", line)
    elif attr in DENIED_ATTRIBUTES:
        yield CodeProblem(name, f"`.{attr}` is not allowed: {DENIED_ATTRIBUTES[attr]}", line)


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _module_names(tree: ast.Module) -> set[str]:
    """Names that refer to modules: the pre-bound ones and every import alias."""
    names = set(PREBOUND) | {"math"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def _node_problems(tree: ast.Module, name: str) -> Iterator[CodeProblem]:
    modules = _module_names(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield from _import_problems(node, name)
        elif isinstance(node, ast.Name):
            yield from _name_problem(node.id, name, line)
        elif isinstance(node, ast.Attribute):
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            yield from _attribute_problem(node.attr, name, line, on_self)
            if isinstance(node.ctx, ast.Store | ast.Del) and _root_name(node.value) in modules:
                yield CodeProblem(name, f"`{_snippet(node)}` changes a module; a layer may change only itself", line)
        elif isinstance(node, ast.AsyncFunctionDef | ast.Await | ast.AsyncFor | ast.AsyncWith):
            yield CodeProblem(name, "async code is not allowed in a layer", line)


def _name_problem(identifier: str, name: str, line: int | None) -> Iterator[CodeProblem]:
    if identifier in DENIED_NAMES:
        yield CodeProblem(name, f"`{identifier}` is not available in custom layers: {DENIED_NAMES[identifier]}", line)
    elif identifier.startswith("__") and identifier != "__name__":
        yield CodeProblem(name, f"`{identifier}` is not allowed: {INTERNALS}", line)


def _find_class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)


def _class_problems(tree: ast.Module, name: str) -> Iterator[CodeProblem]:
    cls = _find_class(tree, name)
    if cls is None:
        found = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
        also = f" (it defines {', '.join(found)})" if found else ""
        yield CodeProblem(name, f"the code defines no class {name}{also}; write `class {name}(nn.Module):`")
        return
    if not cls.bases:
        hint = f"class {name} must derive from nn.Module: write `class {name}(nn.Module):`"
        yield CodeProblem(name, hint, cls.lineno)
    elif not _has_forward(tree, cls):
        yield CodeProblem(
            name,
            f"class {name} has no forward method; add `def forward(self, X):` returning the output tensor",
            cls.lineno,
        )


def _has_forward(tree: ast.Module, cls: ast.ClassDef, depth: int = 0) -> bool:
    """Whether the class or a base defines forward; bases outside the source other than nn.Module are trusted."""
    if any(isinstance(n, ast.FunctionDef) and n.name == "forward" for n in cls.body):
        return True
    for base in cls.bases:
        text = _snippet(base)
        local = _find_class(tree, text)
        if local is not None and depth < 20:
            if _has_forward(tree, local, depth + 1):
                return True
        elif text not in ("nn.Module", "torch.nn.Module", "Module"):
            return True
    return False


def layer_signature(source: str, name: str) -> list[ParamSpec]:
    """The parameters of ``name``'s constructor, read from the source without running it (for a form).

    Args:
        source: the custom layer's code.
        name: the class whose ``__init__`` to read.

    Returns:
        One ParamSpec per parameter after ``self`` (``*args``/``**kwargs`` left out), with the kind taken from the
        annotation or the default, as for built-in layers. A class without ``__init__`` that derives from a
        torch.nn layer gets that layer's parameters; one deriving from nn.Module takes none. A default that is not
        a literal (``act=nn.ReLU()``) leaves the parameter optional with no default shown.

    Raises:
        DesignError: the source does not parse or defines no class ``name``.
    """
    tree = parse_source(source, name)
    if isinstance(tree, CodeProblem):
        raise DesignError(str(tree))
    cls = _find_class(tree, name)
    if cls is None:
        raise DesignError(str(CodeProblem(name, f"the code defines no class {name}")))
    return _class_signature(tree, cls)


def _class_signature(tree: ast.Module, cls: ast.ClassDef, depth: int = 0) -> list[ParamSpec]:
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        return [_form_param(arg, default, kind) for arg, default, kind in _init_arguments(init)]
    for base in cls.bases:
        text = _snippet(base)
        local = _find_class(tree, text)
        if local is not None and local is not cls and depth < 20:
            return _class_signature(tree, local, depth + 1)
        entry = catalog().get(text.rsplit(".", 1)[-1])
        if entry is not None and text.startswith(("nn.", "torch.nn.")):
            return list(entry.params)
    return []


def _init_arguments(init: ast.FunctionDef) -> Iterator[tuple[ast.arg, ast.expr | None, inspect._ParameterKind]]:
    """(argument, default expression, parameter kind) after ``self``, in signature order."""
    args = init.args
    positional = [*args.posonlyargs, *args.args][1:]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    defaults = defaults[-len(positional) :] if positional else []
    for arg, default in zip(positional, defaults, strict=True):
        yield arg, default, inspect.Parameter.POSITIONAL_OR_KEYWORD
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        yield arg, default, inspect.Parameter.KEYWORD_ONLY


def _form_param(arg: ast.arg, default: ast.expr | None, kind: inspect._ParameterKind) -> ParamSpec:
    annotation: Any = inspect.Parameter.empty
    if arg.annotation is not None:
        annotation = _snippet(arg.annotation).strip("'\"")
    if default is None:
        value: Any = inspect.Parameter.empty
    elif _is_constant(default):
        value = ast.literal_eval(default)
    else:
        spec = param_spec("", inspect.Parameter(arg.arg, kind, default=None, annotation=annotation))
        return replace(spec, default=None, optional=False, kind=spec.kind if annotation else ParamKind.ANY)
    value = list(value) if isinstance(value, tuple) else value
    return param_spec("", inspect.Parameter(arg.arg, kind, default=value, annotation=annotation))
