"""The design: a validated, serialisable description of a model (versioned JSON).

A design is immutable data. Editing functions return a new design, so the app's undo history is a list of
designs and inference can be cached by the design's JSON.

A stack entry is a layer or, from format 2 on, a block holding stacks of its own, nested to any depth: a
``Sequential`` (its ``layers``), a ``Residual`` (``merge(shortcut(x), body(x))``) or a ``Parallel``
(``merge(b1(x), b2(x), ...)``). ``walk`` visits every entry of the tree with its place in the file
(``layers[4].body[2]``, as messages name it) and in the trace (``layer-5/body/2``). A file is written in the
lowest format that holds it, so a design without blocks stays a version 1 file.

Every string and number of a design reaches a generated file (the exported code, the DOT graph) or torch, so
``validate_design`` bounds them all: sizes, counts and lengths below, finite numbers, identifiers where code
names things, and a safe pattern for layer ids. ``load_design`` and ``design_from_dict`` raise only
``DesignError``, whatever they are given.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import contextvars
import difflib
import functools
import json
import keyword
import math
import re
import reprlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from builder.catalog import ParamKind, ParamSpec, catalog

FORMAT_VERSION = 2  # the newest format this builder reads and writes
FORMAT_VERSIONS: tuple[int, ...] = (1, 2)  # 2 adds blocks
BLOCKS_VERSION = 2

# Limits: generous for any real design, small enough that a hostile file or link is refused at once.
MAX_DESIGN_CHARS = 2_000_000  # a design file, or the JSON a link inflates to
MAX_LAYERS = 1_000  # entries in the file: layers and blocks, at any depth
MAX_RUN_LAYERS = 10_000  # layers the forward pass runs, each copy of a repeated block counted
MAX_BLOCK_DEPTH = 16  # blocks inside blocks
MAX_REPEAT = 1_000
MAX_BRANCHES = 64  # branches of one Parallel
MAX_DIM = 16  # |dim| of a concat; tensors have at most this many dimensions here
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
# What it binds besides, for designs with blocks (the sequential style's helpers); format 2 reserves these names.
BLOCK_EXPORT_NAMES: frozenset[str] = frozenset({"Residual", "Parallel"})
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


class BlockType(StrEnum):
    """The blocks a stack entry may be (format 2)."""

    SEQUENTIAL = "Sequential"
    RESIDUAL = "Residual"
    PARALLEL = "Parallel"


class Merge(StrEnum):
    """How a Residual or a Parallel combines its stacks' outputs (add and mul follow torch broadcasting)."""

    ADD = "add"
    MUL = "mul"
    CONCAT = "concat"


DEFAULT_DIM = 1  # a concat's dimension unless the block says otherwise (the channels of (N, C, ...))
BLOCK_TYPES: frozenset[str] = frozenset(BlockType)
SHARED = "Shared"  # the entry that reuses an earlier layer's module (parameter tying)
FORMAT2_KINDS: frozenset[str] = BLOCK_TYPES | {SHARED}  # entry types format 2 gives a meaning of its own


class Stack(NamedTuple):
    """One stack of a block: its field (``body``), its branch number in a Parallel, and its entries."""

    field: str
    branch: int | None
    entries: tuple[Entry, ...]

    @property
    def key(self) -> str:
        """The stack in a trace path: ``body``, ``branches/1``."""
        return self.field if self.branch is None else f"{self.field}/{self.branch}"

    @property
    def title(self) -> str:
        """The stack as the table and the graph name it: ``body``, ``branch 2`` (counted from 1)."""
        return self.field if self.branch is None else f"branch {self.branch + 1}"

    def where(self, position: int) -> str:
        """An entry's place in the file, after its block's: ``.body[2]``, ``.branches[1][2]``."""
        return f".{self.field}[{position}]" if self.branch is None else f".{self.field}[{self.branch}][{position}]"


class BlockSpec(BaseModel):
    """What every block has: an id and a label as layers do, and ``repeat`` copies in a row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = ""
    label: str = ""
    repeat: StrictInt = 1  # each copy has its own parameters

    @field_validator("merge", mode="after", check_fields=False)
    @classmethod
    def _known_merge(cls, merge: str) -> str:
        """A known merge becomes a Merge; another stays text, for validate_design to refuse with a suggestion."""
        return Merge(merge) if merge in set(Merge) else merge

    def stacks(self) -> tuple[Stack, ...]:
        """The block's stacks, in the order they are traced and drawn."""
        raise NotImplementedError

    def with_stacks(self, entries: list[tuple[Entry, ...]]) -> BlockSpec:
        """The block with these entries in its stacks (in the order of ``stacks()``)."""
        raise NotImplementedError


