"""blocks demo: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

import torch
from torch import nn


class Down1(nn.Module):
    """The down1 block: a Residual."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),  # -> (1, 32, 8, 8)
            nn.BatchNorm2d(32),  # -> (1, 32, 8, 8)
            nn.ReLU(),  # -> (1, 32, 8, 8)
            nn.Conv2d(32, 32, 3, padding=1, bias=False),  # -> (1, 32, 8, 8)
            nn.BatchNorm2d(32),  # -> (1, 32, 8, 8)
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(16, 32, 1, stride=2, bias=False),  # -> (1, 32, 8, 8)
            nn.BatchNorm2d(32),  # -> (1, 32, 8, 8)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)  # -> (1, 32, 8, 8)


class Basic(nn.Module):
    """The basic block: a Residual."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LazyConv2d(32, 3, padding=1),  # -> (1, 32, 8, 8)
            nn.BatchNorm2d(32),  # -> (1, 32, 8, 8)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x  # -> (1, 32, 8, 8)


class Stage(nn.Module):
    """The stage block: a Sequential of 2 layers."""

    def __init__(self) -> None:
        super().__init__()
        self.basic = Basic()
        self.relu1 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.basic(x)  # -> (1, 32, 8, 8)
        x = self.relu1(x)  # -> (1, 32, 8, 8)
        return x


class Mix(nn.Module):
    """The mix block: a Parallel of 3 branches."""

    def __init__(self) -> None:
        super().__init__()
        self.branch1 = nn.Sequential(
            nn.Conv2d(32, 8, 1),  # -> (1, 8, 8, 8)
        )
        self.branch2 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1),  # -> (1, 32, 8, 8)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            (self.branch1(x), self.branch2(x), x), dim=1
        )  # -> (1, 72, 8, 8)


class Gate(nn.Module):
    """The gate block: a Residual."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # -> (1, 72, 1, 1)
            nn.Conv2d(72, 72, 1),  # -> (1, 72, 1, 1)
            nn.Sigmoid(),  # -> (1, 72, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.body(x)  # -> (1, 72, 8, 8)


class ResidualBlock(nn.Module):
    """A Residual block."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LazyConv2d(8, 1),  # -> (1, 8, 8, 8)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.body(x)), dim=1)  # -> (1, 80, 8, 8)


class BlocksDemo(nn.Module):
    """The blocks demo model."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2d1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.batch_norm2d1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        self.down1 = Down1()
        self.relu2 = nn.ReLU()
        self.stage = nn.Sequential(*[Stage() for _ in range(2)])
        self.mix = Mix()
        self.gate = Gate()
        self.residual_block = ResidualBlock()
        self.adaptive_avg_pool2d1 = nn.AdaptiveAvgPool2d(1)
        self.flatten1 = nn.Flatten()
        self.lazy_linear1 = nn.LazyLinear(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2d1(x)  # -> (1, 16, 16, 16)
        x = self.batch_norm2d1(x)  # -> (1, 16, 16, 16)
        x = self.relu1(x)  # -> (1, 16, 16, 16)
        x = self.down1(x)  # -> (1, 32, 8, 8)
        x = self.relu2(x)  # -> (1, 32, 8, 8)
        x = self.stage(x)  # -> (1, 32, 8, 8)
        x = self.mix(x)  # -> (1, 72, 8, 8)
        x = self.gate(x)  # -> (1, 72, 8, 8)
        x = self.residual_block(x)  # -> (1, 80, 8, 8)
        x = self.adaptive_avg_pool2d1(x)  # -> (1, 80, 1, 1)
        x = self.flatten1(x)  # -> (1, 80)
        x = self.lazy_linear1(x)  # -> (1, 10)
        return x


def build_model() -> nn.Module:
    """Build the blocks demo model."""
    return BlocksDemo()


INPUT_SHAPE = (1, 3, 16, 16)
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
