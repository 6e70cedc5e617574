"""Import PyTorch source code into a design, statically.

``import_code`` parses pasted code with ``ast`` and never runs it. It understands an ``nn.Sequential(...)``
expression or assignment, a function returning one (the exported ``build_model()``), and an ``nn.Module`` class
whose ``forward`` is a straight chain of its sub-modules. Constructor arguments must be literal values (names bound
to literals in the pasted code count). Classes of the pasted code used as layers are carried as custom layers, for
the sandbox to check. Whatever cannot be imported becomes an :class:`ImportNote` naming the line, the construct
and why; nothing is guessed without a note.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import inspect
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from torch import nn

from builder.adapters import CALLS
from builder.catalog import EXCLUDED, HIDDEN, Category, LayerEntry, call_style, catalog
from builder.design import (
    CustomLayerSpec,
    Design,
    DesignError,
    DType,
    InputSpec,
    LayerSpec,
    check_value,
    validate_design,
)

NN = "torch.nn"
FUNCTIONAL = "torch.nn.functional"
# Names a paste may use without importing them (D2L's snippets assume `from torch import nn`).
DEFAULT_ALIASES: dict[str, str] = {"torch": "torch", "nn": NN, "F": FUNCTIONAL}
# What the custom-layer source is run with (see builder.custom.define_trusted).
CUSTOM_GLOBALS: frozenset[str] = frozenset({"torch", "nn", "F"})

DTYPES: dict[str, DType] = {
    "torch.float32": DType.FLOAT32,
    "torch.float": DType.FLOAT32,
    "torch.float64": DType.FLOAT64,
    "torch.double": DType.FLOAT64,
    "torch.int64": DType.INT64,
    "torch.long": DType.INT64,
}
TENSOR_FACTORIES: frozenset[str] = frozenset(
    {"torch.rand", "torch.randn", "torch.zeros", "torch.ones", "torch.empty", "torch.randint"}
)
# Methods on a built model that keep its layers: model.double(), Model().to(device).
MODEL_DTYPES: dict[str, DType] = {"double": DType.FLOAT64, "float": DType.FLOAT32}
MODEL_METHODS: frozenset[str] = frozenset({"double", "float", "to", "cuda", "cpu", "eval", "train"})
COMPOUND = (ast.ClassDef, ast.FunctionDef, ast.For, ast.While, ast.If, ast.With, ast.Try)
STRUCTURAL_METHODS: frozenset[str] = frozenset({"append", "add_module", "insert", "extend", "register_module"})
CONTAINERS: frozenset[str] = frozenset({"ModuleList", "ModuleDict", "ParameterList", "ParameterDict"})
# Constructors whose positional order torch hides behind *args.
POSITIONAL_OVERRIDES: dict[str, tuple[str, ...]] = {
    "RNN": ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first", "dropout",
            "bidirectional"),
}  # fmt: skip


@dataclass(frozen=True)
class Functional:
    """A function on a tensor that an nn layer computes: the layer and the function's arguments after the input."""

    layer: str
    args: tuple[str, ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()  # the function's defaults that differ from the layer's


def _functional_table() -> dict[str, Functional]:
    table = {
        name: Functional(layer, ("inplace",))
        for name, layer in {
            "relu": "ReLU", "relu6": "ReLU6", "selu": "SELU", "silu": "SiLU", "mish": "Mish",
            "hardswish": "Hardswish", "hardsigmoid": "Hardsigmoid",
        }.items()
    }  # fmt: skip
    table |= {name: Functional(layer) for name, layer in {
        "sigmoid": "Sigmoid", "tanh": "Tanh", "logsigmoid": "LogSigmoid", "softsign": "Softsign",
        "tanhshrink": "Tanhshrink",
    }.items()}  # fmt: skip
    table |= {name: Functional(layer, ("dim",)) for name, layer in {
        "softmax": "Softmax", "log_softmax": "LogSoftmax", "softmin": "Softmin", "glu": "GLU",
    }.items()}  # fmt: skip
    table |= {
        "elu": Functional("ELU", ("alpha", "inplace")),
        "celu": Functional("CELU", ("alpha", "inplace")),
        "leaky_relu": Functional("LeakyReLU", ("negative_slope", "inplace")),
        "gelu": Functional("GELU", ("approximate",)),
        "hardtanh": Functional("Hardtanh", ("min_val", "max_val", "inplace")),
        "softplus": Functional("Softplus", ("beta", "threshold")),
        "dropout": Functional("Dropout", ("p", "training", "inplace")),
        "pixel_shuffle": Functional("PixelShuffle", ("upscale_factor",)),
        "interpolate": Functional("Upsample", ("size", "scale_factor", "mode", "align_corners")),
        "flatten": Functional("Flatten", ("start_dim", "end_dim"), (("start_dim", 0),)),
    }
    for d in "123":
        table[f"dropout{d}d"] = Functional(f"Dropout{d}d", ("p", "training", "inplace"))
        table[f"max_pool{d}d"] = Functional(
            f"MaxPool{d}d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
        )
        table[f"avg_pool{d}d"] = Functional(
            f"AvgPool{d}d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
        )
        table[f"adaptive_avg_pool{d}d"] = Functional(f"AdaptiveAvgPool{d}d", ("output_size",))
        table[f"adaptive_max_pool{d}d"] = Functional(f"AdaptiveMaxPool{d}d", ("output_size", "return_indices"))
    return table


# torch.nn.functional.<name>(x, ...) -> the nn layer computing the same thing.
FUNCTIONALS: dict[str, Functional] = _functional_table()
# torch.<name>(x, ...) and x.<name>(...) for the few tensor functions that are layers.
TORCH_FUNCTIONS: frozenset[str] = frozenset({"relu", "sigmoid", "tanh", "softmax", "log_softmax", "flatten"})
SKIPPED = "Skipped: the stack goes on without it"
EVAL_DROPOUT = "dropout without training=self.training also drops in eval mode; nn.Dropout does not"
# Transformer `activation=` values: functions and modules the catalog stores by name.
ACTIVATIONS: dict[str, str] = {
    f"{FUNCTIONAL}.relu": "relu",
    f"{FUNCTIONAL}.gelu": "gelu",
    f"{NN}.ReLU": "relu",
    f"{NN}.GELU": "gelu",
}


class Severity(StrEnum):
    """How much a note matters to the person importing."""

    INFO = "info"  # imported, with a translation worth knowing (F.relu became nn.ReLU)
    WARNING = "warning"  # not imported, or imported differently from the source: check the design


@dataclass(frozen=True)
class ImportNote:
    """One thing the importer did not take over as written: where, what and why."""

    line: int
    construct: str
    message: str
    severity: Severity = Severity.WARNING

    def __str__(self) -> str:
        return f"line {self.line}: {self.severity}: `{self.construct}`: {self.message}"


@dataclass(frozen=True)
class ImportResult:
    """The imported design and the notes about what was translated, skipped or replaced."""

    design: Design
    notes: tuple[ImportNote, ...] = ()

    @property
    def problems(self) -> tuple[ImportNote, ...]:
        """The warnings: parts of the source that are missing from the design or differ in it."""
        return tuple(n for n in self.notes if n.severity is Severity.WARNING)


class ImportFailed(DesignError):
    """Nothing in the source could be imported; the message says what was expected and what was found."""


class NotLiteral(Exception):
    """An expression whose value is only known when the code runs."""

    def __init__(self, node: ast.AST, why: str = "") -> None:
        super().__init__(why)
        self.node = node
        self.why = why


class Unsupported(Exception):
    """A construct the importer cannot translate into layers."""

    def __init__(self, node: ast.AST, why: str) -> None:
        super().__init__(why)
        self.node = node
        self.why = why


# ---------------------------------------------------------------------------------------------- literal values

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


def _dotted(node: ast.AST) -> str | None:
    """``self.hidden_dim`` or ``nn.Linear`` as text, for a chain of names and attributes."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
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


# ---------------------------------------------------------------------------------------------- names and imports


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


# ---------------------------------------------------------------------------------------------- the importer


@dataclass
class _Step:
    """One call in a forward chain."""

    node: ast.AST
    attr: str | None = None  # self.<attr>(x)
    layer: LayerSpec | None = None  # a function or an inline layer translated to a layer
    n_inputs: int = 1
    first_output: bool = False


@dataclass
class _ClassInfo:
    """What a module class's __init__ sets up."""

    submodules: dict[str, tuple[ast.expr, Scope]] = field(default_factory=dict)  # attr -> (its expression, names)
    containers: set[str] = field(default_factory=set)  # ModuleList and friends
    tensors: set[str] = field(default_factory=set)  # attributes holding values computed at run time
    methods: set[str] = field(default_factory=set)  # the class's own methods (self.helper(x) is not a layer)
    dynamic: list[tuple[ast.stmt, str]] = field(default_factory=list)  # statements that register modules at run time


class _Importer:
    """One import: the parsed source, its names, and the notes gathered on the way."""

    def __init__(self, source: str, tree: ast.Module) -> None:
        self.source = source
        self.tree = tree
        self.aliases = {**DEFAULT_ALIASES, **read_aliases(tree)}
        self.assumed_aliases = {k for k in DEFAULT_ALIASES if k not in read_aliases(tree)}
        self.star_nn = NN in _star_imports(tree)
        self.model_dtype: DType | None = None  # set by model.double() / model.float()
        self.notes: list[ImportNote] = []
        self.custom: dict[str, CustomLayerSpec] = {}
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        self.module_classes = self._find_module_classes()
        self.toplevel_names = self._toplevel_names()
        self.decomposing: list[str] = []  # classes being read, to refuse a class that contains itself

    # -- notes ---------------------------------------------------------------------------------------------

    def snippet(self, node: ast.AST) -> str:
        """The source of a construct on one line, shortened; only the header of a class, def, loop or branch."""
        text = ast.get_source_segment(self.source, node) or ast.unparse(node)
        if isinstance(node, COMPOUND):
            text = text.splitlines()[0].rstrip(":") + ": ..."
        text = " ".join(text.split())
        return text if len(text) <= 80 else text[:77] + "..."

    def note(self, node: ast.AST, message: str, severity: Severity = Severity.WARNING) -> None:
        line = getattr(node, "lineno", 0)
        entry = ImportNote(line, self.snippet(node), message, severity)
        if entry not in self.notes:
            self.notes.append(entry)

    def info(self, node: ast.AST, message: str) -> None:
        self.note(node, message, Severity.INFO)

    # -- names ---------------------------------------------------------------------------------------------

    def resolve(self, node: ast.AST) -> str | None:
        """The qualified name an expression refers to (``nn.Linear`` -> ``torch.nn.Linear``), or None."""
        name = _dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        if head in self.classes or head in self.functions:
            return name
        if head not in self.aliases:
            star = self.star_nn and not rest and (head in catalog() or head == "Sequential")
            return f"{NN}.{head}" if star else name
        if head in self.assumed_aliases:
            self.assumed_aliases.discard(head)
            self.info(node, f"`{head}` is not imported; read as {self.aliases[head]} (and so on below)")
        qualified = self.aliases[head]
        return f"{qualified}.{rest}" if rest else qualified

    def _find_module_classes(self) -> set[str]:
        found: set[str] = set()
        changed = True
        while changed:  # a class may subclass another pasted class defined earlier or later
            changed = False
            for name, cls in self.classes.items():
                if name not in found and _module_bases(cls, self._base_name, found):
                    found.add(name)
                    changed = True
        return found

    def _base_name(self, node: ast.AST) -> str | None:
        name = _dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        qualified = self.aliases.get(head, head)
        return f"{qualified}.{rest}" if rest else qualified

    def _toplevel_names(self) -> dict[str, int]:
        names: dict[str, int] = {}
        for stmt in self.tree.body:
            if isinstance(stmt, ast.ClassDef | ast.FunctionDef):
                names[stmt.name] = stmt.lineno
            elif isinstance(stmt, ast.Import | ast.ImportFrom):
                for alias in stmt.names:
                    names[(alias.asname or alias.name).split(".")[0]] = stmt.lineno
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    for node in ast.walk(target):
                        if isinstance(node, ast.Name):
                            names[node.id] = stmt.lineno
        return names

    # -- layers from constructor calls ----------------------------------------------------------------------

    def layers_from_expr(self, node: ast.expr, scope: Scope) -> list[LayerSpec]:
        """The layers an expression builds: a layer call, an nn.Sequential, a name bound to either."""
        if isinstance(node, ast.Name | ast.Attribute) and (bound := scope.module(_dotted(node) or "")):
            expr, where = bound
            return self.layers_from_expr(expr, where)
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
        if len(layers) == 1 and given is not None:
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

    # -- custom layers -----------------------------------------------------------------------------------------

    def layers_from_custom(self, node: ast.Call, name: str, scope: Scope) -> list[LayerSpec]:
        """A class of the pasted code used as a layer: carried as source, its arguments as literals."""
        cls = self.classes[name]
        if name in catalog():
            self.note(node, f"the pasted class {name} has the name of a torch.nn layer; rename it. Skipped")
            return []
        params = self.custom_arguments(node, cls, scope)
        if params is None:
            return []
        self.carry_custom(cls)
        return [LayerSpec(type=name, params=params)]

    def custom_arguments(self, node: ast.Call, cls: ast.ClassDef, scope: Scope) -> dict[str, Any] | None:
        init = _method(cls, "__init__")
        names = _init_names(init) if init else ()
        if init is not None and init.args.vararg is not None and node.args:
            self.note(
                node,
                f"{cls.name} takes *{init.args.vararg.arg}, which only has names when the code runs; a custom layer "
                "needs named, literal arguments. Skipped",
            )
            return None
        given = self.bind_arguments(node, names, cls.name)
        params: dict[str, Any] = {}
        for arg_name, value_node in given.items():
            try:
                params[arg_name] = _json_ready(literal(value_node, scope))
            except NotLiteral as error:
                self.note(
                    error.node,
                    f"{cls.name}'s argument {arg_name} is not a literal value ({error.why}); a custom layer is "
                    "carried as its class source and literal arguments, so it is skipped",
                )
                return None
        return params

    def carry_custom(self, cls: ast.ClassDef) -> None:
        """Add the class source to the design once, naming what it uses from the rest of the paste."""
        if cls.name in self.custom:
            return
        source = ast.get_source_segment(self.source, cls) or ast.unparse(cls)
        self.custom[cls.name] = CustomLayerSpec(name=cls.name, source=source)
        self.info(cls, f"carried as the custom layer {cls.name} (checked in the sandbox)")
        used = sorted({n.id for n in ast.walk(cls) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)})
        outside = [n for n in used if n in self.toplevel_names and n not in CUSTOM_GLOBALS and n != cls.name]
        if outside:
            listed = ", ".join(f"{n} (line {self.toplevel_names[n]})" for n in outside)
            self.note(
                cls,
                f"custom layer {cls.name} uses {listed} from elsewhere in the pasted code; its source runs with only "
                "torch, nn and F defined, so move what it needs inside the class",
            )

    # -- module classes ------------------------------------------------------------------------------------------

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
        info = _ClassInfo(methods={n.name for n in cls.body if isinstance(n, ast.FunctionDef)})
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
        if attr and callee and callee.rsplit(".", 1)[-1] in CONTAINERS:
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

    # -- forward -----------------------------------------------------------------------------------------------

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
        calls: dict[str, int] = {}
        for step in steps:
            if step.layer is not None:
                layers.append(step.layer)
                continue
            assert step.attr is not None
            expr, scope = info.submodules[step.attr]
            made = self.layers_from_expr(expr, scope)
            calls[step.attr] = calls.get(step.attr, 0) + 1
            if calls[step.attr] == 2:
                self.info(step.node, f"self.{step.attr} is called again: the design holds a separate layer per call")
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

    # -- the model of the paste -----------------------------------------------------------------------------------

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

    def _class_as_layer(self, node: ast.Call | None, name: str, scope: Scope) -> list[LayerSpec]:
        """A class whose forward yields no chain comes in whole, as one custom layer, if its arguments allow."""
        cls = self.classes[name]
        if _method(cls, "forward") is None or self.problems_in(cls) == 0 or name in catalog():
            return []
        call = node or ast.Call(func=ast.Name(id=name), args=[], keywords=[])
        params = self.custom_arguments(call, cls, scope)
        if params is None:
            return []
        self.carry_custom(cls)
        self.note(cls, f"{name}'s forward is not a chain of layers: imported whole, as one custom layer")
        return [LayerSpec(type=name, params=params)]

    def problems_in(self, cls: ast.ClassDef) -> int:
        lines = range(cls.lineno, (cls.end_lineno or cls.lineno) + 1)
        return sum(1 for n in self.notes if n.line in lines and n.severity is Severity.WARNING)

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


