"""tied blocks: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

import torch
from torch import nn


class Stackable(nn.Module):
    """Call `layer` with x as each of its `n_inputs` inputs; keep the first output if it returns a tuple."""

    def __init__(
        self, layer: nn.Module, n_inputs: int = 1, first_output: bool = False
    ) -> None:
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

    def __init__(
        self,
        body: nn.Module,
        shortcut: nn.Module | None = None,
        merge: str = "add",
        dim: int = 1,
    ) -> None:
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


def build_model() -> nn.Module:
    """Build the tied blocks model."""
    shared1 = nn.LazyLinear(16)
    shared2 = nn.LSTM(16, 16)
    model = nn.Sequential(
        nn.LazyLinear(16),  # -> (2, 16)
        nn.ReLU(),  # -> (2, 16)
        shared1,  # -> (2, 16)
        Residual(
            nn.Sequential(
                nn.Linear(16, 16),  # -> (2, 16)
                nn.ReLU(),  # -> (2, 16)
            ),
        ),  # -> (2, 16)
        shared1,  # -> (2, 16)
        Stackable(shared2, first_output=True),  # -> (2, 16)
        Stackable(shared2, first_output=True),  # -> (2, 16)
    )
    return model


INPUT_SHAPE = (2, 20)
INPUT_DTYPE = torch.float32


def dummy_input() -> torch.Tensor:
    """A random input of INPUT_SHAPE and INPUT_DTYPE."""
    return torch.randn(INPUT_SHAPE, dtype=INPUT_DTYPE)


def main() -> None:
    torch.manual_seed(0)
    model = build_model()
    model.eval()
    with torch.no_grad():
        out = model(dummy_input())
    print(tuple(out.shape))


if __name__ == "__main__":
    main()
