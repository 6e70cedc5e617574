"""Module classes of the paste: what __init__ sets up, and the chain forward calls."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from builder.adapters import CALLS
from builder.catalog import call_style
from builder.design import LayerSpec, is_shared
from builder.importer.calls import CONTAINERS
from builder.importer.context import ImporterBase
from builder.importer.forward import SKIPPED, _ForwardReader, _Step
from builder.importer.literals import Scope, literal
from builder.importer.notes import NotLiteral, Unsupported
from builder.importer.syntax import NN, _dotted, _init_defaults, _init_names, _method
from builder.importer.tensor_ops import LearnedTensor, learned_tensor


@dataclass
class _ClassInfo:
    """What a module class's __init__ sets up."""

    submodules: dict[str, tuple[ast.expr, Scope]] = field(default_factory=dict)  # attr -> (its expression, names)
    containers: set[str] = field(default_factory=set)  # ModuleList and friends
    tensors: set[str] = field(default_factory=set)  # attributes holding values computed at run time
    methods: set[str] = field(default_factory=set)  # the class's own methods (self.helper(x) is not a layer)
    parameters: dict[str, LearnedTensor] = field(default_factory=dict)  # self.x = nn.Parameter(torch.zeros(...))
    scope: Scope = field(default_factory=Scope)  # names __init__ binds to literals (self.vocab_size = 28)
    dynamic: list[tuple[ast.stmt, str]] = field(default_factory=list)  # statements that register modules at run time