class SharedSpec(BaseModel):
    """The same module as an earlier layer, used once more here: ``{"type": "Shared", "of": "layer-3"}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["Shared"] = SHARED
    of: str
    id: str = ""
    label: str = ""

    @property
    def params(self) -> dict[str, Any]:
        """No arguments of its own: they are the shared layer's."""
        return {}


class SequentialBlock(BlockSpec):
    """``layers`` in order (an empty Sequential is the identity)."""

    type: Literal["Sequential"] = "Sequential"
    layers: tuple[Entry, ...] = ()

    def stacks(self) -> tuple[Stack, ...]:
        return (Stack("layers", None, self.layers),)

    def with_stacks(self, entries: list[tuple[Entry, ...]]) -> SequentialBlock:
        return self.model_copy(update={"layers": tuple(entries[0])})


class ResidualBlock(BlockSpec):
    """``merge(shortcut(x), body(x))``: an empty shortcut is the identity; concat puts the shortcut first."""

    type: Literal["Residual"] = "Residual"
    merge: str = Merge.ADD  # checked by validate_design, which names the block and suggests a merge
    dim: StrictInt | None = None  # concat only; DEFAULT_DIM when None
    body: tuple[Entry, ...] = ()
    shortcut: tuple[Entry, ...] = ()

    def stacks(self) -> tuple[Stack, ...]:
        return (Stack("body", None, self.body), Stack("shortcut", None, self.shortcut))

    def with_stacks(self, entries: list[tuple[Entry, ...]]) -> ResidualBlock:
        return self.model_copy(update={"body": tuple(entries[0]), "shortcut": tuple(entries[1])})


class ParallelBlock(BlockSpec):
    """``merge(b1(x), b2(x), ...)`` in branch order; every branch gets x, an empty branch is the identity."""

    type: Literal["Parallel"] = "Parallel"
    merge: str = Merge.CONCAT
    dim: StrictInt | None = None
    branches: tuple[tuple[Entry, ...], ...] = ()

    def stacks(self) -> tuple[Stack, ...]:
        return tuple(Stack("branches", number, branch) for number, branch in enumerate(self.branches))

    def with_stacks(self, entries: list[tuple[Entry, ...]]) -> ParallelBlock:
        return self.model_copy(update={"branches": tuple(tuple(branch) for branch in entries)})


# Set while a version 1 file is read: there every entry is a layer (a custom layer may be called Residual).
_READING_V1: contextvars.ContextVar[bool] = contextvars.ContextVar("reading_v1", default=False)


def _entry_kind(value: Any) -> str:
    """Which model reads an entry: a block type's name for a block, else "layer"."""
    if isinstance(value, BlockSpec | SharedSpec):
        return value.type
    kind = value.get("type") if isinstance(value, dict) else None
    if isinstance(kind, str) and kind in FORMAT2_KINDS and not _READING_V1.get():
        return kind
    return "layer"


Entry = Annotated[
    Union[  # noqa: UP007 (pydantic needs Union here: each member carries its own Tag)
        Annotated[LayerSpec, Tag("layer")],
        Annotated[SharedSpec, Tag(SHARED)],
        Annotated[SequentialBlock, Tag(BlockType.SEQUENTIAL)],
        Annotated[ResidualBlock, Tag(BlockType.RESIDUAL)],
        Annotated[ParallelBlock, Tag(BlockType.PARALLEL)],
    ],
    Discriminator(_entry_kind),
]
ENTRY_TAGS: frozenset[str] = frozenset({"layer", *FORMAT2_KINDS})  # pydantic names these in error locations
for _model in (SequentialBlock, ResidualBlock, ParallelBlock):
    _model.model_rebuild()


def is_block(entry: object) -> bool:
    """Whether a stack entry is a block (else it is a layer)."""
    return isinstance(entry, BlockSpec)


def is_shared(entry: object) -> bool:
    """Whether a stack entry reuses an earlier layer's module (a ``Shared`` entry)."""
    return isinstance(entry, SharedSpec)


