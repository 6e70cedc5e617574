"""Parameter tying as an edit: a ``Shared`` entry that reuses a layer's module (the book's ``shared`` layer).

The design holds the reuse as data (``builder.design.SharedSpec``); inference runs the same module object at
each place, the table counts its parameters once, and the export writes one object used twice.
"""

from __future__ import annotations

import re

from builder.design import Design, DesignError, SharedSpec, find_entry, is_block, is_shared, validate_design, walk


def fresh_id(design: Design) -> str:
    """The next ``layer-N`` no entry of the design has (after the highest number in use)."""
    taken = {located.entry.id for located in walk(design.layers)}
    numbers = [int(found.group(1)) for i in taken if (found := re.fullmatch(r"layer-(\d+)", i))]
    return f"layer-{max(numbers, default=0) + 1}"


def share_layer(design: Design, layer_id: str, index: int | None = None) -> tuple[Design, str]:
    """Insert a ``Shared`` entry of a top-level layer (at the stack's end by default): (the design, its id).

    Raises:
        DesignError: the entry is not a top-level layer (a block, a Shared entry, an entry inside a block), or the
            place is not after it; the message names it and says what can be shared.
    """
    located = find_entry(design, layer_id)
    if located is None or located.depth or is_block(located.entry) or is_shared(located.entry):
        raise DesignError(
            f"{layer_id}: only a layer of the top-level stack can be shared (tied), not a block, a Shared entry or "
            f"a layer inside a block"
        )
    entry = SharedSpec(of=layer_id, id=fresh_id(design))
    layers = list(design.layers)
    layers.insert(len(layers) if index is None else index, entry)
    return validate_design(design.model_copy(update={"layers": tuple(layers)})), entry.id
