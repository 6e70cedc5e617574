"""LSTM text classifier: a PyTorch model exported by the visual model builder.

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
    """Build the LSTM text classifier model."""
    model = nn.Sequential(
        nn.Embedding(1000, 32),  # -> (2, 16, 32)
        Stackable(
            nn.LSTM(32, 64, batch_first=True), first_output=True
        ),  # -> (2, 16, 64)
        nn.LayerNorm([64]),  # -> (2, 16, 64)
        nn.Flatten(),  # -> (2, 1024)
        nn.Linear(1024, 2),  # -> (2, 2)
    )
    return model


INPUT_SHAPE = (2, 16)
INPUT_DTYPE = torch.int64


def dummy_input() -> torch.Tensor:
    """Random token ids of INPUT_SHAPE, below the vocabulary size 1000."""
    return torch.randint(0, 1000, INPUT_SHAPE)


def main() -> None:
    torch.manual_seed(0)
    model = build_model()
    model.eval()
    with torch.no_grad():
        out = model(dummy_input())
    print(tuple(out.shape))


if __name__ == "__main__":
    main()
