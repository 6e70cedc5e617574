"""Custom layers: user-written nn.Module subclasses carried as source in the design.

``layer_signature`` reads the constructor's parameters for a form without running the code (``ast`` only, safe in
the Streamlit server and the CLI); ``check_source`` (from ``builder.sandbox.static``) refuses what a layer has no
business doing. Running custom code is the sandbox's job (``builder.sandbox``); ``define_trusted`` runs it here,
only for code the user vouches for.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from builder.catalog import ParamKind, ParamSpec, catalog, param_spec
from builder.design import CustomLayerSpec, DesignError
from builder.sandbox.static import (
    MAX_SOURCE_CHARS,
    CodeProblem,
    check_source,
    find_class,
    is_constant,
    parse_source,
    require_valid,
    snippet,
)

__all__ = [
    "MAX_SOURCE_CHARS",
    "CodeProblem",
    "check_source",
    "define_trusted",
    "layer_signature",
    "parse_source",
    "require_valid",
]


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
    cls = find_class(tree, name)
    if cls is None:
        raise DesignError(str(CodeProblem(name, f"the code defines no class {name}")))
    return _class_signature(tree, cls)


def _class_signature(tree: ast.Module, cls: ast.ClassDef, depth: int = 0) -> list[ParamSpec]:
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        return [_form_param(arg, default, kind) for arg, default, kind in _init_arguments(init)]
    for base in cls.bases:
        text = snippet(base)
        local = find_class(tree, text)
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
        annotation = snippet(arg.annotation).strip("'\"")
    if default is None:
        value: Any = inspect.Parameter.empty
    elif is_constant(default):
        value = ast.literal_eval(default)
    else:
        spec = param_spec("", inspect.Parameter(arg.arg, kind, default=None, annotation=annotation))
        return replace(spec, default=None, optional=False, kind=spec.kind if annotation else ParamKind.ANY)
    value = list(value) if isinstance(value, tuple) else value
    return param_spec("", inspect.Parameter(arg.arg, kind, default=value, annotation=annotation))
