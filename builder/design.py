"""The design: a validated, serialisable description of a model (versioned JSON).

A design is immutable data. Editing functions return a new design, so the app's undo history is a list of
designs and inference can be cached by the design's JSON.

Every string and number of a design reaches a generated file (the exported code, the DOT graph) or torch, so
``validate_design`` bounds them all: sizes, counts and lengths below, finite numbers, identifiers where code
names things, and a safe pattern for layer ids. ``load_design`` and ``design_from_dict`` raise only
``DesignError``, whatever they are given.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import difflib
import functools
import json
import keyword
import math
import re
import reprlib
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator

from builder.catalog import ParamKind, ParamSpec, catalog

FORMAT_VERSION = 1

# Limits: generous for any real design, small enough that a hostile file or link is refused at once.
MAX_DESIGN_CHARS = 2_000_000  # a design file, or the JSON a link inflates to
MAX_LAYERS = 1_000
MAX_CUSTOM_LAYERS = 32
MAX_SOURCE_CHARS = 50_000  # one custom layer's code
MAX_NAME_CHARS = 100  # the design's name, a layer type, a custom layer's name
MAX_LABEL_CHARS = 200
MAX_PARAMS = 64  # arguments of one layer
MAX_TEXT_CHARS = 1_000  # a text argument
MAX_LIST_ITEMS = 256  # a list argument (each nested list too)
MAX_NESTING = 4  # lists inside lists inside an argument
MAX_INT = 2**31 - 1  # a whole-number argument (either sign), and each input size
MAX_INPUT_ELEMENTS = 2**40  # the input's sizes multiplied; the meta device holds it without memory
MAX_DIGITS = 20  # JSON integers longer than this are kept as HugeNumber (int() refuses past 4,300 digits)
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ID_RULE = "1 to 64 letters, digits, '-' or '_' (the pattern [A-Za-z0-9_-]{1,64})"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Modules custom code uses by these names; a custom source may bind them only to these modules.
MODULE_NAMES: dict[str, str] = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional", "math": "math"}
# What builder.export binds at the top of the exported file (tests/test_hostile_designs.py keeps this in step).
EXPORT_NAMES: frozenset[str] = frozenset(
    {*MODULE_NAMES, "build_model", "Stackable", "INPUT_SHAPE", "INPUT_DTYPE", "dummy_input", "main"}
)
# Names no custom layer, and nothing a custom source defines, may take: the exported file or Python needs them.
RESERVED_NAMES: frozenset[str] = EXPORT_NAMES | frozenset({*keyword.kwlist, *keyword.softkwlist, *dir(builtins)})
# Characters that end a line, drive a terminal or reorder text on screen: refused in names and labels ...
UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# ... and in code, except tab, line feed, carriage return and form feed (so code reads as it runs: Trojan Source).
UNSAFE_CODE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxtuple = 2, 60, 60, 6, 6


class DesignError(ValueError):
    """A design that cannot be read or run; the message says where and what to change."""


class HugeNumber:
    """A JSON integer too long for any size or argument, kept by its length (Python refuses to read the longest)."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"a {self.digits:,}-digit number"