def has_shared(design: Design) -> bool:
    """Whether any entry reuses another's module (then the design needs format 2)."""
    return any(is_shared(located.entry) for located in walk(design.layers))


def shared_targets(design: Design) -> dict[str, list[str]]:
    """The ids of the layers other entries share, each with the ids of the Shared entries using it, in order."""
    targets: dict[str, list[str]] = {}
    for located in walk(design.layers):
        if is_shared(located.entry):
            targets.setdefault(located.entry.of, []).append(located.entry.id)
    return targets


def block_merge(block: BlockSpec) -> Merge | None:
    """A Residual's or Parallel's merge (validated), None for a Sequential."""
    merge = getattr(block, "merge", None)
    return None if merge is None else Merge(merge)


def block_dim(block: BlockSpec) -> int:
    """The dimension a concat joins along."""
    dim = getattr(block, "dim", None)
    return DEFAULT_DIM if dim is None else dim


@dataclass(frozen=True)
class Located:
    """An entry of the tree and its place: in the file (``where``), in the trace (``path``), at the top level."""

    entry: Entry
    where: str  # "layers[4].body[2]"
    path: str  # "layer-5/body/2": the top-level entry's id, then each stack's key and the position in it
    index: int  # position of the top-level entry it belongs to
    depth: int  # 0 for top-level entries
    parent: str = ""  # the enclosing block's path ("" at the top level)
    stack: str = ""  # the key of the stack it stands in ("body", "branches/1")

    @property
    def label(self) -> str:
        """``layers[4].body[2] (Conv2d)``: how messages name the entry."""
        return f"{self.where} ({_plain(self.entry.type)})"


def walk(entries: tuple[Entry, ...]) -> Iterator[Located]:
    """Every entry of a stack and of the blocks in it, depth first in stack order (iterative: no recursion)."""
    todo = [Located(entry, f"layers[{i}]", str(entry.id), i, 0) for i, entry in enumerate(entries)][::-1]
    while todo:
        located = todo.pop()
        yield located
        if is_block(located.entry):
            todo += reversed(list(_children(located)))


def _children(located: Located) -> Iterator[Located]:
    for stack in located.entry.stacks():
        for position, entry in enumerate(stack.entries):
            yield Located(
                entry,
                located.where + stack.where(position),
                f"{located.path}/{stack.key}/{position}",
                located.index,
                located.depth + 1,
                located.path,
                stack.key,
            )


def has_blocks(design: Design) -> bool:
    """Whether any entry of the design is a block (then it needs format 2)."""
    return any(is_block(entry) for entry in design.layers)


def format_version(design: Design) -> int:
    """The format a file of this design is written in: the lowest that holds it, at least the one it was read in."""
    return max(design.version, BLOCKS_VERSION if has_blocks(design) or has_shared(design) else 1)


def find_entry(design: Design, entry_id: str) -> Located | None:
    """The entry with this id, anywhere in the tree."""
    return next((located for located in walk(design.layers) if located.entry.id == entry_id), None)


def design_path(path: str) -> str:
    """A trace path without its copy numbers: ``layer-5#2/body/0`` -> ``layer-5/body/0``."""
    return re.sub(r"#\d+", "", path)


def entry_at(design: Design, path: str) -> Located | None:
    """The entry a trace path names (copy numbers ignored), or None."""
    wanted = design_path(path)
    return next((located for located in walk(design.layers) if located.path == wanted), None)


def run_count(entries: tuple[Entry, ...]) -> int:
    """Layers the forward pass runs through these entries, each copy of a repeated block counted."""
    total = 0
    for entry in entries:
        if is_block(entry):
            inner = sum(run_count(stack.entries) for stack in entry.stacks())
            total += max(1, entry.repeat) * inner
        else:
            total += 1
    return total


