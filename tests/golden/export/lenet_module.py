"""LeNet: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

import torch
from torch import nn


class LeNet(nn.Module):
    """The LeNet model."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2d1 = nn.Conv2d(1, 6, 5, padding=2)
        self.sigmoid1 = nn.Sigmoid()
        self.avg_pool2d1 = nn.AvgPool2d(2, stride=2)
        self.conv2d2 = nn.Conv2d(6, 16, (5, 5))
        self.batch_norm2d1 = nn.BatchNorm2d(16)
        self.sigmoid2 = nn.Sigmoid()
        self.max_pool2d1 = nn.MaxPool2d(2, return_indices=True)
        self.flatten1 = nn.Flatten()
        self.linear1 = nn.Linear(400, 120)
        self.dropout1 = nn.Dropout()
        self.linear2 = nn.Linear(120, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2d1(x)  # -> (1, 6, 28, 28)
        x = self.sigmoid1(x)  # -> (1, 6, 28, 28)
        x = self.avg_pool2d1(x)  # -> (1, 6, 14, 14)
        x = self.conv2d2(x)  # -> (1, 16, 10, 10)
        x = self.batch_norm2d1(x)  # -> (1, 16, 10, 10)
        x = self.sigmoid2(x)  # -> (1, 16, 10, 10)
        x, _ = self.max_pool2d1(x)  # -> (1, 16, 5, 5)
        x = self.flatten1(x)  # -> (1, 400)
        x = self.linear1(x)  # -> (1, 120)
        x = self.dropout1(x)  # -> (1, 120)
        x = self.linear2(x)  # -> (1, 10)
        return x


def build_model() -> nn.Module:
    """Build the LeNet model."""
    return LeNet()


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
