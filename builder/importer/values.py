"""What abstract evaluation computes: literals, modules built from the paste, tensors flowing through forward.

Nothing of the paste runs. A value is a Python literal (int, float, bool, str, None, tuple, list), one of the
classes below, or an :class:`Opaque` standing for what only a run would know; an Opaque is refused where a layer or
an argument needs it, with the line and reason it carries.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from builder.design import Entry, LayerSpec
from builder.importer.tensor_ops import LearnedTensor


class Refused(Exception):
    """A construct that cannot be followed statically: the class or function holding it is refused whole."""

    def __init__(self, node: ast.AST, why: str) -> None:
        super().__init__(why)
        self.node = node
        self.why = why


@dataclass(frozen=True)
class Budget:
    """Bounds on one abstract evaluation, so hostile input becomes a note quickly."""

    steps: int = 200_000  # statements and expressions evaluated
    depth: int = 48  # nested calls of the paste's functions and classes
    size: int = 10_000  # items of a list, a tuple or a range


@dataclass(eq=False)
class Opaque:
    """A value only known when the code runs (``d2l.FashionMNIST(...)``, ``torch.rand(3)``)."""

    node: ast.AST
    why: str
    present: bool = False  # certainly not None (a layer's weight tensor), though its value is unknown


@dataclass(eq=False)
class Layer:
    """A catalog layer, or a custom layer carried as source."""

    spec: LayerSpec


@dataclass(eq=False)
class Modules:
    """``nn.Sequential`` (run in order) or ``nn.ModuleList`` (picked by forward); children with their names."""

    children: list[Any] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    sequential: bool = True


@dataclass(eq=False)
class ClassRef:
    """A class of the paste, not yet instantiated."""

    name: str


@dataclass(eq=False)
class Instance:
    """An instance of a module class of the paste, its attributes set by the evaluated ``__init__``."""

    cls: str
    node: ast.AST  # where it is built
    attrs: dict[str, Any] = field(default_factory=dict)
    arguments: dict[str, Any] = field(default_factory=dict)  # the constructor's bound arguments
    sequential: Modules | None = None  # an nn.Sequential subclass: the layers its __init__ passed to super()
    unread: Refused | None = None  # the __init__ of a base outside the paste, not followed: why


@dataclass(eq=False)
class Function:
    """A function of the paste, or a method bound to an instance."""

    node: ast.FunctionDef
    owner: str = ""  # the class a method belongs to (super() starts after it)
    bound: Instance | None = None


@dataclass(eq=False)
class LayerType:
    """An uncalled catalog layer class (``norm_layer = nn.BatchNorm2d``)."""

    name: str
    node: ast.AST


@dataclass(eq=False)
class Super:
    """``super()`` inside a method of ``owner``."""

    instance: Instance
    owner: str


@dataclass(eq=False)
class Step:
    """One stretch of a tensor's path: the entries a call or a merge applied."""

    entries: tuple[Entry, ...]


@dataclass(eq=False)
class Tensor:
    """A tensor in forward: the steps applied to forward's input, in order."""

    path: tuple[Step, ...] = ()
    root: bool = False  # the model's own input flows here (its shape is the input's), not a nested module's

    def then(self, entries: list[Entry]) -> Tensor:
        return Tensor((*self.path, Step(tuple(entries))), self.root)

    def entries(self, start: int = 0) -> list[Entry]:
        return [entry for step in self.path[start:] for entry in step.entries]


@dataclass(eq=False)
class Size:
    """A size read off a tensor (``x.size(0)``, ``x.shape[0]``, ``n, c, h, w = x.shape``), or computed from such
    sizes (``h // p``): ``tensor`` and ``dim`` say which tensor's dimension it is, when it is one read as is."""

    node: ast.AST
    tensor: Tensor | None = None
    dim: int | None = None

    @property
    def batch(self) -> bool:
        """The batch: dimension 0 read off a tensor of forward."""
        return self.tensor is not None and self.dim == 0


@dataclass(eq=False)
class Learned:
    """A learned tensor set in ``__init__`` (``self.pos_embedding = nn.Parameter(torch.zeros(1, 65, 192))``)."""

    tensor: LearnedTensor
    node: ast.AST
    expanded: bool = False  # ``.expand(n, -1, -1)`` over the batch: a class token to put in front


MODULE_VALUES = (Layer, Modules, Instance)