_MISSING = object()


class _ForwardReader:
    """Walks the statements of forward, tracking which name holds the tensor flowing through the stack."""

    def __init__(self, importer: _Importer, info: _ClassInfo, input_name: str) -> None:
        self.importer = importer
        self.info = info
        self.live = input_name
        self.aux: set[str] = set()  # names holding sizes read off the tensor (batch = x.size(0))
        self.steps: list[_Step] = []

    def read(self, stmt: ast.stmt) -> bool:
        """Take one statement in; True once forward returns."""
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            return False  # a docstring
        if isinstance(stmt, ast.Pass):
            return False
        if isinstance(stmt, ast.Return):
            if stmt.value is None:
                raise Unsupported(stmt, "forward returns nothing")
            self.steps += self.chain(stmt.value, first_output=False)
            return True
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            self.assign(stmt)
            return False
        if isinstance(stmt, ast.Expr):
            self.importer.info(stmt, "a statement that does not change the tensor; ignored")
            return False
        raise Unsupported(stmt, _statement_why(stmt))

    def skip(self, stmt: ast.stmt) -> None:
        """After an unsupported assignment, its target still names the running tensor."""
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = _first_name(stmt.targets[0])
            if target:
                self.live = target

    def assign(self, stmt: ast.Assign | ast.AnnAssign) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if len(targets) != 1 or stmt.value is None:
            raise Unsupported(stmt, "a chained assignment in forward")
        target = targets[0]
        if self.is_size(stmt.value):
            self.aux.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            return
        name = _first_name(target)
        if name is None:
            raise Unsupported(stmt, "an assignment to something other than a name in forward")
        first_output = isinstance(target, ast.Tuple)
        self.steps += self.chain(stmt.value, first_output)
        self.live = name

    def is_size(self, node: ast.expr) -> bool:
        """``x.size(0)``, ``x.shape[0]``, ``x.shape``: sizes read off the tensor, not a new tensor."""
        inner = node.value if isinstance(node, ast.Subscript) else node
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "size":
            return True
        return isinstance(inner, ast.Attribute) and inner.attr == "shape"

    def chain(self, node: ast.expr, first_output: bool) -> list[_Step]:
        """The steps an expression applies to the running tensor, innermost first."""
        if isinstance(node, ast.Name):
            if node.id != self.live:
                raise Unsupported(node, f"uses `{node.id}` where the running tensor is `{self.live}` (a second path)")
            if first_output:
                raise Unsupported(node, "unpacks the running tensor itself")
            return []
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Constant) and node.slice.value == 0 and isinstance(node.value, ast.Call):
                return self.chain(node.value, first_output=True)
            raise Unsupported(node, "indexing or slicing the tensor has no layer in the catalog")
        if isinstance(node, ast.Call):
            return self.call_or_skip(node, first_output)
        if isinstance(node, ast.BinOp):
            raise Unsupported(node, "arithmetic on the tensor has no layer; a residual x + f(x) needs a custom layer")
        raise Unsupported(node, f"a {type(node).__name__} expression is not a layer call")

    def call_or_skip(self, node: ast.Call, first_output: bool) -> list[_Step]:
        """A call that is no layer, with the tensor as its input, is skipped alone: the calls inside it still count."""
        try:
            return self.call(node, first_output)
        except Unsupported as error:
            tensor = self.tensor_argument(node)
            if error.node is not node or tensor is None:
                raise
            steps = self.chain(tensor, False)
            self.importer.note(node, f"{error.why}. {SKIPPED}")
            return steps

    def tensor_argument(self, node: ast.Call) -> ast.expr | None:
        """What flows into a call: the object of a tensor method, else a first argument that is a call."""
        if isinstance(node.func, ast.Attribute) and self._on_tensor(node.func.value):
            inner = node.func.value
            return inner if isinstance(inner, ast.Call | ast.Subscript) else None
        first = node.args[0] if node.args else None
        return first if isinstance(first, ast.Call | ast.Subscript) else None

    def call(self, node: ast.Call, first_output: bool) -> list[_Step]:
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            return self.module_call(node, func.attr, first_output)
        if isinstance(func, ast.Call):
            return self.inline_call(node, first_output)
        if isinstance(func, ast.Attribute) and func.attr in TENSOR_METHODS and self._on_tensor(func.value):
            return self.method_call(node, func.attr, first_output)
        qualified = self.importer.resolve(func) or ""
        function = _functional_for(qualified)
        if function is not None:
            return self.function_call(node, qualified, function, first_output)
        if isinstance(func, ast.Attribute) and self._on_tensor(func.value) and qualified.split(".")[0] != "torch":
            raise Unsupported(node, f"the tensor method .{func.attr}() has no layer in the catalog")
        raise Unsupported(node, _call_why(qualified, func))

    def _on_tensor(self, node: ast.expr) -> bool:
        """True unless ``node`` is a module name (``torch``, ``F``) or ``self``: a method then is no tensor method."""
        if isinstance(node, ast.Name) and node.id != self.live:
            return node.id not in self.importer.aliases and node.id != "self"
        return True

    def module_call(self, node: ast.Call, attr: str, first_output: bool) -> list[_Step]:
        if attr in self.info.containers:
            raise Unsupported(node, f"self.{attr} is an nn container; forward picks its layers at run time")
        if attr not in self.info.submodules:
            if attr in self.info.tensors:
                raise Unsupported(node, f"self.{attr} holds a value computed at run time, not a layer")
            if attr in self.info.methods:
                raise Unsupported(node, f"self.{attr}() is a method of the class, not a layer; its code is not read")
            raise Unsupported(node, f"self.{attr} is not a layer set in __init__")
        if not node.args:
            raise Unsupported(node, f"self.{attr}() is called without the tensor")
        first = ast.dump(node.args[0])
        if any(ast.dump(arg) != first for arg in node.args[1:]):
            raise Unsupported(node, f"self.{attr} gets different tensors as inputs; a stack passes x to each input")
        steps = self.chain(node.args[0], first_output=False)
        if node.keywords:
            names = ", ".join(k.arg or "**" for k in node.keywords)
            self.importer.note(node, f"keyword arguments {names} are not passed by the stack; ignored")
        return [*steps, _Step(node, attr=attr, n_inputs=len(node.args), first_output=first_output)]

    def inline_call(self, node: ast.Call, first_output: bool) -> list[_Step]:
        """``nn.ReLU()(x)``: a layer built inside forward."""
        if len(node.args) != 1:
            raise Unsupported(node, "a layer built in forward and called with more than the tensor")
        made = self.importer.layers_from_expr(node.func, Scope())
        if len(made) != 1:
            raise Unsupported(node, "not a single layer")
        self.importer.info(node, "a layer built inside forward; imported as a layer of the stack")
        return [*self.chain(node.args[0], False), _Step(node, layer=made[0], first_output=first_output)]

    def method_call(self, node: ast.Call, method: str, first_output: bool) -> list[_Step]:
        """``x.view(x.size(0), -1)``, ``x.flatten(1)``, ``x.relu()``."""
        assert isinstance(node.func, ast.Attribute)
        inner = self.chain(node.func.value, False)
        if method in ("view", "reshape"):
            return [*inner, _Step(node, layer=self.flatten_for_view(node))]
        call = ast.Call(func=node.func, args=[node.func.value, *node.args], keywords=node.keywords)
        ast.copy_location(call, node)
        layer = self.functional_layer(call, f"torch.{method}", FUNCTIONALS[method])
        return [*inner, _Step(node, layer=layer, first_output=first_output)]

    def flatten_for_view(self, node: ast.Call) -> LayerSpec:
        """``x.view(batch, -1)`` keeps the batch dimension and flattens the rest: nn.Flatten()."""
        args = node.args[0].elts if len(node.args) == 1 and isinstance(node.args[0], ast.Tuple) else node.args
        if len(args) != 2:
            raise Unsupported(node, "a view/reshape other than (batch, -1) has no layer in the catalog")
        batch, rest = args
        keeps_batch = self.importer_is_batch(batch)
        if keeps_batch and _is_minus_one(rest):
            self.importer.info(node, "read as nn.Flatten(): keeps the batch dimension, flattens the rest")
        elif _is_minus_one(batch) and isinstance(rest, ast.Constant | ast.BinOp | ast.Name):
            self.importer.info(
                node, "read as nn.Flatten(): -1 first assumes the batch dimension is kept and the rest flattened"
            )
        else:
            raise Unsupported(node, "a view/reshape other than (batch, -1) has no layer in the catalog")
        return LayerSpec(type="Flatten")

    def importer_is_batch(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.aux
        return self.is_size(node)

    def function_call(self, node: ast.Call, qualified: str, function: Functional, first_output: bool) -> list[_Step]:
        tensor = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "input"), None)
        if tensor is None:
            raise Unsupported(node, f"{qualified}() is called without the tensor")
        inner = self.chain(tensor, False)
        layer = self.functional_layer(node, qualified, function)
        return [*inner, _Step(node, layer=layer, first_output=first_output)]

    def functional_layer(self, node: ast.Call, qualified: str, function: Functional) -> LayerSpec:
        """The nn layer computing a function call, its arguments renamed to the layer's."""
        importer = self.importer
        entry = catalog()[function.layer]
        given = importer.bind_arguments(
            ast.Call(func=node.func, args=node.args[1:], keywords=[k for k in node.keywords if k.arg != "input"]),
            function.args,
            qualified,
        )
        params: dict[str, Any] = dict(function.fixed)
        for name, value_node in given.items():
            if name == "training":
                if _dotted(value_node) != "self.training":
                    importer.note(node, EVAL_DROPOUT)
                continue
            value = importer.param_value(entry, name, value_node, Scope(), node)
            if value is not _MISSING:
                params[name] = value
        if "training" in function.args and "training" not in given:
            importer.note(node, EVAL_DROPOUT)
        short = qualified.replace(f"{FUNCTIONAL}.", "F.")
        importer.info(node, f"{short}() imported as the layer nn.{function.layer}")
        return LayerSpec(type=function.layer, params=params)


