"""Modules during abstract evaluation: layers built from calls, containers, and the entries a module stands for.

A pasted class's ``forward`` is evaluated on a :class:`~builder.importer.values.Tensor` and a module called on it
appends its entries; the data flow between calls (merges into blocks, functions and methods on the tensor) is
:mod:`builder.importer.dataflow`, the tensor operations and learned tensors :mod:`builder.importer.flow_tensors`.
"""

from __future__ import annotations

import ast
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from builder.adapters import CALLS
from builder.catalog import CallStyle, call_style, catalog
from builder.design import Entry, LayerSpec, is_block
from builder.importer import flow_tensors
from builder.importer.classes import _is_counter_name
from builder.importer.literals import Scope
from builder.importer.values import (
    MODULE_VALUES,
    Function,
    Instance,
    Layer,
    Modules,
    Opaque,
    Refused,
    Tensor,
)

if TYPE_CHECKING:
    from builder.importer.evaluate import Evaluator

LITERALS = (bool, int, float, str, type(None))


# ---------------------------------------------------------------------------------------------- building modules


def constant(value: Any, like: ast.AST) -> ast.expr | None:
    """An expression node holding a literal value, placed where ``like`` is (so notes quote the source)."""
    if isinstance(value, list | tuple):
        items = [constant(v, like) for v in value]
        if any(item is None for item in items):
            return None
        node: ast.expr = ast.Tuple(elts=items, ctx=ast.Load())
    elif isinstance(value, LITERALS):
        node = ast.Constant(value=value)
    else:
        return None
    return ast.copy_location(node, like)


def literal_call(ev: Evaluator, node: ast.Call, env: dict[str, Any], skip: int = 0) -> ast.Call:
    """``node`` with every argument after the first ``skip`` replaced by its evaluated literal value."""
    args: list[ast.expr] = []
    for index, arg in enumerate(node.args):
        if index < skip:
            args.append(arg)
            continue
        values = ev.iterate(ev.expr(arg.value, env), arg) if isinstance(arg, ast.Starred) else None
        if values is not None:
            args += [_literal_node(ev, v, arg) for v in values]
        else:
            args.append(_literal_node(ev, ev.expr(arg, env), arg))
    keywords: list[ast.keyword] = []
    for k in node.keywords:
        value = ev.expr(k.value, env)
        if k.arg is None and isinstance(value, dict):  # **params, a dict the code built: its items
            keywords += [ast.keyword(arg=str(n), value=_literal_node(ev, v, k.value)) for n, v in value.items()]
        else:
            keywords.append(ast.keyword(arg=k.arg, value=_literal_node(ev, value, k.value) if k.arg else k.value))
    return ast.copy_location(ast.Call(func=node.func, args=args, keywords=keywords), node)


def _literal_node(ev: Evaluator, value: Any, node: ast.expr) -> ast.expr:
    made = constant(value, node)
    if made is not None:
        return made
    if isinstance(value, Opaque) and isinstance(node, ast.Name | ast.Attribute):
        return node  # an activation function, self.training: the layer reader judges it
    if isinstance(value, Opaque):
        raise Refused(value.node, f"a layer argument only known at run time ({value.why})")
    raise Refused(node, "a layer argument must be a literal value, not a module or a tensor")


def build_layer(ev: Evaluator, node: ast.Call, layer_type: str, env: dict[str, Any]) -> Layer:
    """A catalog layer from its constructor call, the arguments evaluated first."""
    call = literal_call(ev, node, env)
    return Layer(ev.importer.layer_from_call(call, layer_type, Scope()))


def sequential(ev: Evaluator, node: ast.AST, children: list[Any], sequential: bool = True) -> Modules:
    """``nn.Sequential(a, b)``, or ``nn.Sequential(OrderedDict)`` whose keys name the layers."""
    if len(children) == 1 and isinstance(children[0], dict):
        named = children[0]
        return Modules([_check_module(c, node) for c in named.values()], [str(k) for k in named], sequential)
    for child in children:
        _check_module(child, node)
    return Modules(list(children), [str(i) for i in range(len(children))], sequential)


