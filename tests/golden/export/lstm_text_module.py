"""LSTM text classifier: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

import torch
from torch import nn


class LSTMTextClassifier(nn.Module):
    """The LSTM text classifier model."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding1 = nn.Embedding(1000, 32)
        self.lstm1 = nn.LSTM(32, 64, batch_first=True)
        self.layer_norm1 = nn.LayerNorm([64])
        self.flatten1 = nn.Flatten()
        self.linear1 = nn.Linear(1024, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embedding1(x)  # -> (2, 16, 32)
        x, _ = self.lstm1(x)  # -> (2, 16, 64)
        x = self.layer_norm1(x)  # -> (2, 16, 64)
        x = self.flatten1(x)  # -> (2, 1024)
        x = self.linear1(x)  # -> (2, 2)
        return x


def build_model() -> nn.Module:
    """Build the LSTM text classifier model."""
    return LSTMTextClassifier()


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
