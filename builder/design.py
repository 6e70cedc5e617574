"""The design: a validated, serialisable description of a model (versioned JSON).

A design is immutable data. Editing functions return a new design, so the app's undo history is a list of
designs and inference can be cached by the design's JSON.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from builder.catalog import ParamKind, ParamSpec, catalog

FORMAT_VERSION = 1


class DesignError(ValueError):
    """A design that cannot be read or run; the message says where and what to change."""


class DType(StrEnum):
    """Input dtypes a design may ask for (int64 is for token ids fed to an Embedding)."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"
    INT64 = "int64"


class InputSpec(BaseModel):
    """The dummy input: its full shape, batch dimension included."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shape: tuple[int, ...] = Field(min_length=1, max_length=6)
    dtype: DType = DType.FLOAT32

    @field_validator("shape")
    @classmethod
    def _positive(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(size < 1 for size in shape):
            raise ValueError(f"every size must be at least 1, got {list(shape)}")
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


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"; did you mean '{close[0]}'?" if close else ""


def _where(index: int, layer: LayerSpec) -> str:
    return f"layers[{index}] ({layer.type})"


def _check_number(spec: ParamSpec, value: Any) -> str | None:
    if spec.minimum is not None and value < spec.minimum:
        return f"must be at least {spec.minimum:g}, got {value}"
    if spec.maximum is not None and value > spec.maximum:
        return f"must be at most {spec.maximum:g}, got {value}"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """Why ``value`` does not fit parameter ``spec``, or None when it does."""
    if value is None:
        return None if spec.optional else "is required" if spec.required else "cannot be null"
    if isinstance(value, str) and value in spec.choices:
        return None
    kind = spec.kind
    if kind is ParamKind.BOOL:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if kind is ParamKind.INT:
        return _check_number(spec, value) if _is_int(value) else f"must be a whole number, got {value!r}"
    if kind is ParamKind.FLOAT:
        return _check_number(spec, value) if _is_float(value) else f"must be a number, got {value!r}"
    if kind is ParamKind.CHOICE:
        return f"must be one of {', '.join(spec.choices)}; got {value!r}"
    if kind in (ParamKind.INT_OR_TUPLE, ParamKind.FLOAT_OR_TUPLE, ParamKind.SHAPE):
        return _check_sizes(spec, value)
    if kind is ParamKind.STR:
        return None if isinstance(value, str) else f"must be text, got {value!r}"
    return None


def _check_sizes(spec: ParamSpec, value: Any) -> str | None:
    is_item = _is_int if spec.kind is not ParamKind.FLOAT_OR_TUPLE else _is_float
    items = value if isinstance(value, list | tuple) else [value]
    if spec.kind is ParamKind.SHAPE and not isinstance(value, list | tuple) and not _is_int(value):
        return f"must be a size or a list of sizes, got {value!r}"
    if not items or not all(is_item(v) or (v is None and spec.name == "output_size") for v in items):
        noun = "numbers" if spec.kind is ParamKind.FLOAT_OR_TUPLE else "whole numbers"
        extra = f" or one of {', '.join(spec.choices)}" if spec.choices else ""
        return f"must be a number or a list of {noun}{extra}, got {value!r}"
    if isinstance(value, list | tuple) and spec.arity and len(value) not in (1, spec.arity):
        return f"takes one size or {spec.arity} sizes, got {len(value)}: {list(value)}"
    for item in items:
        problem = _check_number(spec, item) if item is not None else None
        if problem:
            return problem
    return None


def validate_layer(index: int, layer: LayerSpec, custom: list[str]) -> None:
    """Refuse an unknown type, an unknown parameter or a value torch would refuse, naming the layer."""
    if layer.type in custom:
        return
    entry = catalog().get(layer.type)
    if entry is None:
        hint = _suggest(layer.type, [*catalog(), *custom])
        raise DesignError(f"{_where(index, layer)}: unknown layer type '{layer.type}'{hint}")
    names = [p.name for p in entry.params]
    for name, value in layer.params.items():
        spec = entry.param(name)
        if spec is None:
            hint = _suggest(name, names) or f"; {layer.type} takes: {', '.join(names) or 'no parameters'}"
            raise DesignError(f"{_where(index, layer)}: unknown parameter '{name}'{hint}")
        problem = check_value(spec, value)
        if problem:
            raise DesignError(f"{_where(index, layer)}: parameter '{name}' {problem}")
    missing = [p.name for p in entry.params if p.required and p.name not in layer.params]
    if missing:
        raise DesignError(f"{_where(index, layer)}: missing required parameter(s) {', '.join(missing)}")


def validate_design(design: Design) -> Design:
    """Check every layer against the catalog and the custom layers; return the design unchanged."""
    custom = design.custom_names()
    if len(set(custom)) != len(custom):
        raise DesignError("custom_layers: two custom layers share a name; rename one")
    clash = [name for name in custom if name in catalog()]
    if clash:
        raise DesignError(f"custom_layers: '{clash[0]}' is a torch.nn layer; give the custom layer another name")
    for index, layer in enumerate(design.layers):
        validate_layer(index, layer, custom)
    return design


def _pydantic_message(error: ValidationError, data: Any) -> str:
    first = error.errors()[0]
    loc = list(first["loc"])
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
        with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
            path += f" (layer type {data['layers'][loc[1]].get('type', '?')})"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{path or 'design'}: {message}"


def design_from_dict(data: Any) -> Design:
    """Validate a parsed JSON object into a design, or raise DesignError naming the field and the layer."""
    if not isinstance(data, dict):
        raise DesignError("a design file must hold a JSON object with 'input' and 'layers'")
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise DesignError(f"version: this builder reads design format {FORMAT_VERSION}, the file has {version!r}")
    try:
        design = Design.model_validate(data)
    except ValidationError as error:
        raise DesignError(_pydantic_message(error, data)) from None
    return validate_design(design)


def load_design(text: str) -> Design:
    """Parse design JSON; malformed JSON is reported with its line and column."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DesignError(f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
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


def design_key(design: Design) -> str:
    """A compact, canonical string for caching results by design."""
    return json.dumps(design.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