class DType(StrEnum):
    """Input dtypes a design may ask for (int64 is for token ids fed to an Embedding)."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"
    INT64 = "int64"


class InputSpec(BaseModel):
    """The dummy input: its full shape, batch dimension included."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shape: tuple[StrictInt, ...] = Field(min_length=1, max_length=6)  # not true, "2" or 2.0
    dtype: DType = DType.FLOAT32

    @field_validator("shape", mode="before")
    @classmethod
    def _not_huge(cls, shape: Any) -> Any:
        huge = next((size for size in shape if isinstance(size, HugeNumber)), None) if isinstance(shape, list) else None
        if huge is not None:
            raise ValueError(f"every size must be a whole number from 1 to {MAX_INT:,}, got {huge!r}")
        return shape

    @field_validator("shape")
    @classmethod
    def _positive(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(size < 1 for size in shape):
            raise ValueError(f"every size must be at least 1, got {_show(list(shape))}")
        return shape


class LayerSpec(BaseModel):
    """One layer of the stack: a torch.nn class name (or a custom layer's name) and its keyword arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    id: str = ""
    label: str = ""


class CustomLayerSpec(BaseModel):
    """A user-written nn.Module subclass, carried as source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    source: str
    params: dict[str, Any] = Field(default_factory=dict)  # the arguments it was checked with; new layers start so


class Design(BaseModel):
    """A model: an input and a stack of layers, plus the custom layers it may use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = FORMAT_VERSION
    name: str = "untitled"
    input: InputSpec
    layers: tuple[LayerSpec, ...] = ()
    custom_layers: tuple[CustomLayerSpec, ...] = ()

    @model_validator(mode="after")
    def _assign_ids(self) -> Design:
        """Give every layer a stable id ("layer-N"), keeping the ids a file already carries."""
        taken = {layer.id for layer in self.layers if layer.id}
        if len(taken) != len([layer for layer in self.layers if layer.id]):
            raise ValueError("layer ids must be unique")
        counter = 0
        layers = []
        for layer in self.layers:
            if not layer.id:
                counter += 1
                while f"layer-{counter}" in taken:
                    counter += 1
                layer = layer.model_copy(update={"id": f"layer-{counter}"})
                taken.add(layer.id)
            layers.append(layer)
        object.__setattr__(self, "layers", tuple(layers))
        return self

    def custom_names(self) -> list[str]:
        """Names of the custom layers, in order."""
        return [c.name for c in self.custom_layers]

    def layer_index(self, layer_id: str) -> int:
        """Position of the layer with this id."""
        for index, layer in enumerate(self.layers):
            if layer.id == layer_id:
                return index
        raise KeyError(layer_id)


# ------------------------------------------------------------------------------------------- showing user values


def _show(value: Any) -> str:
    """A user's value for one line of a message: a short repr, control characters escaped, huge numbers by size."""
    if _is_int(value) and value.bit_length() > 80:  # past 24 digits, the count reads better than the digits
        return f"a {_digits(value):,}-digit number"
    try:
        return _REPR.repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"


def _digits(value: int) -> int:
    """How many decimal digits ``value`` has (str() refuses numbers past 4,300 digits)."""
    try:
        return len(str(abs(value)))
    except ValueError:
        return int(abs(value).bit_length() * math.log10(2)) + 1


def _quoted(text: Any) -> str:
    """A name in quotes ('Conv2D'), or its escaped repr when it is not plain printable text."""
    if isinstance(text, str) and text.isprintable() and len(text) <= MAX_NAME_CHARS and "'" not in text:
        return f"'{text}'"
    return _show(text)


def _plain(text: str) -> str:
    """A layer type as a message shows it: unchanged when plain, else its escaped repr."""
    return text if isinstance(text, str) and text.isprintable() and len(text) <= MAX_NAME_CHARS else _show(text)


def _suggest(word: str, options: list[str]) -> str:
    if len(word) > MAX_NAME_CHARS:
        return ""
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"; did you mean '{close[0]}'?" if close else ""


def _where(index: int, layer: LayerSpec) -> str:
    return f"layers[{index}] ({_plain(layer.type)})"


# ------------------------------------------------------------------------------------------------ values


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def literal_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be an argument in a design, or None: JSON literals only, finite and bounded.

    An argument is null, true/false, a whole number within +-MAX_INT, a finite number, text of at most
    MAX_TEXT_CHARS characters, or a list of these (at most MAX_LIST_ITEMS items, MAX_NESTING deep).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, HugeNumber) or (_is_int(value) and abs(value) > MAX_INT):
        return f"must be between {-MAX_INT:,} and {MAX_INT:,}, got {_show(value)}"
    if _is_int(value):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"must be a finite number, got {value}"
    if isinstance(value, str):
        return _text_value_problem(value)
    if isinstance(value, list | tuple):
        return _list_problem(value, depth)
    return f"must be a number, text, true/false, null or a list of those; got {_show(value)}"