class CustomLayerSpec(BaseModel):
    """A user-written nn.Module subclass, carried as source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    source: str
    params: dict[str, Any] = Field(default_factory=dict)  # the arguments it was checked with; new layers start so


class Design(BaseModel):
    """A model: an input and a stack of layers, plus the custom layers it may use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1, 2] = 1  # the format it was read in; files are written in format_version(design)
    name: str = "untitled"
    input: InputSpec
    layers: tuple[Entry, ...] = ()
    custom_layers: tuple[CustomLayerSpec, ...] = ()

    @model_validator(mode="after")
    def _assign_ids(self) -> Design:
        """Give every entry a stable id ("layer-N", depth first), keeping the ids a file already carries."""
        taken: dict[str, str] = {}
        for located in walk(self.layers):
            entry_id = located.entry.id
            if entry_id and entry_id in taken:
                raise ValueError(
                    f"{located.label}: id {_quoted(entry_id)} is also the id of {taken[entry_id]}; ids must be unique"
                )
            if entry_id:
                taken[entry_id] = located.where
        object.__setattr__(self, "layers", _with_ids(self.layers, set(taken), [0]))
        object.__setattr__(self, "version", format_version(self))
        return self

    def entries(self) -> Iterator[Located]:
        """Every entry of the tree, depth first (``walk``)."""
        return walk(self.layers)

    def custom_names(self) -> list[str]:
        """Names of the custom layers, in order."""
        return [c.name for c in self.custom_layers]

    def layer_index(self, layer_id: str) -> int:
        """Position of the layer with this id."""
        for index, layer in enumerate(self.layers):
            if layer.id == layer_id:
                return index
        raise KeyError(layer_id)


def _with_ids(entries: tuple[Entry, ...], taken: set[str], counter: list[int]) -> tuple[Entry, ...]:
    """The entries with an id each: missing ones become the next free "layer-N", depth first."""
    done = []
    for entry in entries:
        if not entry.id:
            counter[0] += 1
            while f"layer-{counter[0]}" in taken:
                counter[0] += 1
            entry = entry.model_copy(update={"id": f"layer-{counter[0]}"})
            taken.add(entry.id)
        if is_block(entry):
            entry = entry.with_stacks([_with_ids(stack.entries, taken, counter) for stack in entry.stacks()])
        done.append(entry)
    return tuple(done)


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


def _check_entry_strings(where: str, entry: LayerSpec | BlockSpec) -> None:
    """The id (it names the entry in the app and the table) and the label (shown in the graph)."""
    if not isinstance(entry.id, str) or not ID_PATTERN.fullmatch(entry.id):
        raise DesignError(f"{where}: id {_quoted(entry.id)} must be {ID_RULE}")
    problem = _text_problem(entry.label, MAX_LABEL_CHARS)
    if problem:
        raise DesignError(f"{where}: label {problem}")


def validate_layer(
    index: int, layer: LayerSpec, custom: Mapping[str, CustomLayerSpec], where: str | None = None
) -> None:
    """Refuse an unknown type, an unknown parameter or a value torch would refuse, naming the layer.

    ``where`` is the layer's place in a block (``layers[4].body[2] (Conv2d)``); a top-level layer by default.
    """
    where = where or f"layers[{index}] ({_plain(layer.type)})"
    _check_entry_strings(where, layer)
    if layer.type in custom:
        _check_custom_params(where, layer.params, custom[layer.type])
        return
    entry = catalog().get(layer.type)
    if entry is None:
        hint = _suggest(layer.type, [*catalog(), *custom])
        raise DesignError(f"{where}: unknown layer type {_quoted(layer.type)}{hint}")
    names = [p.name for p in entry.params]
    for name, value in layer.params.items():
        spec = entry.param(name) if isinstance(name, str) else None
        if spec is None:
            hint = isinstance(name, str) and _suggest(name, names)
            hint = hint or f"; {layer.type} takes: {', '.join(names) or 'no parameters'}"
            raise DesignError(f"{where}: unknown parameter {_quoted(name)}{hint}")
        problem = check_value(spec, value)
        if problem:
            raise DesignError(f"{where}: parameter '{name}' {problem}")
    missing = [p.name for p in entry.params if p.required and p.name not in layer.params]
    if missing:
        raise DesignError(f"{where}: missing required parameter(s) {', '.join(missing)}")


# ------------------------------------------------------------------------------------------------ blocks


def _merge_problem(block: BlockSpec) -> str | None:
    """Why a Residual's or Parallel's merge and dim do not go together, or None."""
    merge = getattr(block, "merge", None)
    if merge is None:
        return None
    if merge not in set(Merge):
        hint = _suggest(merge, list(Merge)) if isinstance(merge, str) else ""
        return f"unknown merge {_quoted(merge)}{hint or '; use ' + ', '.join(Merge)}"
    if block.dim is not None and merge != Merge.CONCAT:
        return f"dim applies only to merge 'concat', not '{merge}'; remove dim or merge by concat"
    if block.dim is not None and not -MAX_DIM <= block.dim < MAX_DIM:
        return f"dim must be from {-MAX_DIM} to {MAX_DIM - 1}, got {_show(block.dim)}"
    return None