TENSOR_METHODS: frozenset[str] = TORCH_FUNCTIONS | {"view", "reshape"}


def _is_counter_name(attr: str, layer_type: str) -> bool:
    """``linear1``, ``avg_pool2d1``, ``relu``: a name made from the type, which a label would only repeat."""
    return re.fullmatch(re.escape(layer_type.lower()) + r"\d*", attr.replace("_", "").lower()) is not None


def _functional_for(qualified: str) -> Functional | None:
    module, _, name = qualified.rpartition(".")
    if module == FUNCTIONAL or (module == "torch" and name in TORCH_FUNCTIONS):
        return FUNCTIONALS.get(name)
    return None


def _call_why(qualified: str, func: ast.expr) -> str:
    if qualified.startswith(f"{FUNCTIONAL}."):
        return f"{qualified.replace(FUNCTIONAL, 'F')}() has no equivalent layer in the catalog"
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        return f"self.{func.attr}() is a method, not a layer"
    if qualified.startswith("torch."):
        return f"{qualified}() combines or reshapes tensors; it has no layer in the catalog"
    return f"`{qualified or ast.unparse(func)}(...)` is not a layer call"


def _statement_why(stmt: ast.stmt) -> str:
    if isinstance(stmt, ast.If):
        return "a branch (if) in forward: the path depends on run-time values"
    if isinstance(stmt, ast.For | ast.While):
        return f"a loop ({type(stmt).__name__.lower()}) in forward: its layers are only known when the code runs"
    if isinstance(stmt, ast.AugAssign):
        return "in-place arithmetic on the tensor (x += ...); a stack is a straight chain"
    return f"a {type(stmt).__name__} statement in forward is not a layer call"