def _text_value_problem(text: str) -> str | None:
    if len(text) > MAX_TEXT_CHARS:
        return f"is {len(text):,} characters long; text arguments hold at most {MAX_TEXT_CHARS:,}"
    if not _is_utf8(text):
        return f"is not valid text (it holds a lone surrogate): {_show(text)}"
    return None


def _is_utf8(text: str) -> bool:
    """False for text holding a lone surrogate, which no file, terminal or page can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _list_problem(items: list | tuple, depth: int) -> str | None:
    if depth >= MAX_NESTING:
        return f"nests lists more than {MAX_NESTING} deep"
    if len(items) > MAX_LIST_ITEMS:
        return f"is a list of {len(items):,} items; at most {MAX_LIST_ITEMS}"
    return next((p for p in (literal_problem(item, depth + 1) for item in items) if p), None)


def _check_number(spec: ParamSpec, value: Any) -> str | None:
    if spec.minimum is not None and value < spec.minimum:
        return f"must be at least {spec.minimum:g}, got {_show(value)}"
    if spec.maximum is not None and value > spec.maximum:
        return f"must be at most {spec.maximum:g}, got {_show(value)}"
    return None


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """Why ``value`` does not fit parameter ``spec``, or None when it does."""
    if value is None:
        return None if spec.optional else "is required" if spec.required else "cannot be null"
    problem = literal_problem(value)
    if problem:
        return problem
    if isinstance(value, str) and value in spec.choices:
        return None
    kind = spec.kind
    if kind is ParamKind.BOOL:
        return None if isinstance(value, bool) else f"must be true or false, got {_show(value)}"
    if kind is ParamKind.INT:
        return _check_number(spec, value) if _is_int(value) else f"must be a whole number, got {_show(value)}"
    if kind is ParamKind.FLOAT:
        return _check_number(spec, value) if _is_float(value) else f"must be a number, got {_show(value)}"
    if kind is ParamKind.CHOICE:
        return f"must be one of {', '.join(spec.choices)}; got {_show(value)}"
    if kind in (ParamKind.INT_OR_TUPLE, ParamKind.FLOAT_OR_TUPLE, ParamKind.SHAPE):
        return _check_sizes(spec, value)
    if kind is ParamKind.STR:
        return None if isinstance(value, str) else f"must be text, got {_show(value)}"
    return None


def _check_sizes(spec: ParamSpec, value: Any) -> str | None:
    is_item = _is_int if spec.kind is not ParamKind.FLOAT_OR_TUPLE else _is_float
    items = value if isinstance(value, list | tuple) else [value]
    if spec.kind is ParamKind.SHAPE and not isinstance(value, list | tuple) and not _is_int(value):
        return f"must be a size or a list of sizes, got {_show(value)}"
    if not items or not all(is_item(v) or (v is None and spec.name == "output_size") for v in items):
        noun = "numbers" if spec.kind is ParamKind.FLOAT_OR_TUPLE else "whole numbers"
        extra = f" or one of {', '.join(spec.choices)}" if spec.choices else ""
        return f"must be a number or a list of {noun}{extra}, got {_show(value)}"
    if isinstance(value, list | tuple) and spec.arity and len(value) not in (1, spec.arity):
        return f"takes one size or {spec.arity} sizes, got {len(value)}: {_show(list(value))}"
    for item in items:
        problem = _check_number(spec, item) if item is not None else None
        if problem:
            return problem
    return None


def shape_problem(shape: Any) -> str | None:
    """Why ``shape`` cannot be an input shape, or None: 1 to 6 sizes from 1 to MAX_INT, MAX_INPUT_ELEMENTS in all."""
    if not isinstance(shape, list | tuple) or not 1 <= len(shape) <= 6:
        return f"must be 1 to 6 sizes, got {_show(shape)}"
    bad = next((size for size in shape if not _is_int(size) or not 1 <= size <= MAX_INT), None)
    if bad is not None:
        return f"every size must be a whole number from 1 to {MAX_INT:,}, got {_show(bad)}"
    elements = math.prod(shape)
    if elements > MAX_INPUT_ELEMENTS:
        return (
            f"{_show(list(shape))} is {elements:,} elements; an input holds at most 2**40 "
            f"({MAX_INPUT_ELEMENTS:,}); use a smaller batch or size"
        )
    return None


def _text_problem(text: str, limit: int) -> str | None:
    """Why a name or label cannot stand in a design, or None: bounded, one line, no control characters."""
    if len(text) > limit:
        return f"is {len(text):,} characters long; at most {limit:,}"
    bad = UNSAFE_TEXT.search(text)
    if bad is not None:
        found = f"U+{ord(bad.group()):04X}"
        return f"must be one line of plain text, without control or text-direction characters (found {found})"
    if not _is_utf8(text):
        return "is not valid text (it holds a lone surrogate)"
    return None


# ------------------------------------------------------------------------------------------------ custom layers


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a custom layer (a class in the exported file), or None."""
    if not IDENTIFIER.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        return f"name {_quoted(name)} must be a Python class name: letters, digits and _, not starting with a digit"
    if name.startswith("__") or name in RESERVED_NAMES:
        return f"name '{name}' is taken by Python or by the exported file; choose another name"
    if name in catalog():
        return f"'{name}' is a torch.nn layer; give the custom layer another name"
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
    from builder.custom import layer_signature  # builder.custom imports this module

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