def _block_problem(block: BlockSpec) -> str | None:
    """Why a block cannot stand as written (its stacks are checked entry by entry), or None."""
    if not MAX_REPEAT >= block.repeat >= 1:
        return f"repeat must be a whole number from 1 to {MAX_REPEAT:,}, got {_show(block.repeat)}"
    if isinstance(block, ResidualBlock) and not block.body:
        return "a Residual needs a body: add at least one layer to it (an empty shortcut is the identity)"
    if isinstance(block, ParallelBlock) and not block.branches:
        return "a Parallel needs at least one branch (an empty branch is the identity)"
    if isinstance(block, ParallelBlock) and len(block.branches) > MAX_BRANCHES:
        return f"{len(block.branches):,} branches; a Parallel holds at most {MAX_BRANCHES}"
    return _merge_problem(block)


def validate_block(located: Located) -> None:
    """Refuse a block with a bad repeat, merge or dim, or a missing body or branch, naming its place."""
    _check_entry_strings(located.label, located.entry)
    problem = _block_problem(located.entry)
    if problem:
        raise DesignError(f"{located.label}: {problem}")
    if located.depth >= MAX_BLOCK_DEPTH:
        raise DesignError(f"{located.label}: blocks nest at most {MAX_BLOCK_DEPTH} deep; flatten an inner block")


def _check_block_names(design: Design) -> None:
    """Format 2 names blocks Sequential, Residual and Parallel: custom layers and their code cannot take these."""
    for index, spec in enumerate(design.custom_layers):
        if spec.name in FORMAT2_KINDS:
            what = "an entry type" if spec.name == SHARED else "a block"
            raise DesignError(
                f"custom_layers[{index}] ({spec.name}): '{spec.name}' is {what} in design format 2 (the design "
                f"has blocks or shared layers); rename the custom layer"
            )
        taken = sorted(set(source_bindings(spec.source)) & BLOCK_EXPORT_NAMES)
        if taken:
            raise DesignError(
                f"custom_layers[{index}] ({spec.name}): its code defines '{taken[0]}', a name the exported file of "
                f"a design with blocks needs; rename it"
            )


def _shared_problem(design: Design, located: Located) -> str | None:
    """Why a Shared entry cannot reuse the layer it names, or None."""
    of = located.entry.of
    if located.depth:
        return "a Shared entry stands at the top level of the stack; move it out of its block"
    if not isinstance(of, str) or not of:
        return "'of' must name the id of an earlier layer of the stack, such as \"layer-3\""
    target = find_entry(design, of)
    if target is None:
        ids = [entry.id for entry in design.layers[: located.index] if not is_block(entry) and not is_shared(entry)]
        hint = _suggest(of, ids) or "; name a layer before it"
        return f"'of' names {_quoted(of)}, which is no layer of the design{hint}, or remove this Shared entry"
    if target.depth:
        return f"'of' names {_quoted(of)}, which stands inside a block; share a layer of the top-level stack"
    if is_block(target.entry):
        return f"'of' names {_quoted(of)}, a {target.entry.type} block; share a layer, not a block"
    if is_shared(target.entry):
        return f"'of' names {_quoted(of)}, itself a Shared entry; name the layer it shares, {_quoted(target.entry.of)}"
    if target.index >= located.index:
        return f"'of' names {_quoted(of)}, which comes after it; a Shared entry reuses an earlier layer"
    return None


def validate_shared(design: Design, located: Located) -> None:
    """Refuse a Shared entry whose ``of`` is not an earlier top-level layer, naming its place and the fix."""
    _check_entry_strings(located.label, located.entry)
    problem = _shared_problem(design, located)
    if problem:
        raise DesignError(f"{located.label}: {problem}")


COUNTED: dict[str, str] = {"layers": "layers", "custom_layers": "custom layers"}


def _too_many(field: str, count: int, limit: int) -> str:
    return f"{field}: the design has {count:,} {COUNTED[field]}; a design holds at most {limit:,}"


def _too_many_runs(count: int) -> str:
    return (
        f"layers: the forward pass would run {count:,} layers (each copy of a repeated block counted); a design "
        f"runs at most {MAX_RUN_LAYERS:,}: lower a block's repeat"
    )


