"""LeNet: a PyTorch model exported by the visual model builder.

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


def build_model() -> nn.Module:
    """Build the LeNet model."""
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),  # -> (1, 6, 28, 28)
        nn.Sigmoid(),  # -> (1, 6, 28, 28)
        nn.AvgPool2d(2, stride=2),  # -> (1, 6, 14, 14)
        nn.Conv2d(6, 16, (5, 5)),  # -> (1, 16, 10, 10)
        nn.BatchNorm2d(16),  # -> (1, 16, 10, 10)
        nn.Sigmoid(),  # -> (1, 16, 10, 10)
        Stackable(
            nn.MaxPool2d(2, return_indices=True), first_output=True
        ),  # -> (1, 16, 5, 5)
        nn.Flatten(),  # -> (1, 400)
        nn.Linear(400, 120),  # -> (1, 120)
        nn.Dropout(),  # -> (1, 120)
        nn.Linear(120, 10),  # -> (1, 10)
    )
    return model


INPUT_SHAPE = (1, 1, 28, 28)
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
