"""Layers from constructor calls: catalog layers, nn.Sequential, Stackable, Transformer encoders."""

from __future__ import annotations

import ast
import difflib
import inspect
from typing import Any

from torch import nn

from builder.adapters import CALLS
from builder.catalog import EXCLUDED, HIDDEN, LayerEntry, call_style, catalog
from builder.design import LayerSpec, check_value, is_shared
from builder.importer.context import ImporterBase
from builder.importer.functionals import ACTIVATIONS
from builder.importer.literals import Scope, _json_ready, literal
from builder.importer.notes import NotLiteral
from builder.importer.syntax import NN, _dotted
from builder.importer.tensor_ops import exported_tensor_op

CONTAINERS: frozenset[str] = frozenset({"ModuleList", "ModuleDict", "ParameterList", "ParameterDict"})
# Constructors whose positional order torch hides behind *args.
POSITIONAL_OVERRIDES: dict[str, tuple[str, ...]] = {
    "RNN": ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first", "dropout",
            "bidirectional"),
}  # fmt: skip


_MISSING = object()


class CallReading(ImporterBase):
    """Turns constructor calls of the paste into catalog layers."""

    def layers_from_expr(self, node: ast.expr, scope: Scope) -> list[LayerSpec]:
        """The layers an expression builds: a layer call, an nn.Sequential, a name bound to either."""
        if isinstance(node, ast.Name | ast.Attribute) and (bound := scope.module(_dotted(node) or "")):
            expr, where = bound
            key = f"{_dotted(node)}@{expr.lineno}:{expr.col_offset}"  # one object: one binding's expression
            return self.tied_use(key, self.layers_from_expr(expr, where), node, _dotted(node) or "")
        if not isinstance(node, ast.Call):
            named = (self.resolve(node) or "").rsplit(".", 1)[-1]
            example = f"{ast.unparse(node)}(...)" if named in catalog() else "nn.Linear(20, 10)"
            self.note(node, f"not a layer: a layer is a constructor call such as {example}; skipped")
            return []
        qualified = self.resolve(node.func) or ""
        short = qualified.rsplit(".", 1)[-1]
        if qualified == f"{NN}.Sequential":
            return self.layers_from_sequential(node, scope)
        if short == "Stackable":
            return self.layers_from_stackable(node, scope)
        if qualified in (f"{NN}.TransformerEncoder", f"{NN}.TransformerDecoder"):
            return self.layers_from_encoder(node, scope, short)
        if qualified.startswith(f"{NN}.") and short in catalog():
            return [self.layer_from_call(node, short, scope)]
        if exported_tensor_op(self.classes.get(qualified)) is not None:  # a class an exported file defines
            return [self.layer_from_call(node, qualified, scope)]
        if qualified in self.module_classes:
            return self.layers_from_custom(node, qualified, scope)
        self.note(node, self.unknown_layer(qualified, node))
        return []

    def unknown_layer(self, qualified: str, node: ast.Call) -> str:
        """Why a call is not a layer, with the closest layer name when there is one."""
        short = qualified.rsplit(".", 1)[-1]
        if not qualified:
            return "not a layer constructor (the callee is computed); skipped"
        if short in CONTAINERS:
            return f"nn.{short} holds layers that forward picks at run time; list them in an nn.Sequential instead"
        if short in EXCLUDED:
            return f"nn.{short} cannot stand in a stack (it needs more than one tensor); skipped"
        if qualified in self.classes:
            return f"{short} is defined in the pasted code but does not subclass nn.Module; skipped"
        if qualified in self.functions:
            return f"{short}() is a function of the pasted code, not a layer; only one returning a model is read"
        if qualified.startswith(f"{NN}.") and hasattr(nn, short):
            return f"nn.{short} is not a layer the builder can stack; skipped"
        options = [*catalog(), *sorted(self.module_classes)]
        close = difflib.get_close_matches(short, options, n=1, cutoff=0.6)
        hint = f"; did you mean nn.{close[0]}?" if close and close[0] in catalog() else ""
        hint = hint or (f"; did you mean {close[0]}?" if close else "")
        return f"unknown layer type `{ast.unparse(node.func)}`{hint} Skipped"

    def layers_from_sequential(self, node: ast.Call, scope: Scope) -> list[LayerSpec]:
        """Layers of nn.Sequential(a, b, ...) or nn.Sequential(OrderedDict([(name, layer), ...]))."""
        items = self._sequential_items(node)
        layers: list[LayerSpec] = []
        for label, item in items:
            if isinstance(item, ast.Starred):
                self.note(item, "a starred argument is only expanded when the code runs; write the layers out")
                continue
            inner = self.layers_from_expr(item, scope)
            if self._is_sequential(item, scope):
                self.info(item, f"nested nn.Sequential flattened into the stack ({len(inner)} layers)")
            elif label and len(inner) == 1:
                inner = [inner[0].model_copy(update={"label": label})]
            layers += inner
        for keyword in node.keywords:
            self.note(keyword, "nn.Sequential takes no keyword arguments; ignored")
        return layers

    def _sequential_items(self, node: ast.Call) -> list[tuple[str, ast.expr]]:
        if len(node.args) == 1 and isinstance(node.args[0], ast.Call):
            callee = self.resolve(node.args[0].func) or ""
            if callee.endswith("OrderedDict"):
                return self._ordered_items(node.args[0])
        return [("", arg) for arg in node.args]

    def _ordered_items(self, call: ast.Call) -> list[tuple[str, ast.expr]]:
        """(name, layer) pairs of OrderedDict([("conv1", nn.Conv2d(...)), ...])."""
        pairs = call.args[0] if call.args else None
        items: list[tuple[str, ast.expr]] = []
        if not isinstance(pairs, ast.List | ast.Tuple):
            self.note(call, "only an OrderedDict of a literal list of (name, layer) pairs is read; skipped")
            return items
        for pair in pairs.elts:
            if isinstance(pair, ast.Tuple) and len(pair.elts) == 2 and isinstance(pair.elts[0], ast.Constant):
                items.append((str(pair.elts[0].value), pair.elts[1]))
            else:
                self.note(pair, "expected a (name, layer) pair; skipped")
        return items

    def _is_sequential(self, node: ast.expr, scope: Scope) -> bool:
        if isinstance(node, ast.Name | ast.Attribute) and (bound := scope.module(_dotted(node) or "")):
            return self._is_sequential(*bound)
        return isinstance(node, ast.Call) and self.resolve(node.func) == f"{NN}.Sequential"

    def layers_from_stackable(self, node: ast.Call, scope: Scope) -> list[LayerSpec]:
        """Stackable(layer, n_inputs=..., first_output=...): the layer, called by the catalog's convention."""
        if not node.args:
            self.note(node, "Stackable(...) without a layer; skipped")
            return []
        layers = self.layers_from_expr(node.args[0], scope)
        given = self._stackable_call(node, scope)
        if len(layers) == 1 and given is not None and not is_shared(layers[0]):
            layer = layers[0]
            expected = CALLS[call_style(layer.type, layer.params)]
            if given != expected:
                self.note(
                    node,
                    f"Stackable passes x {given[0]} time(s) (first_output={given[1]}), but {layer.type} stands in "
                    f"a stack with n_inputs={expected[0]}, first_output={expected[1]}; the design uses the latter",
                )
        return layers

    def _stackable_call(self, node: ast.Call, scope: Scope) -> tuple[int, bool] | None:
        values: dict[str, Any] = {"n_inputs": 1, "first_output": False}
        names = ["n_inputs", "first_output"]
        pairs = [*zip(names, node.args[1:], strict=False), *((k.arg, k.value) for k in node.keywords)]
        for name, value in pairs:
            try:
                values[str(name)] = literal(value, scope)
            except NotLiteral as error:
                self.note(error.node, f"Stackable's {name} is not a literal ({error.why}); the catalog's call is used")
                return None
        return int(values["n_inputs"]), bool(values["first_output"])

    def layers_from_encoder(self, node: ast.Call, scope: Scope, kind: str) -> list[LayerSpec]:
        """nn.TransformerEncoder(nn.TransformerEncoderLayer(...), num_layers=N) -> the flat catalog layer."""
        inner_kind = f"{kind}Layer"
        names = ("encoder_layer", "num_layers", "norm", "enable_nested_tensor", "mask_check")
        args = dict(zip(names, node.args, strict=False))
        args |= {k.arg: k.value for k in node.keywords if k.arg}
        inner_expr = args.pop("encoder_layer", None) or args.pop("decoder_layer", None)
        inner = self._resolve_call(inner_expr, scope) if inner_expr is not None else None
        if inner is None or self.resolve(inner[0].func) != f"{NN}.{inner_kind}":
            self.note(node, f"{kind} is read only when its first argument is an nn.{inner_kind}(...); skipped")
            return []
        call, inner_scope = inner
        params = dict(self.layer_from_call(call, inner_kind, inner_scope, owner=kind).params)
        if "num_layers" not in args:
            self.note(node, f"{kind} without num_layers; set to 1, change it in the design")
        params["num_layers"] = self._encoder_depth(args.pop("num_layers", None), scope)
        layers = [LayerSpec(type=kind, params=params)]
        return layers + self._encoder_extras(args, scope, kind)

    def _encoder_depth(self, node: ast.expr | None, scope: Scope) -> int:
        if node is None:
            return 1
        try:
            value = literal(node, scope)
        except NotLiteral as error:
            self.note(error.node, f"num_layers is not a literal ({error.why}); set to 1, change it in the design")
            return 1
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        self.note(node, f"num_layers must be a whole number of at least 1, got {value!r}; set to 1")
        return 1

    def _encoder_extras(self, args: dict[str, ast.expr], scope: Scope, kind: str) -> list[LayerSpec]:
        """The final `norm=` becomes the layer after the encoder; the flags torch uses for speed are dropped."""
        extras: list[LayerSpec] = []
        for name, value in args.items():
            if name == "norm" and not (isinstance(value, ast.Constant) and value.value is None):
                extras = self.layers_from_expr(value, scope)
                self.info(value, f"{kind}'s norm= is applied to its output: imported as the next layer")
            elif name in ("enable_nested_tensor", "mask_check"):
                self.info(value, f"{name}= is an inference speed-up, not part of a design; dropped")
            elif name != "norm":
                self.note(value, f"{kind} has no argument {name}; dropped")
        return extras

    def _resolve_call(self, node: ast.expr, scope: Scope) -> tuple[ast.Call, Scope] | None:
        if isinstance(node, ast.Call):
            return node, scope
        bound = scope.module(_dotted(node) or "")
        return self._resolve_call(*bound) if bound else None

    # -- one catalog layer -----------------------------------------------------------------------------------

    def layer_from_call(self, node: ast.Call, layer_type: str, scope: Scope, owner: str = "") -> LayerSpec:
        """A catalog layer from its constructor call; arguments that cannot be taken over are named."""
        entry = catalog()[layer_type]
        given = self.bind_arguments(node, positional_names(layer_type), owner or layer_type)
        params: dict[str, Any] = {}
        for name, value_node in given.items():
            if name in HIDDEN:
                self.info(value_node, f"{name}= is not part of a design (the builder picks it); dropped")
                continue
            value = self.param_value(entry, name, value_node, scope, node)
            if value is not _MISSING:
                params[name] = value
        for spec in entry.params:
            if spec.required and spec.name not in params:
                params[spec.name] = entry.sample_params()[spec.name]
                if spec.name not in given:
                    self.note(node, f"missing required argument {spec.name}; set to {params[spec.name]!r}")
        return LayerSpec(type=layer_type, params=params)

    def bind_arguments(self, node: ast.Call, names: tuple[str, ...], what: str) -> dict[str, ast.expr]:
        """Argument name -> expression, positional arguments named by the constructor's order."""
        given: dict[str, ast.expr] = {}
        for index, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                self.note(arg, "a starred argument is only expanded when the code runs; write the arguments out")
            elif index >= len(names):
                self.note(arg, f"{what} takes at most {len(names)} positional arguments; this one is dropped")
            else:
                given[names[index]] = arg
        for keyword in node.keywords:
            if keyword.arg is None:
                self.note(keyword, "**keyword arguments are only known when the code runs; dropped")
            elif keyword.arg in given:
                self.note(keyword, f"{keyword.arg} is given twice; the keyword wins")
                given[keyword.arg] = keyword.value
            else:
                given[keyword.arg] = keyword.value
        return given

    def param_value(self, entry: LayerEntry, name: str, node: ast.expr, scope: Scope, call: ast.AST) -> Any:
        """The design value of one argument of ``call``, or _MISSING when it is dropped (torch's default applies)."""
        spec = entry.param(name)
        if spec is None:
            names = [p.name for p in entry.params]
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; {entry.name} takes: {', '.join(names) or 'none'}."
            self.note(call, f"{entry.name} has no argument {name}{hint} Dropped")
            return _MISSING
        try:
            value = self._argument(spec.name, node, scope)
        except NotLiteral as error:
            why = f"{name} = `{self.snippet(error.node)}` is not a literal value ({error.why})"
            return self._fallback(entry, name, call, why)
        problem = check_value(spec, value)
        if problem:
            return self._fallback(entry, name, call, f"{name} {problem}")
        return value

    def _argument(self, name: str, node: ast.expr, scope: Scope) -> Any:
        if name == "activation" and not isinstance(node, ast.Constant):
            qualified = self.resolve(node.func if isinstance(node, ast.Call) else node) or ""
            if qualified in ACTIVATIONS:
                self.info(node, f"activation read as the name {ACTIVATIONS[qualified]!r}")
                return ACTIVATIONS[qualified]
        return _json_ready(literal(node, scope))

    def _fallback(self, entry: LayerEntry, name: str, node: ast.expr, why: str) -> Any:
        spec = entry.param(name)
        if spec is not None and spec.required:
            placeholder = entry.sample_params()[name]
            self.note(node, f"{why}; set to the placeholder {placeholder!r}: change it in the design")
            return placeholder
        default = spec.default if spec else None
        self.note(node, f"{why}; left at torch's default ({default!r})")
        return _MISSING


def positional_names(layer_type: str) -> tuple[str, ...]:
    """The constructor's positional order, hidden arguments included so later ones keep their position."""
    if layer_type in POSITIONAL_OVERRIDES:
        return POSITIONAL_OVERRIDES[layer_type]
    cls = getattr(nn, layer_type) if catalog()[layer_type].builtin else catalog()[layer_type].factory
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return tuple(p.name for p in catalog()[layer_type].params if not p.keyword_only)
    return tuple(p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