def add_modules(ev: Evaluator, node: ast.Call, owner: Modules, method: str, args: list[Any]) -> None:
    """``seq.add_module(name, m)``, ``seq.append(m)``, ``modules.extend([...])``."""
    if method == "add_module" and len(args) == 2:
        owner.children.append(_check_module(args[1], node))
        owner.names.append(str(args[0]))
    elif method == "append" and len(args) == 1:
        owner.children.append(_check_module(args[0], node))
        owner.names.append(str(len(owner.names)))
    elif method == "extend" and len(args) == 1:
        for child in ev.iterate(args[0], node):
            add_modules(ev, node, owner, "append", [child])
    else:
        raise Refused(node, f".{method}() on a module container is not followed statically")
    ev.sized(owner.children, node)


def _check_module(value: Any, node: ast.AST) -> Any:
    if isinstance(value, Opaque):
        raise Refused(value.node, f"not a layer the builder can read ({value.why})")
    if not isinstance(value, MODULE_VALUES):
        raise Refused(node, f"a {type(value).__name__} where a layer is expected")
    return value


# ---------------------------------------------------------------------------------------------- modules -> entries


def module_entries(ev: Evaluator, value: Any, node: ast.AST) -> list[Entry]:
    """The design entries a module value stands for, in order."""
    _check_module(value, node)
    if isinstance(value, Modules):
        if not value.sequential:
            raise Refused(node, "an nn.ModuleList is not called; forward picks its layers (loop over it instead)")
        return [entry for child in value.children for entry in module_entries(ev, child, node)]
    _first_use(ev, value, node)
    if isinstance(value, Layer):
        return [value.spec]
    return instance_entries(ev, value)


def _first_use(ev: Evaluator, value: Layer | Instance, node: ast.AST) -> None:
    """A module object with parameters used twice shares them: refused here (the chain reader ties one layer)."""
    if id(value) in ev.used and (isinstance(value, Instance) or _has_parameters(value.spec)):
        what = value.cls if isinstance(value, Instance) else value.spec.type
        raise Refused(
            node,
            f"the same {what} object is used a second time, sharing its parameters; reading it as new layers would "
            "add parameters the code does not have",
        )
    ev.used.add(id(value))


@lru_cache(maxsize=512)
def _parameters_of(layer_type: str, params: str) -> bool:
    with torch.device("meta"):
        module = getattr(nn, layer_type)(**json.loads(params))
    return any(True for _ in module.parameters())


def _has_parameters(spec: LayerSpec) -> bool:
    if not hasattr(nn, spec.type):
        return True  # a custom layer: assume it has some
    try:
        return _parameters_of(spec.type, json.dumps(spec.params, sort_keys=True))
    except (TypeError, ValueError, RuntimeError):
        return True


def repeated(entries: list[Entry]) -> list[Entry]:
    """Consecutive identical blocks as one block with ``repeat``: each copy keeps its own parameters, as in the
    code that built them one by one (DenseNet's convolution blocks, ResNet's identity blocks)."""
    compact: list[Entry] = []
    for entry in entries:
        if is_block(entry):
            entry = entry.with_stacks([tuple(repeated(list(stack.entries))) for stack in entry.stacks()])
        previous = compact[-1] if compact else None
        if previous is not None and is_block(entry) and _same_block(previous, entry):
            compact[-1] = previous.model_copy(update={"repeat": previous.repeat + entry.repeat})
        else:
            compact.append(entry)
    return compact


def _same_block(first: Entry, second: Entry) -> bool:
    fields = {"repeat", "id"}
    return is_block(first) and first.model_dump(exclude=fields) == second.model_dump(exclude=fields)


