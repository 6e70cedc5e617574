"""What ``__init__`` asks of the layers it built: their attributes, ``isinstance``, ``hasattr``, ``functools.partial``.

torchvision's initialisation reads ``self.conv_proj.in_channels`` and ``self.conv_proj.kernel_size[0]``, branches on
``isinstance(self.heads.head, nn.Linear)`` and ``hasattr(self.heads, "pre_logits")``, and passes its norm layer as
``partial(nn.LayerNorm, eps=1e-6)``. The answers come from torch itself: the layer is built on the meta device and
its attribute read (a number, a tuple, a flag; a tensor stays unknown), its class checked with ``issubclass``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from torch import nn

from builder.design import DType, LayerSpec
from builder.importer.values import Instance, Layer, LayerType, Modules, Opaque, Refused

if TYPE_CHECKING:
    from builder.importer.evaluate import Evaluator

LITERALS = (bool, int, float, str, type(None))
PARTIAL = "functools.partial"


@dataclass(eq=False)
class Partial:
    """``partial(nn.LayerNorm, eps=1e-6)``: a layer type with some arguments given."""

    callee: LayerType
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


def partial(node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Partial:
    if not args or not isinstance(args[0], LayerType):
        raise Refused(node, "functools.partial of something other than a torch.nn layer is not followed")
    return Partial(args[0], list(args[1:]), dict(kwargs))


def partial_call(node: ast.Call, given: Partial) -> ast.Call:
    """The constructor call a partial stands for: its arguments, then the call's (evaluated with the layer)."""
    from builder.importer.flow import constant

    def literal(value: Any) -> ast.expr:
        made = constant(value, node)
        if made is None:
            raise Refused(node, "a layer argument must be a literal value, not a module or a tensor")
        return made

    keywords = [ast.keyword(arg=k, value=literal(v)) for k, v in given.kwargs.items()]
    args = [literal(a) for a in given.args] + list(node.args)
    return ast.copy_location(ast.Call(given.callee.node, args, keywords + list(node.keywords)), node)


@lru_cache(maxsize=256)
def _built(spec_json: str) -> nn.Module:
    from builder.layer_run import build_layer

    return build_layer(LayerSpec.model_validate_json(spec_json), {}, "meta", DType.FLOAT32)


def layer_attribute(layer: Layer, node: ast.Attribute) -> Any:
    """``self.conv_proj.in_channels``: the attribute of the torch layer (a tensor or a module stays unknown)."""
    try:
        value = getattr(_built(layer.spec.model_dump_json()), node.attr)
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError):
        return Opaque(node, f"the attribute .{node.attr} of {layer.spec.type} is not followed statically")
    if isinstance(value, LITERALS) or (isinstance(value, tuple) and all(isinstance(v, LITERALS) for v in value)):
        return value
    return Opaque(node, f"{layer.spec.type}.{node.attr} is only known when the code runs", present=value is not None)


def modules_attribute(modules: Modules, node: ast.Attribute) -> Any:
    """``self.heads.head``: the child of an nn.Sequential built from an OrderedDict, by name."""
    if node.attr in modules.names:
        return modules.children[modules.names.index(node.attr)]
    return Opaque(node, f"the attribute .{node.attr} of an nn.Sequential is not followed statically")


def is_instance(ev: Evaluator, node: ast.Call, args: list[Any]) -> bool:
    """``isinstance(self.conv_proj, nn.Conv2d)`` for a catalog layer; else refused."""
    value, kinds = [*args, None, None][:2]
    kinds = list(kinds) if isinstance(kinds, tuple | list) else [kinds]
    if not isinstance(value, Layer | Instance | Modules) or not all(isinstance(k, LayerType) for k in kinds):
        raise Refused(node, "isinstance() is read only for a layer of the model and torch.nn layer types")
    if isinstance(value, Modules):
        return False  # an nn.Sequential or nn.ModuleList is no catalog layer
    bases = _torch_bases(ev, node, value.cls) if isinstance(value, Instance) else [getattr(nn, value.spec.type, None)]
    return any(base is not None and issubclass(base, getattr(nn, k.name)) for base in bases for k in kinds)


def _torch_bases(ev: Evaluator, node: ast.AST, cls: str) -> list[type]:
    """The torch.nn classes a pasted class derives from, through its pasted bases; refused when one is unknown."""
    found: list[type] = []
    current: str | None = cls
    while current is not None:
        pasted = ev.importer.classes[current]
        for base in pasted.bases:
            name = ev.importer._base_name(base) or ""
            if name in ev.importer.classes:
                continue
            if not (name.startswith("torch.nn.") and hasattr(nn, name.rsplit(".", 1)[-1])):
                raise Refused(node, f"isinstance() of {cls}, which derives from {name or 'a computed base'}")
            found.append(getattr(nn, name.rsplit(".", 1)[-1]))
        current = ev.base_of(current)
    return found


def has_attribute(node: ast.Call, args: list[Any]) -> bool:
    """``hasattr(self.heads, "pre_logits")`` for a module the code built."""
    value, name = [*args, None, None][:2]
    if isinstance(value, Modules) and isinstance(name, str):
        return name in value.names
    if isinstance(value, Instance) and isinstance(name, str):
        return name in value.attrs
    if isinstance(value, Layer) and isinstance(name, str):
        return hasattr(_built(value.spec.model_dump_json()), name)
    raise Refused(node, "hasattr() is read only for a module the code built and a literal name")