def _check_sizes_of(design: Design) -> None:
    """The design's own fields and counts: name, input shape, number of layers and custom layers."""
    problem = _text_problem(design.name, MAX_NAME_CHARS) if isinstance(design.name, str) else "must be text"
    if problem:
        raise DesignError(f"name: {problem}")
    problem = shape_problem(design.input.shape)
    if problem:
        raise DesignError(f"input.shape: {problem}")
    count = sum(1 for _ in walk(design.layers))
    if count > MAX_LAYERS:
        raise DesignError(_too_many("layers", count, MAX_LAYERS))
    if len(design.custom_layers) > MAX_CUSTOM_LAYERS:
        raise DesignError(_too_many("custom_layers", len(design.custom_layers), MAX_CUSTOM_LAYERS))


def validate_design(design: Design) -> Design:
    """Check every field, entry and custom layer against the limits, the catalog and each other; return the design.

    Raises:
        DesignError: naming the field (``layers[4].body[2] (Conv2d): parameter 'stride' ...``) and what to change.
    """
    _check_sizes_of(design)
    custom = design.custom_names()
    if len(set(custom)) != len(custom):
        raise DesignError("custom_layers: two custom layers share a name; rename one")
    for index, spec in enumerate(design.custom_layers):
        _check_custom_layer(index, spec)
    _check_bindings(design.custom_layers)
    if has_blocks(design) or has_shared(design):
        _check_block_names(design)
    by_name = {spec.name: spec for spec in design.custom_layers}
    for located in walk(design.layers):
        if is_block(located.entry):
            validate_block(located)
        elif is_shared(located.entry):
            validate_shared(design, located)
        else:
            validate_layer(located.index, located.entry, by_name, located.label)
    runs = run_count(design.layers)
    if runs > MAX_RUN_LAYERS:
        raise DesignError(_too_many_runs(runs))
    return design


# ------------------------------------------------------------------------------------------------ reading


def _location(loc: list[Any]) -> str:
    parts = []
    for position, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part in ENTRY_TAGS and position and isinstance(loc[position - 1], int):
            continue  # pydantic's name for the kind of entry, not a field of the file
        else:
            parts.append(f".{part}" if isinstance(part, str) and IDENTIFIER.fullmatch(part) else f"[{_show(part)}]")
    return "".join(parts).lstrip(".")


def _entry_type(data: Any, loc: list[Any]) -> str | None:
    """The type of the innermost entry the location passes through, as the file spells it."""
    found, node = None, data
    with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
        for position, part in enumerate(loc):
            if part in ENTRY_TAGS and position and isinstance(loc[position - 1], int):
                continue
            node = node[part]
            tagged = position + 1 < len(loc) and loc[position + 1] in ENTRY_TAGS
            if isinstance(part, int) and isinstance(node, dict) and tagged:
                found = node.get("type", "?")
    return found


def _pydantic_message(error: ValidationError, data: Any) -> str:
    first = error.errors()[0]
    loc = list(first["loc"])
    path = _location(loc)
    message = first["msg"].removeprefix("Value error, ")
    if not loc and message.startswith("layers["):
        return message  # a check across the tree (unique ids) names its entry itself
    entry_type = _entry_type(data, loc)
    if entry_type is not None:
        path += f" (layer type {_plain(entry_type)})"
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{path or 'design'}: {message}"


def _raw_children(entry: dict[str, Any]) -> Iterator[Any]:
    """The stacks of a block as the file holds them (not yet validated): lists of entries."""
    for field in ("layers", "body", "shortcut"):
        if isinstance(entry.get(field), list):
            yield entry[field]
    branches = entry.get("branches")
    if isinstance(branches, list):
        yield from (branch for branch in branches if isinstance(branch, list))


def _check_counts(data: dict[str, Any]) -> None:
    """Refuse a huge or deeply nested tree before pydantic reads it entry by entry (iteratively: no recursion)."""
    items = data.get("custom_layers")
    if isinstance(items, list | tuple) and len(items) > MAX_CUSTOM_LAYERS:
        raise DesignError(_too_many("custom_layers", len(items), MAX_CUSTOM_LAYERS))
    top = data.get("layers")
    count, todo = 0, [(top, 0)] if isinstance(top, list | tuple) else []
    while todo:  # the file's size bounds the work: a 2,000,000-character file holds under 200,000 entries
        entries, depth = todo.pop()
        count += len(entries)
        if depth > MAX_BLOCK_DEPTH:
            raise DesignError(f"layers: blocks nest more than {MAX_BLOCK_DEPTH} deep; flatten an inner block")
        for entry in entries:
            if isinstance(entry, dict):
                todo += [(stack, depth + 1) for stack in _raw_children(entry)]
    if count > MAX_LAYERS:
        raise DesignError(_too_many("layers", count, MAX_LAYERS))