def _first_name(target: ast.expr) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Tuple) and target.elts and isinstance(target.elts[0], ast.Name):
        return target.elts[0].id
    return None


def _is_minus_one(node: ast.expr) -> bool:
    try:
        return literal(node, Scope()) == -1
    except NotLiteral:
        return False


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


def positional_names(layer_type: str) -> tuple[str, ...]:
    """The constructor's positional order, hidden arguments included so later ones keep their position."""
    if layer_type in POSITIONAL_OVERRIDES:
        return POSITIONAL_OVERRIDES[layer_type]
    cls = getattr(nn, layer_type)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return tuple(p.name for p in catalog()[layer_type].params if not p.keyword_only)
    return tuple(p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


# ---------------------------------------------------------------------------------------------- the paste's model


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


def read_toplevel(importer: _Importer) -> _TopLevel:
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


def _read_toplevel_call(importer: _Importer, top: _TopLevel, stmt: ast.stmt, call: ast.Call, name: str | None) -> None:
    core = _model_core(call)
    callee = (importer.resolve(core.func) if isinstance(core, ast.Call) else None) or ""
    if _builds_model(importer, callee):
        top.candidates.append(_Candidate(call, stmt, name, top.scope.copy()))
    elif callee in TENSOR_FACTORIES and name:
        top.tensors[name] = call


def _read_model_uses(importer: _Importer, top: _TopLevel, stmt: ast.stmt) -> None:
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


def _builds_model(importer: _Importer, callee: str) -> bool:
    if callee == f"{NN}.Sequential" or callee in importer.module_classes:
        return True
    if callee.startswith(f"{NN}.") and callee.rsplit(".", 1)[-1] in catalog():
        return True
    return callee in importer.functions and _returns_model(importer, importer.functions[callee])


def _returns_model(importer: _Importer, func: ast.FunctionDef) -> bool:
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


def choose_model(importer: _Importer, top: _TopLevel) -> tuple[ast.AST, list[LayerSpec]]:
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


def _note_other_models(importer: _Importer, candidates: list[_Candidate], chosen: _Candidate) -> None:
    used = {n.id for n in ast.walk(chosen.stmt) if isinstance(n, ast.Name)}
    for other in candidates[:-1]:
        if other.name is None or other.name not in used:
            importer.info(other.stmt, f"another model; only the last one (line {chosen.stmt.lineno}) is imported")


def _model_classes(importer: _Importer) -> list[ast.ClassDef]:
    """Module classes no other class or function of the paste uses: the candidates for the model itself."""
    used: set[str] = set()
    for node in [*importer.classes.values(), *importer.functions.values()]:
        used |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id != getattr(node, "name", "")}
    return [importer.classes[name] for name in importer.classes if name in importer.module_classes
            and name not in used and name != "Stackable"]  # fmt: skip


