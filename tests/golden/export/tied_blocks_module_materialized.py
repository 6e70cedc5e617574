"""tied blocks: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """A Residual block."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(16, 16),  # -> (2, 16)
            nn.ReLU(),  # -> (2, 16)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x  # -> (2, 16)


class TiedBlocks(nn.Module):
    """The tied blocks model."""

    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(20, 16)
        self.relu1 = nn.ReLU()
        self.linear2 = nn.Linear(16, 16)
        self.residual_block = ResidualBlock()
        self.lstm1 = nn.LSTM(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear1(x)  # -> (2, 16)
        x = self.relu1(x)  # -> (2, 16)
        x = self.linear2(x)  # -> (2, 16)
        x = self.residual_block(x)  # -> (2, 16)
        x = self.linear2(x)  # -> (2, 16)
        x, _ = self.lstm1(x)  # -> (2, 16)
        x, _ = self.lstm1(x)  # -> (2, 16)
        return x


def build_model() -> nn.Module:
    """Build the tied blocks model."""
    return TiedBlocks()


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
