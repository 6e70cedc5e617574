"""Which model the paste builds: its top-level statements, model functions and model classes."""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from builder.catalog import catalog
from builder.design import DType, LayerSpec
from builder.importer.context import ImporterBase
from builder.importer.inputs import TENSOR_FACTORIES
from builder.importer.literals import Scope, _bind_statement, literal
from builder.importer.notes import NotLiteral
from builder.importer.syntax import COMPOUND, NN, _assigned_name, _dotted, _function_defaults

if TYPE_CHECKING:
    from builder.importer.reader import Importer


MODEL_DTYPES: dict[str, DType] = {"double": DType.FLOAT64, "float": DType.FLOAT32}
MODEL_METHODS: frozenset[str] = frozenset({"double", "float", "to", "cuda", "cpu", "eval", "train"})
STRUCTURAL_METHODS: frozenset[str] = frozenset({"append", "add_module", "insert", "extend", "register_module"})


class ModelReading(ImporterBase):
    """Reads the expression, function or class that builds the model."""

    def layers_from_model(self, node: ast.expr, scope: Scope) -> list[LayerSpec]:
        """The layers of the model an expression builds (a Sequential, a pasted class, a model function)."""
        node = self.strip_model_methods(node)
        if isinstance(node, ast.Name) and (bound := scope.module(node.id)):
            return self.layers_from_model(*bound)
        if isinstance(node, ast.Call):
            callee = self.resolve(node.func) or ""
            if callee in self.module_classes:
                layers = self.layers_from_class(self.classes[callee], node, scope)
                return layers or self._class_as_layer(node, callee, scope)
            if callee in self.functions:
                return self.layers_from_function(self.functions[callee], node, scope)
        return self.layers_from_expr(node, scope)

    def strip_model_methods(self, node: ast.expr) -> ast.expr:
        """``build().double()`` -> ``build()``: methods that move or convert a model keep its layers."""
        while (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MODEL_METHODS
            and isinstance(node.func.value, ast.Call | ast.Name)
        ):
            method = node.func.attr
            if method in MODEL_DTYPES:
                self.model_dtype = MODEL_DTYPES[method]
                self.info(node, f".{method}() read as the input dtype {self.model_dtype}")
            elif method not in ("eval", "train"):
                self.info(node, f".{method}(...) moves the model; a design does not say where it runs, ignored")
            node = node.func.value
        return node

    def layers_from_function(self, func: ast.FunctionDef, call: ast.Call | None, scope: Scope) -> list[LayerSpec]:
        """A function that builds the model (the exported build_model()): locals, then what it returns."""
        local = scope.child()
        if call is not None and (call.args or call.keywords):
            self.note(call, f"the arguments of {func.name}() are not read; its defaults are used")
        for name, default in _function_defaults(func).items():
            if default is not None:
                with contextlib.suppress(NotLiteral):
                    local.values[name] = literal(default, scope)
        for stmt in func.body:
            if isinstance(stmt, ast.Return) and stmt.value is not None:
                return self.layers_from_model(stmt.value, local)
            _bind_statement(stmt, local)
        self.note(func, f"{func.name}() does not end with `return <model>`; skipped")
        return []


@dataclass
class _Candidate:
    """A statement that builds a model: ``net = nn.Sequential(...)``, ``MLP()``, ``build_model()``."""

    node: ast.expr
    stmt: ast.stmt
    name: str | None
    scope: Scope


@dataclass
class _TopLevel:
    """What the module level of the paste binds and builds, in order."""

    scope: Scope = field(default_factory=Scope)
    candidates: list[_Candidate] = field(default_factory=list)
    tensors: dict[str, ast.Call] = field(default_factory=dict)  # X = torch.rand(2, 20)
    model_inputs: dict[str, ast.expr] = field(default_factory=dict)  # net(X): model name -> what it is fed
    constants: dict[str, ast.expr] = field(default_factory=dict)  # INPUT_SHAPE, INPUT_DTYPE


def read_toplevel(importer: Importer) -> _TopLevel:
    """Walk the module-level statements in order, binding names and collecting models and inputs."""
    top = _TopLevel()
    for stmt in _module_statements(importer.tree):
        value = getattr(stmt, "value", None)
        name = _assigned_name(stmt)
        if name in ("INPUT_SHAPE", "INPUT_DTYPE") and value is not None:
            top.constants[name] = value
        if not isinstance(stmt, COMPOUND):
            _read_model_uses(importer, top, stmt)
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.Expr) and isinstance(value, ast.Call):
            _read_toplevel_call(importer, top, stmt, value, name)
        _bind_statement(stmt, top.scope)
    return top