# ---------------------------------------------------------------------------------------------- the input


def read_input(importer: _Importer, top: _TopLevel, chosen: ast.AST) -> tuple[tuple[int, ...] | None, DType | None]:
    """Input shape and dtype the paste states: INPUT_SHAPE / INPUT_DTYPE, or the dummy tensor fed to the model."""
    shape = dtype = None
    if "INPUT_DTYPE" in top.constants:
        dtype = _dtype_of(importer, top.constants["INPUT_DTYPE"])
    if "INPUT_SHAPE" in top.constants:
        shape = _shape_of(importer, top.constants["INPUT_SHAPE"], top.scope)
    if shape is None:
        call = _dummy_tensor(importer, top, chosen)
        if call is not None:
            shape, tensor_dtype = _tensor_shape(importer, call, top.scope)
            dtype = dtype or tensor_dtype
            if shape is not None:
                importer.info(call, f"input shape {shape} taken from the tensor fed to the model")
    return shape, dtype or importer.model_dtype


def _dtype_of(importer: _Importer, node: ast.expr) -> DType | None:
    name = importer.resolve(node) or (node.value if isinstance(node, ast.Constant) else "")
    dtype = DTYPES.get(str(name)) or DTYPES.get(f"torch.{name}")
    if dtype is None:
        importer.note(node, f"INPUT_DTYPE must be one of {', '.join(DTYPES)}; float32 is used")
    return dtype


