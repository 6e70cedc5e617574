"""Which model the paste builds, read by abstract evaluation of its top level.

The model is the one the code instantiates at the top level: the last ``net = ...``/``model = ...`` or
``Cls(...).layer_summary(...)``, else the last instantiation of any kind. A helper function or class the paste's
other definitions use is never taken for the model. With nothing instantiated, a single unused class or function
is the model; several are listed as candidates for the user to pick.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from builder.catalog import catalog
from builder.design import Entry
from builder.importer import flow
from builder.importer.evaluate import Evaluator
from builder.importer.models import MODEL_METHODS, _model_core, _module_statements, _returns_model
from builder.importer.syntax import NN, _assigned_name
from builder.importer.values import ClassRef, Function, Instance, Opaque, Refused

if TYPE_CHECKING:
    from builder.importer.reader import Importer

MODEL_NAME = re.compile(r"net|model", re.IGNORECASE)  # net, model, resnet, my_model
SUMMARY = "layer_summary"
REFUSED = "is refused as a whole, nothing of it is guessed"


@dataclass
class Evaluated:
    """The model read by evaluation: where it is built, its entries, the input it is summarised with."""

    where: ast.AST
    entries: list[Entry] = field(default_factory=list)
    shape: tuple[int, ...] | None = None
    data_shape: tuple[int, ...] | None = None  # the book's data set, used when the code feeds the model nothing
    candidates: tuple[str, ...] = ()  # when several definitions could be the model and none is built


@dataclass
class _Built:
    stmt: ast.stmt
    expr: ast.expr
    preferred: bool  # bound to net/model, or summarised with layer_summary


def evaluate_model(importer: Importer, pick: str | None = None) -> Evaluated:
    """Evaluate the paste's top level and read the model it builds (or the definition named ``pick``)."""
    ev = Evaluator(importer)
    built: list[_Built] = []
    for stmt in _module_statements(importer.tree):
        if ev.define(stmt) or isinstance(stmt, ast.Import | ast.ImportFrom):
            continue
        expr = _model_expression(importer, stmt)
        if expr is not None:
            built.append(_Built(stmt, expr, _preferred(stmt)))
        _run_toplevel(ev, stmt)
    if pick is not None:
        return _definition(ev, pick, importer)
    if built:
        chosen = ([b for b in built if b.preferred] or built)[-1]
        return _read(ev, chosen.stmt, lambda: ev.expr(chosen.expr, {}))
    options = candidate_definitions(importer, ev)
    if len(options) == 1:
        return _definition(ev, options[0], importer)
    if options:
        importer.note(
            importer.tree.body[0] if importer.tree.body else importer.tree,
            f"the code builds no model at the top level and defines several that could be one: {', '.join(options)}; "
            "pick one (or add `model = <Name>(...)` at the end)",
        )
    return Evaluated(importer.tree, candidates=tuple(options))


def _run_toplevel(ev: Evaluator, stmt: ast.stmt) -> None:
    """Evaluate one top-level statement; what cannot be followed binds its names to an opaque value."""
    try:
        ev.statement(stmt, ev.globals)
    except Refused as refused:
        for target in _targets(stmt):
            ev.globals[target] = Opaque(refused.node, refused.why)
    except RecursionError:
        for target in _targets(stmt):
            ev.globals[target] = Opaque(stmt, "the code nests too deeply to be read")


def _targets(stmt: ast.stmt) -> list[str]:
    nodes = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return [n.id for t in nodes if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)]


def _model_expression(importer: Importer, stmt: ast.stmt) -> ast.expr | None:
    """The expression building a model in ``net = Model(...)``, ``Model().layer_summary(...)``; else None."""
    value = getattr(stmt, "value", None) if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.Expr) else None
    while (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in (*MODEL_METHODS, SUMMARY)
    ):
        value = value.func.value
    if not isinstance(value, ast.Call):
        return None
    callee = importer.resolve(value.func) or ""
    short = callee.rsplit(".", 1)[-1]
    layer = callee.startswith(f"{NN}.") and (short in catalog() or short == "Sequential")
    builds = callee in importer.classes or (callee in importer.functions and _may_build(importer, callee))
    return value if layer or builds else None


