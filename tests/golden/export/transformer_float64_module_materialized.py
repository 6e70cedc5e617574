"""tiny transformer: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

import torch
from torch import nn


class TinyTransformer(nn.Module):
    """The tiny transformer model."""

    def __init__(self) -> None:
        super().__init__()
        self.transformer_encoder1 = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(
                16, 2, dim_feedforward=32, activation="gelu", batch_first=True
            ),
            num_layers=2,
        )
        self.multihead_attention1 = nn.MultiheadAttention(16, 2, batch_first=True)
        self.transformer1 = nn.Transformer(
            d_model=16,
            nhead=2,
            num_encoder_layers=1,
            num_decoder_layers=1,
            dim_feedforward=32,
            batch_first=True,
        )
        self.linear1 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.transformer_encoder1(x)  # -> (2, 10, 16)
        x, _ = self.multihead_attention1(x, x, x)  # -> (2, 10, 16)
        x = self.transformer1(x, x)  # -> (2, 10, 16)
        x = self.linear1(x)  # -> (2, 10, 4)
        return x


def build_model() -> nn.Module:
    """Build the tiny transformer model."""
    return TinyTransformer().double()


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
