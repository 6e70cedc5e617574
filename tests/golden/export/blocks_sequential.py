"""blocks demo: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

import torch
from torch import nn


class Residual(nn.Module):
    """merge(shortcut(x), body(x)): "add" (default), "mul" or "concat" along dim (the shortcut first); no shortcut
    is the identity."""

    def __init__(
        self,
        body: nn.Module,
        shortcut: nn.Module | None = None,
        merge: str = "add",
        dim: int = 1,
    ) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.merge = merge
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut, body = self.shortcut(x), self.body(x)
        if self.merge == "concat":
            return torch.cat((shortcut, body), dim=self.dim)
        return shortcut * body if self.merge == "mul" else shortcut + body


class Parallel(nn.Module):
    """merge(b1(x), b2(x), ...) in branch order: "concat" along dim (default), "add" or "mul"."""

    def __init__(
        self, *branches: nn.Module, merge: str = "concat", dim: int = 1
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.merge = merge
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [branch(x) for branch in self.branches]
        if self.merge == "concat":
            return torch.cat(outputs, dim=self.dim)
        result = outputs[0]
        for output in outputs[1:]:
            result = result * output if self.merge == "mul" else result + output
        return result


def build_model() -> nn.Module:
    """Build the blocks demo model."""
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),  # -> (1, 16, 16, 16)
        nn.BatchNorm2d(16),  # -> (1, 16, 16, 16)
        nn.ReLU(),  # -> (1, 16, 16, 16)
        Residual(
            nn.Sequential(
                nn.Conv2d(
                    16, 32, 3, stride=2, padding=1, bias=False
                ),  # -> (1, 32, 8, 8)
                nn.BatchNorm2d(32),  # -> (1, 32, 8, 8)
                nn.ReLU(),  # -> (1, 32, 8, 8)
                nn.Conv2d(32, 32, 3, padding=1, bias=False),  # -> (1, 32, 8, 8)
                nn.BatchNorm2d(32),  # -> (1, 32, 8, 8)
            ),
            shortcut=nn.Sequential(
                nn.Conv2d(16, 32, 1, stride=2, bias=False),  # -> (1, 32, 8, 8)
                nn.BatchNorm2d(32),  # -> (1, 32, 8, 8)
            ),
        ),  # -> (1, 32, 8, 8)
        nn.ReLU(),  # -> (1, 32, 8, 8)
        nn.Sequential(
            *[
                nn.Sequential(
                    Residual(
                        nn.Sequential(
                            nn.LazyConv2d(32, 3, padding=1),  # -> (1, 32, 8, 8)
                            nn.BatchNorm2d(32),  # -> (1, 32, 8, 8)
                        ),
                    ),  # -> (1, 32, 8, 8)
                    nn.ReLU(),  # -> (1, 32, 8, 8)
                )
                for _ in range(2)
            ]
        ),  # -> (1, 32, 8, 8)
        Parallel(
            nn.Sequential(
                nn.Conv2d(32, 8, 1),  # -> (1, 8, 8, 8)
            ),
            nn.Sequential(
                nn.MaxPool2d(3, stride=1, padding=1),  # -> (1, 32, 8, 8)
            ),
            nn.Identity(),
        ),  # -> (1, 72, 8, 8)
        Residual(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(1),  # -> (1, 72, 1, 1)
                nn.Conv2d(72, 72, 1),  # -> (1, 72, 1, 1)
                nn.Sigmoid(),  # -> (1, 72, 1, 1)
            ),
            merge="mul",
        ),  # -> (1, 72, 8, 8)
        Residual(
            nn.Sequential(
                nn.LazyConv2d(8, 1),  # -> (1, 8, 8, 8)
            ),
            merge="concat",
        ),  # -> (1, 80, 8, 8)
        nn.AdaptiveAvgPool2d(1),  # -> (1, 80, 1, 1)
        nn.Flatten(),  # -> (1, 80)
        nn.LazyLinear(10),  # -> (1, 10)
    )
    return model


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
