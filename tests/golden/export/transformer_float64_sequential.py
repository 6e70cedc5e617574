"""tiny transformer: a PyTorch model exported by the visual model builder.

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
    """Build the tiny transformer model."""
    model = nn.Sequential(
        nn.TransformerEncoder(
            nn.TransformerEncoderLayer(
                16, 2, dim_feedforward=32, activation="gelu", batch_first=True
            ),
            num_layers=2,
        ),  # -> (2, 10, 16)
        Stackable(
            nn.MultiheadAttention(16, 2, batch_first=True),
            n_inputs=3,
            first_output=True,
        ),  # -> (2, 10, 16)
        Stackable(
            nn.Transformer(
                d_model=16,
                nhead=2,
                num_encoder_layers=1,
                num_decoder_layers=1,
                dim_feedforward=32,
                batch_first=True,
            ),
            n_inputs=2,
        ),  # -> (2, 10, 16)
        nn.LazyLinear(4),  # -> (2, 10, 4)
    )
    return model.double()


INPUT_SHAPE = (2, 10, 16)
INPUT_DTYPE = torch.float64


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