def _shape_of(importer: _Importer, node: ast.expr, scope: Scope) -> tuple[int, ...] | None:
    try:
        value = literal(node, scope)
        shape = tuple(value) if isinstance(value, list) else (value,)
        return InputSpec(shape=shape).shape
    except NotLiteral as error:
        importer.note(error.node, f"the input shape is not a literal ({error.why}); a shape is chosen instead")
    except (TypeError, ValueError):
        importer.note(node, "the input shape must be up to 6 whole numbers of at least 1; a shape is chosen instead")
    return None


def _dummy_tensor(importer: _Importer, top: _TopLevel, chosen: ast.AST) -> ast.Call | None:
    """The tensor the paste feeds its model (``net(X)``), or its only dummy tensor."""
    fed = top.model_inputs.get(_assigned_name(chosen) or "") if isinstance(chosen, ast.stmt) else None
    if isinstance(fed, ast.Call) and importer.resolve(fed.func) in TENSOR_FACTORIES:
        return fed
    if isinstance(fed, ast.Name) and fed.id in top.tensors:
        return top.tensors[fed.id]
    return next(iter(top.tensors.values())) if len(top.tensors) == 1 else None


def _tensor_shape(importer: _Importer, call: ast.Call, scope: Scope) -> tuple[tuple[int, ...] | None, DType | None]:
    """The shape of torch.rand(2, 20), torch.rand(size=(2, 20)), torch.randint(0, 10, (2, 16))."""
    callee = importer.resolve(call.func) or ""
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    dtype = _dtype_of(importer, keywords["dtype"]) if "dtype" in keywords else None
    if callee == "torch.randint":
        dtype = dtype or DType.INT64
        size = keywords.get("size", call.args[-1] if call.args else None)
        sizes = [size] if size is not None else []
    else:
        sizes = [keywords["size"]] if "size" in keywords else list(call.args)
    try:
        values = [literal(s, scope) for s in sizes]
    except NotLiteral:
        return None, dtype
    flat = values[0] if len(values) == 1 and isinstance(values[0], list) else values
    try:
        return InputSpec(shape=tuple(flat)).shape, dtype
    except (TypeError, ValueError):
        return None, dtype


