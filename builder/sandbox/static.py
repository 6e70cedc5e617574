"""The static check: read custom layer code with ``ast`` and refuse it before anything runs.

Every place where the syntax tree carries an identifier as a string (``IDENTIFIER_FIELDS``) is checked the way
names and attributes are: a name bound or read, an attribute, a keyword argument, a parameter, an import alias, an
exception variable, a function or class name. Constructs a layer never needs and that read attributes by name out
of sight of the check (``match``, ``global``, ``nonlocal``) are refused whole. ``self`` is the first parameter of a
method and is never rebound, so "private attributes only of self" cannot be turned on something else.

The runtime layers in the job process (``builder.sandbox.restrict``, the audit hook, seccomp, the jail) hold even
when this check is switched off; this one exists to say what is wrong, with the line, before anything runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from builder.design import MAX_SOURCE_CHARS, CustomLayerSpec, DesignError
from builder.sandbox.policy import (
    ALLOWED_IMPORTS,
    ALLOWED_MODULES_HINT,
    DEFINABLE_DUNDERS,
    DENIED_NAMES,
    INTERNALS,
    PREBOUND,
    RESERVED_PREFIX,
    attribute_refusal,
    is_dunder,
    module_refusal,
)

# Every (node type, field) of Python's syntax tree that holds an identifier as a string, and how it is checked.
IDENTIFIER_FIELDS: dict[tuple[str, str], str] = {
    ("Name", "id"): "name",
    ("Attribute", "attr"): "attribute",
    ("FunctionDef", "name"): "definition",
    ("AsyncFunctionDef", "name"): "refused",
    ("ClassDef", "name"): "definition",
    ("ImportFrom", "module"): "import",
    ("alias", "name"): "import",
    ("alias", "asname"): "binding",
    ("Global", "names"): "refused",
    ("Nonlocal", "names"): "refused",
    ("ExceptHandler", "name"): "binding",
    ("arg", "arg"): "parameter",
    ("keyword", "arg"): "keyword",
    ("MatchMapping", "rest"): "refused",
    ("MatchClass", "kwd_attrs"): "refused",
    ("MatchStar", "name"): "refused",
    ("MatchAs", "name"): "refused",
    ("TypeVar", "name"): "refused",  # Python 3.12's type parameters
    ("ParamSpec", "name"): "refused",
    ("TypeVarTuple", "name"): "refused",
}
REFUSED_NODES: dict[type[ast.AST], str] = {
    ast.Match: "`match` is not allowed in a layer: its patterns read attributes by name; use if/elif",
    ast.Global: "`global` is not allowed in a layer: keep state in self",
    ast.Nonlocal: "`nonlocal` is not allowed in a layer: keep state in self",
    ast.AsyncFunctionDef: "async code is not allowed in a layer",
    ast.Await: "async code is not allowed in a layer",
    ast.AsyncFor: "async code is not allowed in a layer",
    ast.AsyncWith: "async code is not allowed in a layer",
}
SELF_REBOUND = "`self` may only be the first parameter of a method; name this something else"


@dataclass(frozen=True)
class CodeProblem:
    """Something wrong with a custom layer's code: what, where, and what to change."""

    layer: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f", line {self.line}" if self.line else ""
        return f"custom layer {self.layer}{where}: {self.message}"


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
    except (RecursionError, MemoryError, ValueError):
        return CodeProblem(name, "the code is nested too deeply to read; split long expressions into steps")


def check_source(source: str, name: str) -> tuple[CodeProblem, ...]:
    """Every reason to refuse this source before running it (empty when it may run in the sandbox).

    The source must define ``class <name>`` deriving from ``nn.Module`` with a ``forward`` method; top-level code
    is limited to imports of allowed modules, classes, functions and constants; identifiers that lead to files,
    code loading or the interpreter's internals are refused wherever they stand; module attributes must be on the
    module's allowlist.
    """
    tree = parse_source(source, name)
    if isinstance(tree, CodeProblem):
        return (tree,)
    try:
        problems = [*_statement_problems(tree, name), *_Checker(tree, name).problems(), *_class_problems(tree, name)]
    except RecursionError:
        return (CodeProblem(name, "the code is nested too deeply to read; split long expressions into steps"),)
    unique = {(p.line or 0, p.message): p for p in problems}
    return tuple(unique[key] for key in sorted(unique))