class ClassReading(ImporterBase):
    """Reads an nn.Module class into the layers its forward chains."""

    def layers_from_class(self, cls: ast.ClassDef, call: ast.Call | None, scope: Scope) -> list[LayerSpec]:
        """The layers of a module class whose forward is a chain of its sub-modules."""
        if cls.name in self.decomposing:
            self.note(cls, f"{cls.name} contains itself; skipped")
            return []
        self.decomposing.append(cls.name)
        try:
            init_scope = self.bind_init(cls, call, scope)
            info = self.read_init(cls, init_scope)
            forward = _method(cls, "forward")
            if forward is None:
                self.note(cls, f"{cls.name} has no forward method, so the order of its layers is unknown; skipped")
                return []
            steps = self.read_forward(forward, info)
            layers = self.layers_from_steps(steps, info)
        finally:
            self.decomposing.pop()
        mentioned = {n.attr for n in ast.walk(forward) if isinstance(n, ast.Attribute) and _dotted(n.value) == "self"}
        for attr, (expr, _) in info.submodules.items():
            if attr not in mentioned:
                self.note(expr, f"self.{attr} is never called in forward; not imported")
        if not layers:
            self.explain_dynamic(cls, info)
        return layers

    def bind_init(self, cls: ast.ClassDef, call: ast.Call | None, scope: Scope) -> Scope:
        """A scope with __init__'s parameters: the call's literal arguments, else the defaults."""
        init = _method(cls, "__init__")
        local = scope.child()
        if init is None:
            return local
        named = call is not None and init.args.vararg is None  # *args: custom_arguments says why
        given = self.bind_arguments(call, _init_names(init), cls.name) if named else {}
        for name, default in _init_defaults(init).items():
            node = given.get(name, default)
            if node is None:
                continue
            try:
                local.values[name] = literal(node, scope)
            except NotLiteral:
                bound = self._resolve_call(node, scope)
                if bound:
                    local.modules[name] = bound
        return local

    def read_init(self, cls: ast.ClassDef, scope: Scope) -> _ClassInfo:
        """Sub-modules (self.x = nn.Layer(...)) and literal attributes set in __init__, in order."""
        info = _ClassInfo(methods={n.name for n in cls.body if isinstance(n, ast.FunctionDef)}, scope=scope)
        init = _method(cls, "__init__")
        for stmt in init.body if init else []:
            if isinstance(stmt, ast.Assign | ast.AnnAssign):
                self._read_init_assign(stmt, scope, info)
            elif isinstance(stmt, ast.For | ast.While | ast.If | ast.With | ast.Try):
                info.dynamic.append((stmt, type(stmt).__name__.lower()))
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                method = stmt.value.func.attr if isinstance(stmt.value.func, ast.Attribute) else ""
                if method in ("add_module", "register_module"):
                    info.dynamic.append((stmt, method))
        return info

    def _read_init_assign(self, stmt: ast.Assign | ast.AnnAssign, scope: Scope, info: _ClassInfo) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        value = stmt.value
        if value is None or len(targets) != 1:
            return
        name = _dotted(targets[0])
        if name is None:
            return
        try:
            scope.values[name] = literal(value, scope)
            return
        except NotLiteral:
            pass
        attr = name.removeprefix("self.") if name.startswith("self.") and name.count(".") == 1 else None
        callee = self.resolve(value.func) if isinstance(value, ast.Call) else None
        learned = learned_tensor(self.resolve, value, scope) if attr else None
        if attr and learned is not None:
            info.parameters[attr] = learned
        elif attr and callee and callee.rsplit(".", 1)[-1] in CONTAINERS:
            info.containers.add(attr)
        elif attr and self._builds_module(value, scope):
            info.submodules[attr] = (value, scope.copy())
            scope.modules[name] = (value, scope.copy())
        elif attr:
            info.tensors.add(attr)
        elif isinstance(value, ast.Call):
            scope.modules[name] = (value, scope.copy())

    def _builds_module(self, node: ast.expr, scope: Scope) -> bool:
        if isinstance(node, ast.Name | ast.Attribute):
            return scope.module(_dotted(node) or "") is not None
        if not isinstance(node, ast.Call):
            return False
        callee = self.resolve(node.func) or ""
        return callee.startswith(f"{NN}.") or callee in self.module_classes or callee.endswith("Stackable")

    def explain_dynamic(self, cls: ast.ClassDef, info: _ClassInfo) -> None:
        """Say why a class yields no layers when its __init__ registers modules while running."""
        for stmt, what in info.dynamic:
            self.note(
                stmt,
                f"{cls.name}.__init__ registers layers in a {what} statement: they are only known when the code "
                "runs. Write the model as nn.Sequential(...) or assign each layer to self.<name>",
            )

    def read_forward(self, forward: ast.FunctionDef, info: _ClassInfo) -> list[_Step]:
        """The calls of a straight-chain forward, in order; other statements become notes."""
        params = [a.arg for a in forward.args.args[1:]]
        if not params:
            self.note(forward, "forward takes no input; skipped")
            return []
        for extra in forward.args.args[2:]:
            self.note(extra, f"forward's extra input {extra.arg} is not part of a stack (one tensor flows through)")
        reader = _ForwardReader(self, info, params[0])
        for stmt in forward.body:
            try:
                if reader.read(stmt):
                    break
            except Unsupported as error:
                self.note(error.node, f"{error.why}. {SKIPPED}")
                reader.skip(stmt)
        return reader.steps

    def layers_from_steps(self, steps: list[_Step], info: _ClassInfo) -> list[LayerSpec]:
        layers: list[LayerSpec] = []
        for step in steps:
            if step.layer is not None:  # a tensor op holding a learned tensor used again is tied to its first use
                name = f"self.{step.tensor}"
                layers += self.tied_use(name, [step.layer], step.node, name) if step.tensor else [step.layer]
                continue
            assert step.attr is not None
            expr, scope = info.submodules[step.attr]
            name = f"self.{step.attr}"
            made = self.tied_use(name, self.layers_from_expr(expr, scope), step.node, name)
            if made and is_shared(made[0]):
                layers += made
                continue
            if made:
                self.check_call(step, made)
            if len(made) > 1 and self._is_sequential(expr, scope):
                self.info(step.node, f"self.{step.attr} is an nn.Sequential: its {len(made)} layers are inlined")
            if len(made) == 1 and not _is_counter_name(step.attr, made[0].type):
                made = [made[0].model_copy(update={"label": step.attr})]
            layers += made
        return layers

    def check_call(self, step: _Step, made: list[LayerSpec]) -> None:
        """Warn when forward calls a layer differently from how the stack will."""
        given = (step.n_inputs, step.first_output)
        if len(made) != 1:
            expected = (1, False)
            what = "an nn.Sequential"
        else:
            expected = CALLS[call_style(made[0].type, made[0].params)]
            what = made[0].type
        if given != expected:
            self.note(
                step.node,
                f"forward passes x {given[0]} time(s){' and keeps the first output' if given[1] else ''}; "
                f"{what} stands in a stack with x passed {expected[0]} time(s)"
                f"{', keeping the first output' if expected[1] else ''}, which the design uses",
            )


def _is_counter_name(attr: str, layer_type: str) -> bool:
    """``linear1``, ``avg_pool2d1``, ``relu``: a name made from the type, which a label would only repeat."""
    return re.fullmatch(re.escape(layer_type.lower()) + r"\d*", attr.replace("_", "").lower()) is not None