# Inputs tried, in order, when the paste does not state one: the first that runs through the stack is used.
SPATIAL: dict[int, tuple[tuple[int, ...], ...]] = {1: ((64,),), 2: ((28, 28), (32, 32), (224, 224)), 3: ((16, 16, 16),)}
SEQUENCE = (2, 8)  # (length, batch) or (batch, length) for recurrent and attention layers
FALLBACK_SHAPE = (2, 20)


def shape_candidates(layers: list[LayerSpec]) -> list[tuple[int, ...]]:
    """Inputs the first informative layer accepts (layers that keep any shape are looked through)."""
    for layer in layers:
        entry = catalog().get(layer.type)
        if entry is None:
            return []
        shapes = _shapes_for(layer, entry)
        if shapes:
            return shapes
        if entry.category not in (Category.ACTIVATION, Category.DROPOUT) and layer.type != "Flatten":
            return []
    return []


def _shapes_for(layer: LayerSpec, entry: LayerEntry) -> list[tuple[int, ...]]:
    params = {**{p.name: p.default for p in entry.params}, **layer.params}
    rank = re.search(r"([123])d$", layer.type)
    if rank:
        channels = params.get("in_channels") or params.get("num_features") or params.get("num_channels")
        options = [channels] if channels else [1, 3]
        return [(1, c, *size) for size in SPATIAL[int(rank.group(1))] for c in options]
    for name in ("in_features", "in1_features", "num_features", "num_channels"):
        if params.get(name):
            return [(2, params[name])]
    for name in ("input_size", "embed_dim", "d_model"):
        if params.get(name):
            return [(*SEQUENCE, params[name])]
    if layer.type in ("Embedding", "EmbeddingBag"):
        return [(2, 16)]
    if layer.type == "LayerNorm":
        shape = params["normalized_shape"]
        return [(2, *(shape if isinstance(shape, list) else [shape]))]
    return []