# ------------------------------------------------------------------------------------------------ layers


def _check_layer_strings(index: int, layer: LayerSpec) -> None:
    """The id (it names the layer in the app and the table) and the label (shown in the graph)."""
    if not isinstance(layer.id, str) or not ID_PATTERN.fullmatch(layer.id):
        raise DesignError(f"{_where(index, layer)}: id {_quoted(layer.id)} must be {ID_RULE}")
    problem = _text_problem(layer.label, MAX_LABEL_CHARS)
    if problem:
        raise DesignError(f"{_where(index, layer)}: label {problem}")


def validate_layer(index: int, layer: LayerSpec, custom: Mapping[str, CustomLayerSpec]) -> None:
    """Refuse an unknown type, an unknown parameter or a value torch would refuse, naming the layer."""
    _check_layer_strings(index, layer)
    if layer.type in custom:
        _check_custom_params(_where(index, layer), layer.params, custom[layer.type])
        return
    entry = catalog().get(layer.type)
    if entry is None:
        hint = _suggest(layer.type, [*catalog(), *custom])
        raise DesignError(f"{_where(index, layer)}: unknown layer type {_quoted(layer.type)}{hint}")
    names = [p.name for p in entry.params]
    for name, value in layer.params.items():
        spec = entry.param(name) if isinstance(name, str) else None
        if spec is None:
            hint = isinstance(name, str) and _suggest(name, names)
            hint = hint or f"; {layer.type} takes: {', '.join(names) or 'no parameters'}"
            raise DesignError(f"{_where(index, layer)}: unknown parameter {_quoted(name)}{hint}")
        problem = check_value(spec, value)
        if problem:
            raise DesignError(f"{_where(index, layer)}: parameter '{name}' {problem}")
    missing = [p.name for p in entry.params if p.required and p.name not in layer.params]
    if missing:
        raise DesignError(f"{_where(index, layer)}: missing required parameter(s) {', '.join(missing)}")


COUNTED: dict[str, str] = {"layers": "layers", "custom_layers": "custom layers"}


def _too_many(field: str, count: int, limit: int) -> str:
    return f"{field}: the design has {count:,} {COUNTED[field]}; a design holds at most {limit:,}"


def _check_sizes_of(design: Design) -> None:
    """The design's own fields and counts: name, input shape, number of layers and custom layers."""
    problem = _text_problem(design.name, MAX_NAME_CHARS) if isinstance(design.name, str) else "must be text"
    if problem:
        raise DesignError(f"name: {problem}")
    problem = shape_problem(design.input.shape)
    if problem:
        raise DesignError(f"input.shape: {problem}")
    if len(design.layers) > MAX_LAYERS:
        raise DesignError(_too_many("layers", len(design.layers), MAX_LAYERS))
    if len(design.custom_layers) > MAX_CUSTOM_LAYERS:
        raise DesignError(_too_many("custom_layers", len(design.custom_layers), MAX_CUSTOM_LAYERS))