def _module_statements(tree: ast.Module) -> Iterator[ast.stmt]:
    """The module's statements, with those of an ``if __name__ == "__main__":`` block in their place."""
    for stmt in tree.body:
        test = stmt.test if isinstance(stmt, ast.If) else None
        if isinstance(test, ast.Compare) and _dotted(test.left) == "__name__" and not stmt.orelse:
            yield from stmt.body
        else:
            yield stmt


def _read_toplevel_call(importer: Importer, top: _TopLevel, stmt: ast.stmt, call: ast.Call, name: str | None) -> None:
    core = _model_core(call)
    callee = (importer.resolve(core.func) if isinstance(core, ast.Call) else None) or ""
    if _builds_model(importer, callee):
        top.candidates.append(_Candidate(call, stmt, name, top.scope.copy()))
    elif callee in TENSOR_FACTORIES and name:
        top.tensors[name] = call


def _read_model_uses(importer: Importer, top: _TopLevel, stmt: ast.stmt) -> None:
    """``net(X)`` says what the model is fed; ``net.append(...)`` changes it after it is built (not read)."""
    models = {c.name for c in top.candidates if c.name}
    for node in ast.walk(stmt):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in models and node.args:
            top.model_inputs[node.func.id] = node.args[0]
        elif isinstance(node.func, ast.Attribute) and _dotted(node.func.value) in models:
            method = node.func.attr
            if method in STRUCTURAL_METHODS:
                importer.note(node, f"`{method}` changes the model after it is built; only its first layers are read")
            elif method not in MODEL_METHODS:
                importer.info(node, f"`{method}` is not about the layer stack; ignored")


def _model_core(node: ast.expr) -> ast.expr:
    """The model expression without .double(), .to(device) and the like."""
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in MODEL_METHODS
        and isinstance(node.func.value, ast.Call | ast.Name)
    ):
        node = node.func.value
    return node


def _builds_model(importer: Importer, callee: str) -> bool:
    if callee == f"{NN}.Sequential" or callee in importer.module_classes:
        return True
    if callee.startswith(f"{NN}.") and callee.rsplit(".", 1)[-1] in catalog():
        return True
    return callee in importer.functions and _returns_model(importer, importer.functions[callee])


def _returns_model(importer: Importer, func: ast.FunctionDef) -> bool:
    """True for a function ending in ``return nn.Sequential(...)``, ``return Model()`` or ``return model.double()``."""
    last = func.body[-1] if func.body else None
    if not isinstance(last, ast.Return) or last.value is None:
        return False
    value = _model_core(last.value)
    if isinstance(value, ast.Name):
        assigned = [s.value for s in func.body if _assigned_name(s) == value.id]
        value = _model_core(assigned[-1]) if assigned and assigned[-1] is not None else value
    if not isinstance(value, ast.Call):
        return False
    callee = importer.resolve(value.func) or ""
    layer = callee.startswith(f"{NN}.") and callee.rsplit(".", 1)[-1] in catalog()
    return callee == f"{NN}.Sequential" or callee in importer.module_classes or layer


def choose_model(importer: Importer, top: _TopLevel) -> tuple[ast.AST, list[LayerSpec]]:
    """The layers of the model the paste builds last; else of its model function; else of its model class."""
    if top.candidates:
        chosen = top.candidates[-1]
        _note_other_models(importer, top.candidates, chosen)
        return chosen.stmt, importer.layers_from_model(chosen.node, chosen.scope)
    functions = [f for f in importer.functions.values() if _returns_model(importer, f)]
    if functions:
        return functions[-1], importer.layers_from_function(functions[-1], None, top.scope)
    classes = _model_classes(importer)
    if classes:
        cls = classes[-1]
        layers = importer.layers_from_class(cls, None, top.scope)
        return cls, layers or importer._class_as_layer(None, cls.name, top.scope)
    return importer.tree, []


def _note_other_models(importer: Importer, candidates: list[_Candidate], chosen: _Candidate) -> None:
    used = {n.id for n in ast.walk(chosen.stmt) if isinstance(n, ast.Name)}
    for other in candidates[:-1]:
        if other.name is None or other.name not in used:
            importer.info(other.stmt, f"another model; only the last one (line {chosen.stmt.lineno}) is imported")


def _model_classes(importer: Importer) -> list[ast.ClassDef]:
    """Module classes no other class or function of the paste uses: the candidates for the model itself."""
    used: set[str] = set()
    for node in [*importer.classes.values(), *importer.functions.values()]:
        used |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id != getattr(node, "name", "")}
    return [importer.classes[name] for name in importer.classes if name in importer.module_classes
            and name not in used and name != "Stackable"]  # fmt: skip
