"""centered layer: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

import torch
import torch.nn.functional as F
from torch import nn


class CenteredLayer(nn.Module):
    def forward(self, X):
        return X - X.mean()


class CenteredLayerModel(nn.Module):
    """The centered layer model."""

    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(8, 128)
        self.centered_layer1 = CenteredLayer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear1(x)  # -> (4, 128)
        x = self.centered_layer1(x)  # -> (4, 128)
        return x


def build_model() -> nn.Module:
    """Build the centered layer model."""
    return CenteredLayerModel()


INPUT_SHAPE = (4, 8)
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
