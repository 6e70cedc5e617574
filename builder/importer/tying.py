"""One module object used at several places of the model: read back as ``Shared`` entries (parameter tying).

The book ties weights by using one object twice: ``shared = nn.LazyLinear(8)``, then ``shared`` twice in an
``nn.Sequential``; a module class does it by calling ``self.shared`` twice in ``forward``. Its first use is the
layer; every later use becomes ``{"type": "Shared", "of": <that layer's id>}``, so the design has the parameter
count the code has. A reused ``nn.Sequential`` (several layers) is read as separate layers, with a note: a Shared
entry ties one layer.
"""

from __future__ import annotations

import ast

from builder.design import Entry, LayerSpec, SharedSpec, is_shared
from builder.importer.context import ImporterBase
from builder.importer.notes import ImportFailed

PENDING = "\x00"  # before ids are given, a first use's id and a Shared entry's ``of``: this, then the object's key


class TyingReading(ImporterBase):
    """Remembers each module object's first use; a later use of the same object is a Shared entry."""

    def __init__(self, source: str, tree: ast.Module) -> None:
        super().__init__(source, tree)
        self.first_uses: set[str] = set()  # the keys of the objects already read once

    def tied_use(self, key: str, made: list[LayerSpec], node: ast.AST, name: str) -> list[Entry]:
        """The layers one use of the object ``key`` (named ``name`` in the code) gives: a Shared entry after the
        first use of a single layer."""
        if len(made) != 1 or is_shared(made[0]):
            if key in self.first_uses and made:
                raise ImportFailed(
                    f"line {getattr(node, 'lineno', 0)}: `{self.snippet(node)}`: {name} is used again, and it holds"
                    f" {len(made)} layers: a Shared entry ties one layer, so the design cannot share them all; not"
                    " imported (reuse its layers one by one, or give the second use layers of its own)"
                )
            self.first_uses.add(key)
            return list(made)
        if key not in self.first_uses:
            self.first_uses.add(key)
            return [made[0].model_copy(update={"id": PENDING + key})] if not made[0].id else list(made)
        self.info(node, f"{name} is used again: the same module object, read as a Shared entry (parameter tying)")
        return [SharedSpec(of=PENDING + key)]

    def resolve_ties(self, layers: list[Entry]) -> list[Entry]:
        """Give every entry its id, ``layer-N`` by position (what a design would give it), and each Shared entry
        the id of the layer it reuses."""
        ids = [f"layer-{position + 1}" for position in range(len(layers))]
        first_ids = {entry.id: new for entry, new in zip(layers, ids, strict=True) if entry.id.startswith(PENDING)}
        done: list[Entry] = []
        for entry, entry_id in zip(layers, ids, strict=True):
            if is_shared(entry):
                entry = entry.model_copy(update={"of": first_ids[entry.of]})
            done.append(entry.model_copy(update={"id": entry_id}))
        return done