def instance_entries(ev: Evaluator, instance: Instance) -> list[Entry]:
    """A pasted class's forward as entries; its self.net when it has no forward (the book's d2l style)."""
    cls = ev.importer.classes[instance.cls]
    found = ev.method(instance.cls, "forward")
    if found is None and instance.sequential is not None:  # an nn.Sequential subclass: its layers in order
        ev.called.add(id(instance.sequential))
        return module_entries(ev, instance.sequential, cls)
    if found is None:
        net = instance.attrs.get("net")
        if not isinstance(net, MODULE_VALUES) and instance.unread is not None:
            raise instance.unread
        if not isinstance(net, MODULE_VALUES):
            raise Refused(
                cls, f"{instance.cls} has no forward method and sets no self.net; its layers' order is unknown"
            )
        ev.importer.info(
            cls,
            f"{instance.cls} has no forward of its own (its base comes from outside the paste): the model is "
            "self.net, which the book's d2l.Module.forward calls",
        )
        return module_entries(ev, net, cls)
    forward, owner = found
    result = ev.invoke(forward, Function(forward, owner, instance), [Tensor(root=instance is ev.model)], {})
    if not isinstance(result, Tensor):
        raise Refused(forward, f"{instance.cls}.forward does not return the tensor it computes")
    for name, value in instance.attrs.items():
        if isinstance(value, MODULE_VALUES) and id(value) not in ev.called:
            ev.importer.note(instance.node, f"self.{name} of {instance.cls} is never called in forward; not imported")
    return result.entries()


def call_module(ev: Evaluator, node: ast.Call, module: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``self.conv1(X)``, ``blk(X)``: the tensor goes through the module's entries."""
    if isinstance(module, Layer) and call_style(module.spec.type, module.spec.params) is CallStyle.SELF_ATTENTION:
        return flow_tensors.self_attention(ev, node, module, args, kwargs)
    if not args or not isinstance(args[0], Tensor):
        return Opaque(node, "a model called outside forward")
    if len(args) > 1 or node.keywords:
        raise Refused(node, "a layer called with more than the tensor; a stack passes one tensor")
    return through(ev, node, module, args[0])


def through(ev: Evaluator, node: ast.Call, module: Any, tensor: Tensor, as_stacked: bool = False) -> Tensor:
    """The tensor after the module's entries; ``as_stacked``: the code calls it as the stack does."""
    args = [tensor]
    ev.called.add(id(module))
    entries = module_entries(ev, module, node) if not isinstance(module, Instance) else _nested(ev, module, node)
    if len(entries) == 1 and isinstance(entries[0], LayerSpec) and entries[0].type == "Identity":
        return args[0]  # the same tensor, so a path through nn.Identity() stays the identity of a merge
    if len(entries) == 1 and isinstance(entries[0], LayerSpec) and entries[0].type in catalog() and not as_stacked:
        _check_convention(ev, node, entries[0])
    func = node.func
    if (
        len(entries) == 1
        and isinstance(entries[0], LayerSpec)
        and isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "self"
        and not _is_counter_name(func.attr, entries[0].type)
    ):
        entries = [entries[0].model_copy(update={"label": func.attr})]
    return args[0].then(entries)


def _check_convention(ev: Evaluator, node: ast.Call, layer: LayerSpec) -> None:
    """Warn when forward calls a layer differently from how a stack will (an LSTM's output tuple kept whole)."""
    expected = CALLS[call_style(layer.type, layer.params)]
    if expected != (1, False):
        ev.importer.note(
            node,
            f"forward passes x 1 time(s); {layer.type} stands in a stack with x passed {expected[0]} time(s)"
            f"{', keeping the first output' if expected[1] else ''}, which the design uses",
        )


def _nested(ev: Evaluator, instance: Instance, node: ast.AST) -> list[Entry]:
    """A pasted class inside the model: its forward read as entries, else the class carried as a custom layer."""
    try:
        return instance_entries(ev, instance)
    except Refused as refused:
        cls = ev.importer.classes[instance.cls]
        params = {k: _json(v) for k, v in instance.arguments.items()}
        if ev.method(instance.cls, "forward") is None or any(v is _NOT_JSON for v in params.values()):
            raise
        if instance.cls in catalog():
            raise Refused(cls, f"the pasted class {instance.cls} has the name of a torch.nn layer; rename it") from None
        ev.importer.carry_custom(cls)
        ev.importer.info(
            refused.node,
            f"{instance.cls}.forward is not read as layers ({refused.why}): the class comes in whole, "
            "as a custom layer",
        )
        return [LayerSpec(type=instance.cls, params=params)]


_NOT_JSON = object()


def _json(value: Any) -> Any:
    if isinstance(value, list | tuple):
        items = [_json(v) for v in value]
        return _NOT_JSON if any(i is _NOT_JSON for i in items) else items
    return value if isinstance(value, LITERALS) else _NOT_JSON
