"""The pydantic models a design is made of: the input, the stack's entries (layers, Shared entries and blocks,
which hold stacks of their own) and custom layers. ``Design`` itself, which holds them, is in ``document``.
"""

from __future__ import annotations

import contextvars
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictInt, Tag, field_validator

from builder.design.limits import MAX_INT
from builder.design.messages import HugeNumber, _show


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


class CustomLayerSpec(BaseModel):
    """A user-written nn.Module subclass, carried as source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    source: str
    params: dict[str, Any] = Field(default_factory=dict)  # the arguments it was checked with; new layers start so