def require_valid(specs: Iterable[CustomLayerSpec]) -> None:
    """Raise DesignError with every problem of the first custom layer whose source ``check_source`` refuses."""
    for spec in specs:
        problems = check_source(spec.source, spec.name)
        if problems:
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise DesignError(f"{problems[0]}{more}")


def snippet(node: ast.AST) -> str:
    """The first line of a node's source, shortened for a message."""
    try:
        text = ast.unparse(node).splitlines()[0]
    except (RecursionError, ValueError, IndexError):
        return type(node).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def is_constant(node: ast.expr | None) -> bool:
    """Whether the expression is a literal (so evaluating it runs nothing)."""
    if node is None:
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def find_class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)


# ---------------------------------------------------------------------------------------------------------------
# Statements


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _allowed_statement(node: ast.stmt, in_class: bool) -> bool:
    """Statements that only define things: what may stand at the top level or in a class body."""
    if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Pass) or _is_docstring(node):
        return True
    if isinstance(node, ast.Import | ast.ImportFrom):
        return not in_class
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and is_constant(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and is_constant(node.value)
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
                    f"move this `{snippet(node)}` into __init__ or forward",
                    node.lineno,
                )


# ---------------------------------------------------------------------------------------------------------------
# Identifiers


def _self_parameters(tree: ast.Module) -> set[int]:
    """The ``ast.arg`` nodes (by id) that are a method's first parameter: the only place ``self`` may be bound."""
    found: set[int] = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for method in cls.body:
            if not isinstance(method, ast.FunctionDef):
                continue
            decorators = {snippet(d) for d in method.decorator_list}
            positional = [*method.args.posonlyargs, *method.args.args]
            if positional and not decorators & {"staticmethod", "classmethod"}:
                found.add(id(positional[0]))
    return found


def _module_aliases(tree: ast.Module) -> dict[str, str]:
    """Names bound to allowed modules: the pre-bound ones and every import of one."""
    aliases = dict(zip(PREBOUND, ("torch", "torch.nn", "torch.nn.functional"), strict=True))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ALLOWED_IMPORTS:
                    bound = alias.asname or alias.name.split(".")[0]
                    aliases[bound] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module in ALLOWED_IMPORTS:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in ALLOWED_IMPORTS:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


