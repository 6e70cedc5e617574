"""How layers that take several inputs or return tuples stand in a stack, and how blocks wrap stacks.

``Stackable``, ``Residual`` and ``Parallel`` are plain PyTorch: export copies their source into the generated file
(the sequential style), so the exported model runs without this project.
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


class Residual(nn.Module):
    """merge(shortcut(x), body(x)): "add" (default), "mul" or "concat" along dim (the shortcut first); no shortcut
    is the identity."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None, merge: str = "add", dim: int = 1) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.merge = merge
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut, body = self.shortcut(x), self.body(x)
        if self.merge == "concat":
            return torch.cat((shortcut, body), dim=self.dim)
        return shortcut * body if self.merge == "mul" else shortcut + body


class Parallel(nn.Module):
    """merge(b1(x), b2(x), ...) in branch order: "concat" along dim (default), "add" or "mul"."""

    def __init__(self, *branches: nn.Module, merge: str = "concat", dim: int = 1) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.merge = merge
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [branch(x) for branch in self.branches]
        if self.merge == "concat":
            return torch.cat(outputs, dim=self.dim)
        result = outputs[0]
        for output in outputs[1:]:
            result = result * output if self.merge == "mul" else result + output
        return result


def call_layer(layer: nn.Module, style: CallStyle, x: torch.Tensor) -> torch.Tensor:
    """Run one layer of a stack with its call convention."""
    n_inputs, first_output = CALLS[style]
    out = layer(*[x] * n_inputs)
    return out[0] if first_output else out
