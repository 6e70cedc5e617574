"""d2l mlp: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

import torch
from torch import nn


def build_model() -> nn.Module:
    """Build the d2l mlp model."""
    model = nn.Sequential(
        nn.LazyLinear(256),
        nn.ReLU(),
        nn.LazyLinear(10),
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
