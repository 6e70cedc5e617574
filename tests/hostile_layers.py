"""Hostile custom layers shared by the sandbox's tests and the browser tests."""

from __future__ import annotations


def nested_shape_layer(name: str) -> str:
    """A layer whose parameter's ``shape`` is a tuple nested 2**25 deep (formatting it once froze the server)."""
    return f"""
class Nested(nn.Parameter):
    @property
    def shape(self):
        deep = ()
        for _ in range(25):
            deep = (deep, deep)
        return deep


class {name}(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = Nested(torch.zeros(3))

    def forward(self, X):
        return X
"""