def _raw_custom_names(data: dict[str, Any]) -> set[str]:
    """The custom layers' names as the file holds them (not yet validated)."""
    customs = data.get("custom_layers")
    if not isinstance(customs, list):
        return set()
    return {c["name"] for c in customs if isinstance(c, dict) and isinstance(c.get("name"), str)}


def _read_version(data: dict[str, Any]) -> int:
    """The file's format; without a "version", format 2 unless a custom layer takes a block's name (format 1)."""
    if "version" not in data:
        return 1 if _raw_custom_names(data) & FORMAT2_KINDS else FORMAT_VERSION
    version = data["version"]
    if isinstance(version, bool) or not _is_int(version) or version not in FORMAT_VERSIONS:
        formats = " and ".join(map(str, FORMAT_VERSIONS))
        raise DesignError(f"version: this builder reads design formats {formats}, the file has {_show(version)}")
    return version


def _check_v1_entries(data: dict[str, Any]) -> None:
    """A version 1 file holds layers only: a block there is named, with the fix."""
    names = _raw_custom_names(data)
    layers = data.get("layers")
    for index, entry in enumerate(layers if isinstance(layers, list) else []):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if isinstance(kind, str) and kind in FORMAT2_KINDS and kind not in names:
            what = "shared layers" if kind == SHARED else "blocks"
            raise DesignError(
                f'layers[{index}] ({kind}): {what} need design format 2; set "version": 2 at the top of the file'
            )


def design_from_dict(data: Any) -> Design:
    """Validate a parsed JSON object into a design, or raise DesignError naming the field and the layer."""
    if not isinstance(data, dict):
        raise DesignError("a design file must hold a JSON object with 'input' and 'layers'")
    version = _read_version(data)
    _check_counts(data)
    if version == 1:
        _check_v1_entries(data)
    token = _READING_V1.set(version == 1)
    try:
        design = Design.model_validate(data)
    except ValidationError as error:
        raise DesignError(_pydantic_message(error, data)) from None
    except RecursionError:
        raise DesignError("design: the data is nested too deeply; a design nests only a few levels") from None
    finally:
        _READING_V1.reset(token)
    if version == 2 and not has_blocks(design):
        _check_block_names(design)  # its custom layers could not be used: their entries would read as blocks
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


def _layer_json(layer: LayerSpec | SharedSpec) -> dict[str, Any]:
    data = layer.model_dump(mode="json")
    if not data["label"]:
        del data["label"]
    return data


def _block_json(block: BlockSpec) -> dict[str, Any]:
    """A block as the file holds it: type, id, label, merge, dim, repeat, then its stacks; defaults left out."""
    data: dict[str, Any] = {"type": str(block.type), "id": block.id}
    if block.label:
        data["label"] = block.label
    if getattr(block, "merge", None) is not None:
        data["merge"] = str(block.merge)
    if getattr(block, "dim", None) is not None:
        data["dim"] = block.dim
    if block.repeat != 1:
        data["repeat"] = block.repeat
    if isinstance(block, ParallelBlock):
        data["branches"] = [[_entry_json(entry) for entry in branch] for branch in block.branches]
        return data
    for stack in block.stacks():
        if stack.entries or stack.field != "shortcut":  # an identity shortcut is left out
            data[stack.field] = [_entry_json(entry) for entry in stack.entries]
    return data


def _entry_json(entry: Entry) -> dict[str, Any]:
    return _block_json(entry) if is_block(entry) else _layer_json(entry)


def dump_design(design: Design) -> str:
    """The design as pretty, stable JSON (the file format), in the lowest format version that holds it."""
    data = design.model_dump(mode="json", exclude={"layers"})
    data |= {"version": format_version(design), "layers": [_entry_json(entry) for entry in design.layers]}
    data = {key: data[key] for key in ("version", "name", "input", "layers", "custom_layers")}
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
