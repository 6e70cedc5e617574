"""The design itself: an input, a stack of entries and the custom layers, with an id for every entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from builder.design.messages import _quoted
from builder.design.models import CustomLayerSpec, Entry, InputSpec
from builder.design.tree import Located, format_version, is_block, walk


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