def validate_design(design: Design) -> Design:
    """Check every field, layer and custom layer against the limits, the catalog and each other; return the design.

    Raises:
        DesignError: naming the field (``layers[2] (Conv2d): parameter 'stride' ...``) and what to change.
    """
    _check_sizes_of(design)
    custom = design.custom_names()
    if len(set(custom)) != len(custom):
        raise DesignError("custom_layers: two custom layers share a name; rename one")
    for index, spec in enumerate(design.custom_layers):
        _check_custom_layer(index, spec)
    _check_bindings(design.custom_layers)
    by_name = {spec.name: spec for spec in design.custom_layers}
    for index, layer in enumerate(design.layers):
        validate_layer(index, layer, by_name)
    return design


# ------------------------------------------------------------------------------------------------ reading


def _location(loc: list[Any]) -> str:
    parts = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if isinstance(part, str) and IDENTIFIER.fullmatch(part) else f"[{_show(part)}]")
    return "".join(parts).lstrip(".")


def _pydantic_message(error: ValidationError, data: Any) -> str:
    first = error.errors()[0]
    loc = list(first["loc"])
    path = _location(loc)
    if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
        with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
            path += f" (layer type {_plain(data['layers'][loc[1]].get('type', '?'))})"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{path or 'design'}: {message}"


def _check_counts(data: dict[str, Any]) -> None:
    """Refuse a huge stack before pydantic reads it item by item."""
    for field, limit in (("layers", MAX_LAYERS), ("custom_layers", MAX_CUSTOM_LAYERS)):
        items = data.get(field)
        if isinstance(items, list | tuple) and len(items) > limit:
            raise DesignError(_too_many(field, len(items), limit))


def design_from_dict(data: Any) -> Design:
    """Validate a parsed JSON object into a design, or raise DesignError naming the field and the layer."""
    if not isinstance(data, dict):
        raise DesignError("a design file must hold a JSON object with 'input' and 'layers'")
    version = data.get("version", FORMAT_VERSION)
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise DesignError(f"version: this builder reads design format {FORMAT_VERSION}, the file has {_show(version)}")
    _check_counts(data)
    try:
        design = Design.model_validate(data)
    except ValidationError as error:
        raise DesignError(_pydantic_message(error, data)) from None
    except RecursionError:
        raise DesignError("design: the data is nested too deeply; a design nests only a few levels") from None
    return validate_design(design)


def _parse_int(text: str) -> int | HugeNumber:
    return int(text) if len(text) <= MAX_DIGITS else HugeNumber(text)


def load_design(text: str) -> Design:
    """Parse design JSON; malformed JSON is reported with its line and column."""
    if not isinstance(text, str):
        raise DesignError(f"a design is JSON text, not {type(text).__name__}")
    if len(text) > MAX_DESIGN_CHARS:
        size = f"the design is {len(text):,} characters long; a design file holds at most {MAX_DESIGN_CHARS:,}"
        raise DesignError(size)
    try:
        data = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as error:
        raise DesignError(f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
    except RecursionError:
        raise DesignError("not a design: the JSON is nested too deeply; a design nests only a few levels") from None
    return design_from_dict(data)


def dump_design(design: Design) -> str:
    """The design as pretty, stable JSON (the file format)."""
    data = design.model_dump(mode="json")
    for layer in data["layers"]:
        if not layer["label"]:
            del layer["label"]
    for custom in data["custom_layers"]:
        if not custom["params"]:
            del custom["params"]
    return json.dumps(data, indent=2) + "\n"


def file_stem(design: Design) -> str:
    """A safe file name (no suffix) for the design's downloads: "d2l mlp" -> "d2l_mlp"; letters, digits and _."""
    stem = "_".join(re.findall(r"[A-Za-z0-9]+", design.name))[:64].strip("_")
    if not stem:
        return "model"
    return f"model_{stem}" if stem[0].isdigit() else stem


def design_key(design: Design) -> str:
    """A compact, canonical string for caching results by design."""
    return json.dumps(design.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
