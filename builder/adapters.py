"""How layers that take several inputs or return tuples stand in a stack.

``Stackable`` is plain PyTorch: export copies its source into the generated file, so the exported model runs
without this project.
"""

from __future__ import annotations

import torch
from torch import nn

from builder.catalog import CallStyle

# (number of times x is passed, whether the first element of a tuple result is kept)
CALLS: dict[CallStyle, tuple[int, bool]] = {
    CallStyle.SINGLE: (1, False),
    CallStyle.FIRST_OUTPUT: (1, True),
    CallStyle.SELF_ATTENTION: (3, True),
    CallStyle.PAIR: (2, False),
}


class Stackable(nn.Module):
    """Call `layer` with x as each of its `n_inputs` inputs; keep the first output if it returns a tuple."""

    def __init__(self, layer: nn.Module, n_inputs: int = 1, first_output: bool = False) -> None:
        super().__init__()
        self.layer = layer
        self.n_inputs = n_inputs
        self.first_output = first_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(*[x] * self.n_inputs)
        return out[0] if self.first_output else out


def call_layer(layer: nn.Module, style: CallStyle, x: torch.Tensor) -> torch.Tensor:
    """Run one layer of a stack with its call convention."""
    n_inputs, first_output = CALLS[style]
    out = layer(*[x] * n_inputs)
    return out[0] if first_output else out
