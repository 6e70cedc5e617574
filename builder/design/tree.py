"""Walking a design's tree of entries: each entry with its place in the file and in the trace, and the
questions asked of the tree (which format it needs, which layers are shared, how many layers a pass runs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builder.design.limits import BLOCKS_VERSION
from builder.design.messages import _plain
from builder.design.models import DEFAULT_DIM, BlockSpec, Entry, Merge, SharedSpec

if TYPE_CHECKING:
    from builder.design.document import Design


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