def choose_input(
    importer: _Importer, layers: list[LayerSpec], stated: tuple[tuple[int, ...] | None, DType | None], where: ast.AST
) -> InputSpec:
    """The stated input, else the first candidate the stack runs on (tried only without custom layers)."""
    shape, dtype = stated
    if dtype is None and layers and layers[0].type in ("Embedding", "EmbeddingBag"):
        dtype = DType.INT64
        importer.info(where, "the first layer is an embedding: the input holds int64 token ids")
    dtype = dtype or DType.FLOAT32
    if shape is not None:
        return InputSpec(shape=shape, dtype=dtype)
    candidates = shape_candidates(layers) or [FALLBACK_SHAPE]
    chosen = _first_that_runs(layers, candidates, dtype) if not importer.custom else None
    spec = InputSpec(shape=chosen or candidates[0], dtype=dtype)
    if chosen:
        why = "the first input shape tried that runs through the stack"
    elif importer.custom:
        why = "custom layers are not run while importing"
    else:
        why = "no input tried runs through the stack" if len(candidates) > 1 else "the first layer does not tell"
    importer.note(
        where,
        f"the code states no input (INPUT_SHAPE, or a tensor fed to the model): using {spec.shape}, {why}; "
        "set the real one",
        Severity.INFO if chosen else Severity.WARNING,
    )
    return spec


def _first_that_runs(layers: list[LayerSpec], shapes: list[tuple[int, ...]], dtype: DType) -> tuple[int, ...] | None:
    from builder.inference import infer_shapes

    for shape in shapes:
        design = Design(input=InputSpec(shape=shape, dtype=dtype), layers=tuple(layers))
        try:
            if infer_shapes(design).ok:
                return shape
        except DesignError:
            return None
    return None


# ---------------------------------------------------------------------------------------------- entry point


def parse_source(source: str) -> ast.Module:
    """The syntax tree of the pasted code, or ImportFailed naming the line of the syntax error."""
    try:
        return ast.parse(source)
    except SyntaxError as error:
        where = f"line {error.lineno}, column {error.offset}" if error.lineno else "the code"
        raise ImportFailed(f"{where}: {error.msg}; the code must be valid Python to be imported") from None
    except (ValueError, RecursionError, MemoryError) as error:  # null bytes; absurdly deep nesting
        raise ImportFailed(f"the code cannot be parsed ({type(error).__name__}: {error})") from None


def import_code(source: str, name: str = "imported", input_shape: tuple[int, ...] | None = None) -> ImportResult:
    """Read PyTorch code into a design, statically: nothing in ``source`` is executed.

    Args:
        source: Python code holding an ``nn.Sequential(...)`` expression or assignment, a function returning one,
            or an ``nn.Module`` class whose ``forward`` chains its sub-modules.
        name: the design's name.
        input_shape: the input shape, batch included; else the code's ``INPUT_SHAPE``, or the tensor it feeds
            the model, or one chosen from the first layer (with a note).

    Returns:
        An ImportResult: the validated design and the notes on every construct translated, replaced or skipped.

    Raises:
        ImportFailed: the code does not parse, or holds no layer that can be imported.
    """
    importer = _Importer(source, parse_source(source))
    top = read_toplevel(importer)
    try:
        chosen, layers = choose_model(importer, top)
    except RecursionError:
        raise ImportFailed("the code nests expressions too deeply to be read") from None
    if not layers:
        raise ImportFailed(_nothing_message(importer))
    stated = read_input(importer, top, chosen)
    if input_shape is not None:
        stated = (_given_shape(input_shape), stated[1])
    spec = choose_input(importer, layers, stated, chosen)
    design = Design(name=name, input=spec, layers=tuple(layers), custom_layers=tuple(importer.custom.values()))
    notes = sorted(importer.notes, key=lambda n: n.line)
    return ImportResult(validate_design(design), tuple(notes))


def _given_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return InputSpec(shape=tuple(shape)).shape
    except ValueError:
        raise DesignError(f"input_shape: expected 1 to 6 sizes of at least 1, got {shape!r}") from None


def _nothing_message(importer: _Importer) -> str:
    expected = (
        "nothing to import: expected an nn.Sequential(...) expression or assignment, a function returning one, "
        "or an nn.Module class whose forward calls its layers one after another (x = self.layer(x))"
    )
    problems = [str(n) for n in sorted(importer.notes, key=lambda n: n.line) if n.severity is Severity.WARNING]
    return expected + ("".join(f"\n  {p}" for p in problems) if problems else "")
