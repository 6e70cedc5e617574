"""d2l mlp: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

import torch
from torch import nn


class D2lMlp(nn.Module):
    """The d2l mlp model."""

    def __init__(self) -> None:
        super().__init__()
        self.lazy_linear1 = nn.LazyLinear(256)
        self.relu1 = nn.ReLU()
        self.lazy_linear2 = nn.LazyLinear(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lazy_linear1(x)  # -> (2, 256)
        x = self.relu1(x)  # -> (2, 256)
        x = self.lazy_linear2(x)  # -> (2, 10)
        return x


def build_model() -> nn.Module:
    """Build the d2l mlp model."""
    return D2lMlp()


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