def _preferred(stmt: ast.stmt) -> bool:
    name = _assigned_name(stmt)
    if name is not None:
        return MODEL_NAME.search(name) is not None
    call = getattr(stmt, "value", None)
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == SUMMARY


def _read(ev: Evaluator, where: ast.AST, build: Any) -> Evaluated:
    """Build the model value and read its entries; a refusal becomes a note on its line, nothing imported."""
    importer = ev.importer
    try:
        value = build()
        if isinstance(value, Opaque):
            raise Refused(value.node, value.why)
        ev.model = value
        entries = flow.repeated(flow.module_entries(ev, value, where))
    except Refused as refused:
        owner = _owner(importer, refused.node)
        importer.note(refused.node, f"{refused.why}; {owner} {REFUSED}")
        return Evaluated(where)
    except RecursionError:
        importer.note(where, "the code nests too deeply to be read; not imported")
        return Evaluated(where)
    shape = None
    if isinstance(value, Instance) and value.cls in ev.summaries:
        shape, node = ev.summaries[value.cls]
        importer.info(node, f"input shape {shape} taken from layer_summary")
    return Evaluated(where, entries, shape, ev.dataset[0] if ev.dataset else None)


def _owner(importer: Importer, node: ast.AST) -> str:
    line = getattr(node, "lineno", 0)
    for definition in importer.tree.body:
        inside = definition.lineno <= line <= (definition.end_lineno or definition.lineno)
        if inside and isinstance(definition, ast.ClassDef | ast.FunctionDef):
            kind = "class" if isinstance(definition, ast.ClassDef) else "function"
            return f"{kind} {definition.name}"
    return "the model"


def _definition(ev: Evaluator, name: str, importer: Importer) -> Evaluated:
    """The class or function ``name`` built with its defaults."""
    value = ev.globals.get(name)
    node = importer.classes.get(name) or importer.functions.get(name) or importer.tree
    if isinstance(value, ClassRef):
        call = ast.copy_location(ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[], keywords=[]), node)
        return _read(ev, node, lambda: ev.instantiate(call, name, {}))
    if isinstance(value, Function):
        return _read(ev, node, lambda: ev.invoke(node, value, [], {}))
    importer.note(node, f"{name} is not a class or function of the pasted code")
    return Evaluated(node)


def candidate_definitions(importer: Importer, ev: Evaluator | None = None) -> list[str]:
    """Classes and functions of the paste that no other definition uses: each could be the model."""
    used: set[str] = set()
    for node in [*importer.classes.values(), *importer.functions.values()]:
        method = bool(getattr(node, "decorator_list", []))  # @d2l.add_to_class(C): a method of C
        if not method and not _may_build(importer, node.name):
            continue  # main(), train(): what they use is not thereby a helper
        body = [n for n in ast.walk(node) if n not in _decorators(node)]
        used |= {n.id for n in body if isinstance(n, ast.Name) and n.id != getattr(node, "name", "")}
    added = {m.name for m in importer.tree.body if isinstance(m, ast.FunctionDef) and m.decorator_list}
    names = [n.name for n in importer.tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)]
    return [n for n in names if n not in used and n not in added and n != "Stackable" and _may_build(importer, n)]


def _decorators(node: ast.AST) -> set[ast.AST]:
    decorators = getattr(node, "decorator_list", [])
    return {inner for d in decorators for inner in ast.walk(d)}


def _may_build(importer: Importer, name: str) -> bool:
    """A class, or a function returning a model (an nn call, a pasted class or function's result)."""
    if name in importer.classes:
        return True
    func = importer.functions.get(name)
    if func is None:
        return False
    last = func.body[-1] if func.body else None
    value = _model_core(last.value) if isinstance(last, ast.Return) and last.value is not None else None
    pasted = isinstance(value, ast.Call) and (importer.resolve(value.func) or "") in {
        *importer.classes,
        *importer.functions,
    }
    return pasted or _returns_model(importer, func)
