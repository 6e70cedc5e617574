"""How a Residual or a Parallel combines its stacks' outputs: one table for the graph, the table and the code.

``merge_tensors`` is what inference runs (torch broadcasting for add and mul, ``torch.cat`` for concat); the
exported code writes the same with ``OPERATORS`` or ``torch.cat``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence

import torch

from builder.design import Merge

# What the graph's merge node reads ("+ add", "x mul"; a concat adds its dim).
SYMBOLS: dict[Merge, str] = {Merge.ADD: "+ add", Merge.MUL: "x mul", Merge.CONCAT: "concat"}
# The Python operator of an elementwise merge, as the exported code writes it.
OPERATORS: dict[Merge, str] = {Merge.ADD: "+", Merge.MUL: "*"}
ELEMENTWISE: dict[Merge, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    Merge.ADD: operator.add,
    Merge.MUL: operator.mul,
}
# How messages say what a merge does with two outputs.
VERBS: dict[Merge, str] = {Merge.ADD: "add", Merge.MUL: "multiply", Merge.CONCAT: "concatenate"}


def merge_label(merge: Merge, dim: int) -> str:
    """The merge node's text: ``+ add``, ``x mul``, ``concat dim=1``."""
    return f"{SYMBOLS[merge]} dim={dim}" if merge is Merge.CONCAT else SYMBOLS[merge]


def merge_tensors(merge: Merge, outputs: Sequence[torch.Tensor], dim: int) -> torch.Tensor:
    """Combine the outputs in order: concatenated along ``dim``, or added / multiplied with broadcasting."""
    if merge is Merge.CONCAT:
        return torch.cat(tuple(outputs), dim=dim)
    return functools.reduce(ELEMENTWISE[merge], outputs)


def merge_flops(merge: Merge, outputs: Sequence[torch.Tensor], result: torch.Tensor) -> int:
    """FLOPs of the merge itself: one per output element and operand after the first; a concat only copies."""
    if merge is Merge.CONCAT:
        return 0
    return (len(outputs) - 1) * result.numel()
