"""Calls during abstract evaluation: builtins on literals, the paste's functions and classes (``__init__``,
``@d2l.add_to_class`` methods, ``super()``), and methods of lists, module containers and instances.

The state of one evaluation (budget, definitions, what forward called) lives here too; :class:`Evaluator` in
:mod:`builder.importer.evaluate` adds statements and expressions.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from builder.importer import dataflow, flow, flow_tensors, introspect
from builder.importer.definitions import Definitions, imported_from
from builder.importer.syntax import NN
from builder.importer.tensor_ops import exported_tensor_op
from builder.importer.values import (
    MODULE_VALUES,
    Budget,
    ClassRef,
    Function,
    Instance,
    Layer,
    LayerType,
    Learned,
    Modules,
    Opaque,
    Refused,
    Size,
    Super,
    Tensor,
)

if TYPE_CHECKING:
    from builder.importer.reader import Importer

# Builtins a model's construction uses on literals.
BUILTINS: dict[str, Callable[..., Any]] = {
    "len": len, "int": int, "float": float, "round": round, "min": min, "max": max, "abs": abs, "sum": sum,
    "bool": bool, "str": str, "list": list, "tuple": tuple,
    "enumerate": lambda xs, start=0: list(enumerate(xs, start)), "zip": lambda *xs: list(zip(*xs, strict=False)),
}  # fmt: skip
# Calls on a model that do not change its layers (d2l's Module, Lightning, nn.Module).
IGNORED_METHODS: frozenset[str] = frozenset(
    {"save_hyperparameters", "apply", "apply_init", "to", "cuda", "cpu", "double", "float", "eval", "train",
     "register_buffer", "layer_summary", "parameters", "named_parameters"}
)  # fmt: skip

# Methods of a dict the code builds (torchvision's **kwargs: kwargs.pop("image_size", 224)).
DICT_METHODS: frozenset[str] = frozenset({"pop", "get", "setdefault", "update", "keys", "values", "items", "copy"})
# torchvision's weight enums: ``W.verify(None)`` is None (no pretrained weights), whichever W.
WEIGHT_ENUMS: frozenset[str] = frozenset({"torchvision.models._api.WeightsEnum", "WeightsEnum"})

# The book's data sets: (channels, height, width) of an image; the model's input when the code states none.
DATASETS: dict[str, tuple[int, int, int]] = {"FashionMNIST": (1, 28, 28), "load_data_fashion_mnist": (1, 28, 28)}
STACKABLE = "Stackable"  # the exported code's adapter for layers taking x more than once


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class Invocation(Definitions):
    """The state of one abstract evaluation and its calls; expressions and statements come from the subclass."""

    def __init__(self, importer: Importer, budget: Budget | None = None) -> None:
        self.importer = importer
        self.budget = budget or Budget()
        self.steps = 0
        self.depth = 0
        self.globals: dict[str, Any] = {}
        self.methods: dict[str, dict[str, ast.FunctionDef]] = {}
        self.class_attrs: dict[str, dict[str, Any]] = {}
        self.summaries: dict[str, tuple[tuple[int, ...], ast.AST]] = {}  # class -> layer_summary input shape
        self.ignored: set[str] = set()
        self.called: set[int] = set()  # ids of the module values forward called (the rest is never used)
        self.used: set[int] = set()  # ids of the layers and instances already read into entries
        self.dataset: tuple[tuple[int, ...], ast.AST] | None = None  # the last data set's input shape, and where
        self.model: Any = None  # the model value being read (its forward's input is the model's input)

    # -- budget -----------------------------------------------------------------------------------------------

    def tick(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > self.budget.steps:
            raise Refused(node, f"following the code takes more than {self.budget.steps:,} steps; not imported")

    def sized(self, value: Any, node: ast.AST) -> Any:
        if isinstance(value, list | tuple | str) and len(value) > self.budget.size:
            raise Refused(node, f"a sequence of {len(value):,} items is larger than a model needs; not imported")
        return value

    # -- calls ------------------------------------------------------------------------------------------------

    def call(self, node: ast.Call, env: dict[str, Any]) -> Any:
        func = node.func
        if isinstance(func, ast.Name) and func.id not in env and func.id not in self.globals:
            builtin = self.builtin(node, func.id, env)
            if builtin is not _NOT_BUILTIN:
                return builtin
        if isinstance(func, ast.Attribute):
            owner = self.expr(func.value, env) if not self._is_dotted_import(func, env) else None
            if owner is not None and not isinstance(owner, Opaque | LayerType):
                return self.method_call(node, owner, func.attr, env)
        callee = self.expr(func, env)
        return self.apply(node, callee, env)

    def _is_dotted_import(self, func: ast.Attribute, env: dict[str, Any]) -> bool:
        head: ast.expr = func
        while isinstance(head, ast.Attribute):
            head = head.value
        return isinstance(head, ast.Name) and head.id not in env and head.id not in self.globals

    def arguments(self, node: ast.Call, env: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        args = self.items(node.args, env)
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            value = self.expr(keyword.value, env)
            if keyword.arg is None:
                if not isinstance(value, dict):
                    raise Refused(keyword, "**keyword arguments only known at run time")
                kwargs |= value
            else:
                kwargs[keyword.arg] = value
        return args, kwargs

    def builtin(self, node: ast.Call, name: str, env: dict[str, Any]) -> Any:
        if name == "super":
            frame = env.get("__class__"), env.get("self")
            if not isinstance(frame[1], Instance):
                raise Refused(node, "super() outside a method")
            return Super(frame[1], str(frame[0]))
        if name not in BUILTINS and name not in ("range", "print", "isinstance", "hasattr"):
            return _NOT_BUILTIN
        args, kwargs = self.arguments(node, env)
        if name == "print":
            return None
        if name == "isinstance":
            return introspect.is_instance(self, node, args)
        if name == "hasattr":
            return introspect.has_attribute(node, args)
        for value in [*args, *kwargs.values()]:
            if isinstance(value, Opaque | Tensor | Size | Instance | Modules | Layer):
                raise Refused(node, f"{name}() of a value only known at run time")
        try:
            if name == "range":
                steps = range(*args)
                if len(steps) > self.budget.size:
                    raise Refused(node, f"a range of {len(steps):,} items is larger than a model needs; not imported")
                return steps
            return self.sized(BUILTINS[name](*args, **kwargs), node)
        except (TypeError, ValueError, OverflowError) as error:
            raise Refused(node, f"{name}() does not evaluate ({error})") from None

    def apply(self, node: ast.Call, callee: Any, env: dict[str, Any]) -> Any:
        """Call a value: a class, a function, a layer type, a module (on a tensor), or something opaque."""
        if isinstance(callee, ClassRef):
            return self.instantiate(node, callee.name, env)
        if isinstance(callee, Function):
            args, kwargs = self.arguments(node, env)
            return self.invoke(node, callee, args, kwargs)
        if isinstance(callee, LayerType):
            return flow.build_layer(self, node, callee.name, env)
        if isinstance(callee, MODULE_VALUES):
            args, kwargs = self.arguments(node, env)
            return flow.call_module(self, node, callee, args, kwargs)
        if isinstance(callee, introspect.Partial):
            return flow.build_layer(self, introspect.partial_call(node, callee), callee.callee.name, env)
        if isinstance(callee, Opaque):
            return self.opaque_call(node, callee, env)
        raise Refused(node, "calls something that is not a function, a class or a layer")

    def opaque_call(self, node: ast.Call, callee: Opaque, env: dict[str, Any]) -> Any:
        qualified = self.importer.resolve(node.func) or ""
        if qualified in flow_tensors.CHECKS:
            self.importer.info(node, f"{qualified}(...) checks the input and computes nothing; not a layer")
            return None
        if qualified == f"{NN}.Parameter":
            return flow_tensors.learned(self, node, env)
        if qualified in ("collections.OrderedDict", introspect.PARTIAL):
            args, kwargs = self.arguments(node, env)
            if qualified == introspect.PARTIAL:
                return introspect.partial(node, args, kwargs)
            return self.sized(dict(*args, **kwargs), node)
        if qualified.rsplit(".", 1)[-1] in DATASETS:
            self.read_dataset(node, qualified.rsplit(".", 1)[-1], env)
        if qualified == f"{NN}.Sequential":
            args, _ = self.arguments(node, env)
            return flow.sequential(self, node, args)
        if qualified in (f"{NN}.ModuleList",):
            args, _ = self.arguments(node, env)
            children = self.iterate(args[0], node) if args else []
            return flow.sequential(self, node, children, sequential=False)
        special = dataflow.tensor_function(self, node, qualified, env)
        if special is not dataflow.NOT_TENSOR:
            return special
        args, _ = self.arguments(node, env) if node.args or node.keywords else ([], {})
        if any(isinstance(a, Tensor) for a in args):
            raise Refused(node, dataflow.why_not_layer(qualified, node))
        if qualified.split(".")[0] not in ("torch", "") and isinstance(node.func, ast.Attribute):
            return Opaque(node, f"{ast.unparse(node.func)} is defined outside the pasted code; paste its definition")
        return Opaque(node, f"`{ast.unparse(node.func)}(...)` is only known when the code runs")

    def read_dataset(self, node: ast.Call, name: str, env: dict[str, Any]) -> None:
        """The image size of the book's data set (``resize=(96, 96)``): the model's input when nothing else says."""
        channels, *size = DATASETS[name]
        resize = next((k.value for k in node.keywords if k.arg == "resize"), None)
        value = self.expr(resize, env) if resize is not None else tuple(size)
        if isinstance(value, int) and not isinstance(value, bool):
            value = (value, value)
        if isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(v, int) for v in value):
            self.dataset = ((1, channels, *value), node)

    def invoke(self, node: ast.AST, func: Function, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run a function of the paste on abstract arguments; its return value."""
        if self.depth >= self.budget.depth:
            raise Refused(node, f"calls nest deeper than {self.budget.depth}; not imported")
        if func.bound is not None:
            args = [func.bound, *args]
        env = self.bind(node, func.node, args, kwargs)
        if func.owner:
            env["__class__"] = func.owner
        self.depth += 1
        try:
            self.block(func.node.body, env)
        except _Return as returned:
            return returned.value
        finally:
            self.depth -= 1
        return None

    def bind(self, node: ast.AST, func: ast.FunctionDef, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        spec = func.args
        positional = [*spec.posonlyargs, *spec.args]
        defaults = [None] * (len(positional) - len(spec.defaults)) + list(spec.defaults)
        env: dict[str, Any] = {}
        for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
            if index < len(args):
                env[arg.arg] = args[index]
            elif arg.arg in kwargs:
                env[arg.arg] = kwargs.pop(arg.arg)
            elif default is not None:
                env[arg.arg] = self.expr(default, {})
            else:
                raise Refused(node, f"{func.name}() is called without its argument {arg.arg}")
        extra = args[len(positional) :]
        if extra and spec.vararg is None:
            raise Refused(node, f"{func.name}() takes {len(positional)} positional arguments, got {len(args)}")
        if spec.vararg is not None:
            env[spec.vararg.arg] = tuple(extra)
        for arg, default in zip(spec.kwonlyargs, spec.kw_defaults, strict=True):
            if arg.arg in kwargs:
                env[arg.arg] = kwargs.pop(arg.arg)
            elif default is not None:
                env[arg.arg] = self.expr(default, {})
            else:
                raise Refused(node, f"{func.name}() is called without its argument {arg.arg}")
        if kwargs and spec.kwarg is None:
            raise Refused(node, f"{func.name}() has no argument {', '.join(kwargs)}")
        if spec.kwarg is not None:
            env[spec.kwarg.arg] = dict(kwargs)
        return env

    def instantiate(self, node: ast.Call, name: str, env: dict[str, Any]) -> Any:
        """A pasted class built: its __init__ (or a pasted base's) evaluated on a fresh instance."""
        if exported_tensor_op(self.importer.classes.get(name)) is not None:  # the builder's own Permute, Reshape
            return flow.build_layer(self, node, name, env)
        args, kwargs = self.arguments(node, env)
        if name == STACKABLE and args and isinstance(args[0], MODULE_VALUES):
            return args[0]  # the exporter's adapter: the layer, called by the catalog's convention
        instance = Instance(name, node)
        found = self.method(name, "__init__")
        if found is None:
            return instance
        init, owner = found
        bound = self.bind(node, init, [instance, *args], dict(kwargs))
        instance.arguments = {k: v for k, v in bound.items() if k != init.args.args[0].arg}
        self.invoke(node, Function(init, owner, instance), args, kwargs)
        return instance

    def method_call(self, node: ast.Call, owner: Any, method: str, env: dict[str, Any]) -> Any:
        """``layers.append(...)``, ``self.net.add_module(...)``, ``self.block(...)``, ``super().__init__()``."""
        if isinstance(owner, Super):
            return self.super_call(node, owner, method, env)
        if isinstance(owner, Tensor | Size):
            return dataflow.tensor_method(self, node, owner, method, env)
        if isinstance(owner, Learned):
            if method != "expand":
                raise Refused(node, f"the learned tensor's .{method}() has no tensor op")
            return flow_tensors.expand(node, owner, self.arguments(node, env)[0])
        if isinstance(owner, Instance) and method in owner.attrs:
            return self.apply(node, owner.attrs[method], env)
        args, kwargs = self.arguments(node, env)
        if isinstance(owner, list) and method in ("append", "extend", "insert"):
            getattr(owner, method)(*args)
            self.sized(owner, node)
            return None
        if isinstance(owner, Modules) and method in ("append", "add_module", "extend", "insert"):
            return flow.add_modules(self, node, owner, method, args)
        if isinstance(owner, Instance):
            return self.instance_method(node, owner, method, args, kwargs)
        if isinstance(owner, MODULE_VALUES) and method in IGNORED_METHODS:
            return self.ignore(node, method, owner)
        if isinstance(owner, ClassRef):
            found = self.method(owner.name, method)
            if found is not None:
                return self.invoke(node, Function(found[0], found[1]), args, kwargs)
            if method == "verify" and args == [None] and self.outside_base(owner.name) in WEIGHT_ENUMS:
                self.importer.info(node, f"{owner.name}.verify(None) is None: no pretrained weights (torchvision's "
                                   "WeightsEnum.verify keeps None)")  # fmt: skip
                return None
        if isinstance(owner, dict) and method in DICT_METHODS:
            try:
                return getattr(owner, method)(*args, **kwargs)
            except (KeyError, TypeError) as error:
                raise Refused(node, f".{method}() does not evaluate ({error})") from None
        if isinstance(owner, str | dict | list | tuple):
            raise Refused(node, f"the method .{method}() of a literal is not followed statically")
        return Opaque(node, f".{method}() is only known when the code runs")

    def instance_method(
        self, node: ast.Call, owner: Instance, method: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        found = self.method(owner.cls, method)
        if found is not None and method != "forward":
            return self.invoke(node, Function(found[0], found[1], owner), args, kwargs)
        if method == "save_hyperparameters":
            owner.attrs |= {k: v for k, v in owner.arguments.items() if k not in owner.attrs}
            return self.ignore(node, method, owner)
        if method == "layer_summary" and args and isinstance(args[0], tuple | list):
            self.summaries[owner.cls] = (tuple(args[0]), node)
            return None
        if method == "children" and not args:
            children = [v for v in owner.attrs.values() if isinstance(v, MODULE_VALUES)]
            return Modules(children, [k for k, v in owner.attrs.items() if isinstance(v, MODULE_VALUES)])
        if method in IGNORED_METHODS:
            return self.ignore(node, method, owner)
        if method == "forward":
            return flow.call_module(self, node, owner, args, kwargs)
        if method in ("add_module", "register_module") and len(args) == 2:
            owner.attrs[str(args[0])] = args[1]
            return None
        if owner.unread is not None and any(isinstance(a, Tensor) for a in args):
            raise owner.unread  # forward calls a layer the missing base would have set
        return Opaque(node, f".{method}() is only known when the code runs")

    def super_call(self, node: ast.Call, owner: Super, method: str, env: dict[str, Any]) -> Any:
        args, kwargs = self.arguments(node, env)
        base = self.base_of(owner.owner)
        found = self.method(base, method) if base else None
        if found is not None:
            return self.invoke(node, Function(found[0], found[1], owner.instance), args, kwargs)
        outside = self.outside_base(owner.owner)
        if outside == f"{NN}.Sequential" and method == "__init__":
            owner.instance.sequential = flow.sequential(self, node, args)
            return None
        if outside is not None and not outside.startswith(f"{NN}.") and method == "__init__":
            base = imported_from(self.importer.tree, outside)
            why = f"{owner.owner} derives from {base}, which is not in the pasted code: paste its definition as well"
            owner.instance.unread = Refused(node, why)
            return None  # its layers are unknown: refused where the model needs them (the book's bases set none)
        if method == "__init__":
            return None
        raise Refused(node, f"super().{method}() of a class outside the paste is not followed")

    def ignore(self, node: ast.AST, method: str, owner: Any) -> Any:
        """Calls that set up training or initialisation: no layer changes, an info note once per method."""
        if method not in self.ignored:
            self.ignored.add(method)
            self.importer.info(node, f".{method}(...) does not change the layers; ignored")
        return owner if method in ("to", "cuda", "cpu", "double", "float", "eval", "train") else None


_NOT_BUILTIN = object()
