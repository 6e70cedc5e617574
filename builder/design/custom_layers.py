"""Checks of custom layers, read with ``ast`` and never run: names, sources, the names a source binds in the
exported file, and the arguments a layer of a custom type is given.
"""

from __future__ import annotations

import ast
import functools
import keyword
from collections.abc import Iterator, Mapping
from typing import Any

from builder.catalog import catalog
from builder.design.limits import (
    IDENTIFIER,
    MAX_NAME_CHARS,
    MAX_PARAMS,
    MAX_SOURCE_CHARS,
    MODULE_NAMES,
    RESERVED_NAMES,
    UNSAFE_CODE,
)
from builder.design.messages import DesignError, _plain, _quoted, _suggest
from builder.design.models import CustomLayerSpec
from builder.design.values import _is_utf8, literal_problem


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a custom layer (a class in the exported file), or None."""
    if not IDENTIFIER.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        return f"name {_quoted(name)} must be a Python class name: letters, digits and _, not starting with a digit"
    if name.startswith("__") or name in RESERVED_NAMES:
        return f"name '{name}' is taken by Python or by the exported file; choose another name"
    if name in catalog():
        what = "a torch.nn layer" if catalog()[name].builtin else "one of the builder's tensor ops"
        return f"'{name}' is {what}; give the custom layer another name"
    return None


def _source_problem(source: str) -> str | None:
    if len(source) > MAX_SOURCE_CHARS:
        return f"the code is {len(source):,} characters long; keep a layer under {MAX_SOURCE_CHARS:,}"
    bad = UNSAFE_CODE.search(source)
    if bad is not None:
        line = source.count("\n", 0, bad.start()) + 1
        return (
            f"line {line} holds the control character U+{ord(bad.group()):04X}, which can make code read "
            f"differently than it runs; remove it"
        )
    if not _is_utf8(source):
        return "the code holds a lone surrogate; paste it again as plain text"
    return None


@functools.lru_cache(maxsize=256)
def _parsed(source: str) -> ast.Module | None:
    """The custom source's syntax tree (read only, never run), or None when it does not parse."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _binding_meaning(node: ast.stmt) -> Iterator[tuple[str, str]]:
    """(name, what it is bound to) for each top-level name a statement binds."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield (alias.asname, alias.name) if alias.asname else (alias.name.split(".")[0], alias.name.split(".")[0])
    elif isinstance(node, ast.ImportFrom):
        for alias in node.names:
            yield alias.asname or alias.name, f"{node.module}.{alias.name}"
    elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        yield node.name, ast.dump(node)
    elif isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = ast.dump(node.value) if node.value is not None else ""
        yield from ((t.id, value) for t in targets if isinstance(t, ast.Name))


def source_bindings(source: str) -> dict[str, str]:
    """Top-level names a custom source binds, each with what it binds (empty when the source does not parse)."""
    return dict(_bindings(source))


@functools.lru_cache(maxsize=256)
def _bindings(source: str) -> tuple[tuple[str, str], ...]:
    tree = _parsed(source)
    if tree is None:
        return ()
    return tuple({name: meaning for node in tree.body for name, meaning in _binding_meaning(node)}.items())


def _binding_problem(name: str, meaning: str) -> str | None:
    if name == "__future__" or meaning == "__future__." + name:
        return None
    if MODULE_NAMES.get(name) == meaning:
        return None
    if name in RESERVED_NAMES or name.startswith("__"):
        return f"its code defines '{name}', a name Python or the exported file needs; rename it"
    return None


def _check_bindings(customs: tuple[CustomLayerSpec, ...]) -> None:
    """Custom sources share the exported file's namespace: refuse two meanings for one name, or a reserved name."""
    seen: dict[str, tuple[str, str]] = {}
    for index, spec in enumerate(customs):
        for name, meaning in source_bindings(spec.source).items():
            problem = _binding_problem(name, meaning)
            if problem:
                raise DesignError(f"custom_layers[{index}] ({spec.name}): {problem}")
            owner, known = seen.setdefault(name, (spec.name, meaning))
            if known != meaning:
                raise DesignError(
                    f"custom_layers[{index}] ({spec.name}): its code defines '{name}', which custom layer {owner}'s "
                    f"code defines differently; rename one (the exported file holds both)"
                )


def _takes_any_keyword(tree: ast.Module, name: str, depth: int = 0) -> bool:
    """Whether class ``name``'s constructor takes ``**kwargs`` (its own, or a base's in the same source)."""
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)
    if cls is None or depth > 20:
        return False
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        return init.args.kwarg is not None
    return any(isinstance(b, ast.Name) and _takes_any_keyword(tree, b.id, depth + 1) for b in cls.bases)


@functools.lru_cache(maxsize=256)
def _accepted_keywords(source: str, name: str) -> tuple[tuple[str, ...], bool]:
    """(parameter names of the constructor, whether it also takes any keyword), read with ast; never run."""
    from builder.custom import layer_signature  # builder.custom imports builder.design

    names = tuple(p.name for p in layer_signature(source, name))
    tree = _parsed(source)
    return names, tree is not None and _takes_any_keyword(tree, name)


def _param_name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        return f"parameter name {_quoted(name)} must be a Python identifier (letters, digits and _)"
    if keyword.iskeyword(name) or name.startswith("__"):
        return f"parameter name '{name}' is a Python keyword or a special name; rename the argument"
    return None


def _check_custom_params(where: str, params: Mapping[str, Any], spec: CustomLayerSpec) -> None:
    """Argument names the constructor accepts, values that are JSON literals; raise DesignError naming the field."""
    if len(params) > MAX_PARAMS:
        raise DesignError(f"{where}: {len(params)} parameters; a layer takes at most {MAX_PARAMS}")
    for name, value in params.items():
        problem = _param_name_problem(name)
        if problem:
            raise DesignError(f"{where}: {problem}")
        try:
            accepted, any_keyword = _accepted_keywords(spec.source, spec.name)
        except (ValueError, TypeError, RecursionError, MemoryError) as error:  # DesignError: a source it cannot read
            raise DesignError(f"{where}: cannot check parameter '{name}': {error}") from None
        if name not in accepted and not any_keyword:
            takes = ", ".join(accepted) or "no parameters"
            hint = _suggest(name, list(accepted)) or f"; its __init__ takes: {takes}"
            raise DesignError(f"{where}: unknown parameter '{name}'{hint}")
        problem = literal_problem(value)
        if problem:
            raise DesignError(f"{where}: parameter '{name}' {problem}")


def _check_custom_layer(index: int, spec: CustomLayerSpec) -> None:
    where = f"custom_layers[{index}] ({_plain(spec.name)})"
    problem = _name_problem(spec.name) or _source_problem(spec.source)
    if problem:
        raise DesignError(f"{where}: {problem}")
    _check_custom_params(f"{where}.params", spec.params, spec)