class _Checker:
    """One pass over the tree, checking every identifier-carrying field (``IDENTIFIER_FIELDS``)."""

    def __init__(self, tree: ast.Module, layer: str) -> None:
        self.tree = tree
        self.layer = layer
        self.self_params = _self_parameters(tree)
        self.modules = _module_aliases(tree)
        self.import_of = {
            id(alias): n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for alias in n.names
        }

    def problems(self) -> Iterator[CodeProblem]:
        for node in ast.walk(self.tree):
            line = getattr(node, "lineno", None)
            refused = REFUSED_NODES.get(type(node))
            if refused:
                yield self.problem(refused, line)
            if isinstance(node, ast.ImportFrom) and node.module is None:
                yield self.problem(next(_import_from_problems(node)), line)
            for message in self.identifier_problems(node):
                yield self.problem(message, line)

    def problem(self, message: str, line: int | None) -> CodeProblem:
        return CodeProblem(self.layer, message, line)

    def identifier_problems(self, node: ast.AST) -> Iterator[str]:
        kind = type(node).__name__
        for field_name in node._fields:
            rule = IDENTIFIER_FIELDS.get((kind, field_name))
            if rule is None:
                continue
            value = getattr(node, field_name, None)
            for identifier in value if isinstance(value, list) else [value]:
                if isinstance(identifier, str):
                    yield from self.check(rule, node, identifier)

    def check(self, rule: str, node: ast.AST, identifier: str) -> Iterator[str]:
        if identifier.startswith(RESERVED_PREFIX):
            yield f"`{identifier}` is reserved for the sandbox; choose another name"
        elif rule == "name":
            yield from self.name(node, identifier)
        elif rule == "attribute":
            yield from self.attribute(node, identifier)
        elif rule == "definition":
            yield from self.definition(identifier)
        elif rule == "import":
            yield from self.imported(node, identifier)
        elif rule == "binding":
            yield from self.binding(identifier)
        elif rule == "parameter":
            yield from self.parameter(node, identifier)
        elif rule == "keyword" and is_dunder(identifier):
            yield f"keyword `{identifier}` is not allowed: {INTERNALS}"
        elif rule == "refused" and is_dunder(identifier):
            yield f"`{identifier}` is not allowed: {INTERNALS}"

    def name(self, node: ast.AST, identifier: str) -> Iterator[str]:
        if identifier in DENIED_NAMES:
            yield f"`{identifier}` is not available in custom layers: {DENIED_NAMES[identifier]}"
        elif identifier.startswith("__") and identifier != "__name__":
            yield f"`{identifier}` is not allowed: {INTERNALS}"
        elif identifier == "self" and isinstance(getattr(node, "ctx", None), ast.Store | ast.Del):
            yield SELF_REBOUND

    def attribute(self, node: ast.AST, identifier: str) -> Iterator[str]:
        assert isinstance(node, ast.Attribute)
        on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        refusal = attribute_refusal(identifier, private_ok=on_self)
        if refusal:
            yield refusal
            return
        if isinstance(node.ctx, ast.Store | ast.Del) and _root_name(node.value) in self.modules:
            yield f"`{snippet(node)}` changes a module; a layer may change only itself"
            return
        module = self.module_of(node.value)
        if module is not None:
            refusal = module_refusal(module, identifier)
            if refusal:
                yield refusal
            elif isinstance(node.ctx, ast.Store | ast.Del):
                yield f"`{snippet(node)}` changes a module; a layer may change only itself"

    def module_of(self, node: ast.expr) -> str | None:
        """The allowed module an expression names (``torch``, ``nn``, ``torch.nn.functional``), else None."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id)
        if isinstance(node, ast.Attribute):
            parent = self.module_of(node.value)
            dotted = f"{parent}.{node.attr}" if parent else None
            if dotted in ALLOWED_IMPORTS:
                return dotted
            if parent == "torch" and node.attr == "nn":
                return "torch.nn"
            if parent == "torch.nn" and node.attr == "functional":
                return "torch.nn.functional"
        return None

    def definition(self, identifier: str) -> Iterator[str]:
        if is_dunder(identifier) and identifier not in DEFINABLE_DUNDERS:
            yield f"defining `{identifier}` is not allowed: {INTERNALS}"
        elif identifier == "self":
            yield SELF_REBOUND

    def binding(self, identifier: str) -> Iterator[str]:
        if identifier == "self":
            yield SELF_REBOUND
        elif identifier in DENIED_NAMES:
            yield f"`{identifier}` is not available in custom layers: {DENIED_NAMES[identifier]}"
        elif identifier.startswith("__"):
            yield f"`{identifier}` is not allowed: {INTERNALS}"

    def parameter(self, node: ast.AST, identifier: str) -> Iterator[str]:
        if identifier == "self" and id(node) not in self.self_params:
            yield SELF_REBOUND
        elif identifier.startswith("__") or identifier in DENIED_NAMES:
            yield from self.binding(identifier)

    def imported(self, node: ast.AST, identifier: str) -> Iterator[str]:
        if isinstance(node, ast.ImportFrom):
            yield from _import_from_problems(node)
        elif isinstance(node, ast.alias):
            parent = self.import_of.get(id(node))
            if isinstance(parent, ast.Import) and identifier not in ALLOWED_IMPORTS:
                yield f"`import {identifier}` is not allowed: {ALLOWED_MODULES_HINT}"
            elif isinstance(parent, ast.ImportFrom):
                yield from _imported_name_problems(parent, identifier)


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _import_from_problems(node: ast.ImportFrom) -> Iterator[str]:
    module = node.module or ""
    if node.level or module not in ALLOWED_IMPORTS:
        yield f"`from {'.' * node.level}{module} import ...` is not allowed: {ALLOWED_MODULES_HINT}"


def _imported_name_problems(node: ast.ImportFrom, identifier: str) -> Iterator[str]:
    module = node.module or ""
    if node.level or module not in ALLOWED_IMPORTS:
        return  # said once for the statement
    if identifier == "*":
        yield f"`from {module} import *` is not allowed; import the names you use"
    elif module == "__future__" and identifier != "annotations":
        yield f"`from __future__ import {identifier}` is not allowed"
    elif f"{module}.{identifier}" not in ALLOWED_IMPORTS:
        refusal = attribute_refusal(identifier, private_ok=False) or module_refusal(module, identifier)
        if refusal:
            yield refusal


# ---------------------------------------------------------------------------------------------------------------
# The class


def _class_problems(tree: ast.Module, name: str) -> Iterator[CodeProblem]:
    cls = find_class(tree, name)
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
        text = snippet(base)
        local = find_class(tree, text)
        if local is not None and depth < 20:
            if _has_forward(tree, local, depth + 1):
                return True
        elif text not in ("nn.Module", "torch.nn.Module", "Module"):
            return True
    return False
