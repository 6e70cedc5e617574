"""The model's code, written from the design's tree of layers and blocks (``builder.export`` assembles the file).

Two styles, as a person writes them:

- ``sequential``: ``build_model()`` returns an ``nn.Sequential``; a block is a call of a small helper defined in
  the file (``Residual(body, shortcut=...)``, ``Parallel(b1, b2, ...)``, from ``builder.adapters``), a stack an
  ``nn.Sequential``, a repeated block an ``nn.Sequential`` of copies.
- ``module``: one ``nn.Module`` class per distinct block, named from its label, whose forward reads like the book
  (``return self.body(x) + self.shortcut(x)``), and the model class calling them.

Shape comments come from the trace. A class or a repeated expression stands for several places of the model; it
keeps its comments only when they are the same in every place (a lazy layer can see other sizes in its first
copy). To compare, code is written once with each comment between two NUL characters, which no literal holds
(``repr`` escapes them): removing the marks keeps the comments, removing what they enclose drops them.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import nn

from builder.adapters import CALLS
from builder.blocks.merge import OPERATORS
from builder.catalog import CallStyle, call_style
from builder.design import (
    BlockSpec,
    Entry,
    LayerSpec,
    Merge,
    ParallelBlock,
    ResidualBlock,
    block_dim,
    block_merge,
    is_block,
    is_shared,
    shared_targets,
)
from builder.tensor_code import Inline, inline_op, uses_functional
from builder.tensor_ops import TENSOR_OPS

if TYPE_CHECKING:
    from builder.design import Design
    from builder.trace import LayerTrace, Trace

MARK = "\x00"
MARKED = re.compile(f"{MARK}[^{MARK}]*{MARK}")
HELPERS: tuple[str, ...] = ("Stackable", "Residual", "Parallel")  # builder.adapters classes, in file order
# Names an attribute of an nn.Module cannot take without breaking it (self.forward = ..., self.training = ...).
MODULE_ATTRIBUTES: frozenset[str] = frozenset(dir(nn.Module)) | frozenset(keyword.kwlist)
# An unlabelled block's class is named after its type.
CLASS_BASES: dict[str, str] = {
    "Sequential": "SequentialBlock", "Residual": "ResidualBlock", "Parallel": "ParallelBlock",
}  # fmt: skip


def unmarked(text: str) -> str:
    """The code with its shape comments."""
    return text.replace(MARK, "")


def plain(text: str) -> str:
    """The code without its shape comments."""
    return MARKED.sub("", text)


def shape_comment(record: LayerTrace | None) -> str:
    """``  # -> (1, 64, 56, 56)``, marked, or nothing without a record."""
    if record is None or record.output_shape is None:
        return ""
    return f"{MARK}  # -> {tuple(int(size) for size in record.output_shape)!r}{MARK}"


def copy_paths(block: BlockSpec, path: str) -> list[str]:
    """The trace paths of a block's copies (``layer-5#2``), or its own path when it is not repeated."""
    return [path] if block.repeat == 1 else [f"{path}#{copy}" for copy in range(1, block.repeat + 1)]


def camel_name(label: str) -> str:
    """A class name from a label: ``inception-3a`` -> ``Inception3a`` (ASCII letters and digits only)."""
    return "".join(word[:1].upper() + word[1:] for word in re.findall(r"[A-Za-z0-9]+", label))[:64]


@dataclass(frozen=True)
class Item:
    """A layer or block as the code holds it: its constructor expression (marked), how it is called, a name base."""

    expr: str
    style: CallStyle
    base: str  # for the attribute name: the layer's type, or the block's class
    block: bool
    comment: str
    tensor_op: str = ""  # one of the builder's own layers: its class, unless the module style writes it inline
    inline: Inline | None = None


@dataclass
class BlockClass:
    """A block class: its name, its body (marked), and whether every place it stands agrees on the comments."""

    name: str
    body: str
    docstring: str
    consistent: bool = True

    def source(self) -> str:
        body = unmarked(self.body) if self.consistent else plain(self.body)
        return f"class {self.name}(nn.Module):\n    {self.docstring}\n\n{body}"


@dataclass
class CodeWriter:
    """Writes a design's entries as code, collecting the block classes and helpers the file needs."""

    design: Design
    trace: Trace | None
    materialize: bool
    module_style: bool
    taken: set[str]
    records: dict[str, LayerTrace] = field(default_factory=dict)
    classes: dict[str, BlockClass] = field(default_factory=dict)  # by plain body
    helpers: set[str] = field(default_factory=set)
    tensor_ops: set[str] = field(default_factory=set)  # tensor op classes the file defines
    functional: bool = False  # whether the code calls F (torch.nn.functional)
    class_by_path: dict[str, str] = field(default_factory=dict)  # each copy's class, rendered once
    shared: dict[str, str] = field(default_factory=dict)  # a shared layer's id -> the variable holding its module

    def __post_init__(self) -> None:
        self.records = self.trace.records() if self.trace is not None else {}
        targets = list(shared_targets(self.design))
        for position, layer_id in enumerate(targets):
            self.shared[layer_id] = self.fresh_variable("shared" if len(targets) == 1 else f"shared{position + 1}")

    def fresh_variable(self, base: str) -> str:
        """A name for a module variable of ``build_model`` that no other name of the file takes."""
        name, counter = base, 1
        while name in self.taken:
            counter += 1
            name = f"{base}_{counter}"
        self.taken.add(name)
        return name

    def shared_assigns(self) -> str:
        """``build_model``'s first lines in the sequential style: each shared module, built once (the book's
        ``shared = nn.LazyLinear(8)``)."""
        lines = []
        for layer_id, variable in self.shared.items():
            item = self.layer(next(e for e in self.design.layers if e.id == layer_id), layer_id, "")
            self.tensor_ops.update([item.tensor_op] if item.tensor_op else [])
            lines.append(f"    {variable} = {item.expr}\n")
        return "".join(lines)

    # ----------------------------------------------------------------------------------------- entries

    def item(self, entry: Entry, path: str) -> Item:
        """An entry at ``path`` as an item of a stack or an attribute of a class."""
        comment = shape_comment(self.records.get(path))
        if is_shared(entry):
            target = next(e for e in self.design.layers if e.id == entry.of)
            return self.layer(target, entry.of, comment)
        if not is_block(entry):
            return self.layer(entry, path, comment)
        expr = self.repeated(entry, path)
        base = self.class_name_of(entry, path) if self.module_style else entry.type
        return Item(expr, CallStyle.SINGLE, base, True, comment)

    def layer(self, spec: LayerSpec, path: str, comment: str) -> Item:
        from builder.export import layer_source, resolve_layer

        layer_type, params = resolve_layer(spec, self.records.get(path), self.materialize)
        style = call_style(spec.type, spec.params)
        if layer_type not in TENSOR_OPS:
            return Item(layer_source(layer_type, params), style, layer_type, False, comment)
        inline = inline_op(layer_type, params)
        return Item(layer_source(layer_type, params), style, layer_type, False, comment, layer_type, inline)

    def repeated(self, block: BlockSpec, path: str) -> str:
        """A block, or its copies in an ``nn.Sequential``: one expression per copy unless they all read the same."""
        render = self.class_call if self.module_style else self.block_expr
        copies = [render(block, copy) for copy in copy_paths(block, path)]
        if len(copies) == 1:
            return copies[0]
        if len({plain(copy) for copy in copies}) == 1:
            first = copies[0] if len(set(copies)) == 1 else plain(copies[0])
            return f"nn.Sequential(*[{first} for _ in range({block.repeat})])"
        return "nn.Sequential(\n" + "".join(f"{copy},\n" for copy in copies) + ")"

    def stack_items(self, entries: tuple[Entry, ...], prefix: str) -> str:
        """Lines of an ``nn.Sequential(...)``: each entry, a comma, its output shape (``prefix`` "": the top level)."""
        lines = []
        for position, entry in enumerate(entries):
            item = self.item(entry, f"{prefix}/{position}" if prefix else entry.id)
            variable = self.shared.get(entry.of if is_shared(entry) else entry.id) if not prefix else None
            if variable is not None:  # the same module object at each of its places
                item = Item(variable, item.style, item.base, False, item.comment)
            lines.append(f"{self.stackable(item)},{item.comment}\n")
        return "".join(lines)

    def stack(self, entries: tuple[Entry, ...], prefix: str) -> str:
        """A block's stack as one module: ``nn.Sequential(...)``; an empty one is ``nn.Identity()``."""
        if not entries:
            return "nn.Identity()"
        return f"nn.Sequential(\n{self.stack_items(entries, prefix)})"

    def stackable(self, item: Item) -> str:
        """The item as an ``nn.Sequential`` holds it: wrapped in Stackable when it takes several inputs or returns
        a tuple."""
        if item.tensor_op:
            self.tensor_ops.add(item.tensor_op)
        if item.style is CallStyle.SINGLE:
            return item.expr
        self.helpers.add("Stackable")
        n_inputs, first_output = CALLS[item.style]
        args = [item.expr]
        if n_inputs != 1:
            args.append(f"n_inputs={n_inputs}")
        if first_output:
            args.append("first_output=True")
        return f"Stackable({', '.join(args)})"

    # ----------------------------------------------------------------------------------------- sequential style

    def block_expr(self, block: BlockSpec, path: str) -> str:
        """One copy of a block in the sequential style: ``nn.Sequential``, ``Residual(...)`` or ``Parallel(...)``."""
        merge, dim = block_merge(block), block_dim(block)
        if merge is None:
            return f"nn.Sequential(\n{self.stack_items(block.layers, f'{path}/layers')})"
        if isinstance(block, ResidualBlock):
            self.helpers.add("Residual")
            args = [self.stack(block.body, f"{path}/body")]
            args += [f"shortcut={self.stack(block.shortcut, f'{path}/shortcut')}"] if block.shortcut else []
            default = Merge.ADD
        else:
            self.helpers.add("Parallel")
            args = [self.stack(branch, f"{path}/branches/{n}") for n, branch in enumerate(block.branches)]
            default = Merge.CONCAT
        args += [f"merge={str(merge)!r}"] if merge is not default else []
        args += [f"dim={int(dim)}"] if merge is Merge.CONCAT and dim != 1 else []
        return f"{block.type}(\n" + "".join(f"{arg},\n" for arg in args) + ")"

    # ----------------------------------------------------------------------------------------- module style

    def class_call(self, block: BlockSpec, path: str) -> str:
        return f"{self.block_class(block, path)}()"

    def class_name_of(self, block: BlockSpec, path: str) -> str:
        """The class of the block's first copy (the attribute that holds it is named after it)."""
        return self.block_class(block, copy_paths(block, path)[0])

    def block_class(self, block: BlockSpec, path: str) -> str:
        """The class for one copy of a block: a new one, or the one already written for the same code."""
        if path in self.class_by_path:
            return self.class_by_path[path]
        body = self.class_body(block, path)
        key = plain(body)
        found = self.classes.get(key)
        if found is None:
            found = BlockClass(self.fresh_class_name(block), body, _docstring(block))
            self.classes[key] = found
        found.consistent = found.consistent and found.body == body
        self.class_by_path[path] = found.name
        return found.name

    def fresh_class_name(self, block: BlockSpec) -> str:
        base = camel_name(block.label) or CLASS_BASES[block.type]
        base = f"{block.type}{base}" if base[0].isdigit() else base
        name, counter = base, 1
        while name in self.taken:
            counter += 1
            name = f"{base}_{counter}" if base[-1].isdigit() else f"{base}{counter}"
        self.taken.add(name)
        return name

    def class_body(self, block: BlockSpec, path: str) -> str:
        """``__init__`` and ``forward`` of one copy of a block (marked)."""
        merge = block_merge(block)
        if merge is None:
            assigns, calls = self.chain([(e, f"{path}/layers/{n}") for n, e in enumerate(block.layers)])
            return _methods(assigns, calls + "        return x\n")
        stacks = block.stacks()
        residual = isinstance(block, ResidualBlock)
        names = ["body", "shortcut"] if residual else [f"branch{n + 1}" for n in range(len(stacks))]
        assigns = "".join(
            f"        self.{name} = {self.stack(stack.entries, f'{path}/{stack.key}')}\n"
            for name, stack in zip(names, stacks, strict=True)
            if stack.entries
        )
        calls = {name: f"self.{name}(x)" if stack.entries else "x" for name, stack in zip(names, stacks, strict=True)}
        operands = list(calls.values())
        if residual:  # merge(shortcut(x), body(x)), but the book writes the body first when it adds
            operands = operands if merge is Merge.ADD else operands[::-1]
        comment = shape_comment(self.records.get(path))
        returned = f"        return {_merged(merge, block_dim(block), operands)}{comment}\n"
        return _methods(assigns, returned)

    def chain(self, located: list[tuple[Entry, str]]) -> tuple[str, str]:
        """Attributes holding the entries, and the forward lines calling them in turn."""
        items = [self.item(entry, path) for entry, path in located]
        owned_items = [item for item, (entry, _) in zip(items, located, strict=True) if not is_shared(entry)]
        names = attribute_names_for(owned_items)
        parameters = iter(parameter_names(owned_items, names))
        owned, by_id, assigns, calls = iter(names), {}, [], []
        for item, (entry, _) in zip(items, located, strict=True):
            if is_shared(entry):  # the attribute (or inline parameter) of the layer it shares, used once more
                name = by_id[entry.of]
            elif item.inline is None:
                name = by_id[entry.id] = next(owned)
                self.tensor_ops.update([item.tensor_op] if item.tensor_op else [])
                assigns.append(f"        self.{name} = {item.expr}\n")
            else:
                next(owned)  # an inline tensor op holds no module attribute
                name = by_id[entry.id] = next(parameters) if item.inline.parameter is not None else ""
                if item.inline.parameter is not None:
                    assigns.append(f"        self.{name} = {item.inline.parameter[1]}\n")
            if item.inline is None:
                calls.append(_forward_line(name, item))
            else:
                self.functional = self.functional or uses_functional(item.tensor_op)
                calls.append(f"        x = {item.inline.code(f'self.{name}' if name else '')}{item.comment}\n")
        return "".join(assigns), "".join(calls)

    def class_sources(self) -> list[str]:
        """The block classes, inner ones first (each is registered after the classes it uses)."""
        return [found.source() for found in self.classes.values()]


def _merged(merge: Merge, dim: int, operands: list[str]) -> str:
    if merge is Merge.CONCAT:
        return (
            f"torch.cat(({', '.join(operands)},), dim={int(dim)})"
            if len(operands) == 1
            else (f"torch.cat(({', '.join(operands)}), dim={int(dim)})")
        )
    return f" {OPERATORS[merge]} ".join(operands)


def _methods(assigns: str, forward: str) -> str:
    return (
        "    def __init__(self) -> None:\n"
        f"        super().__init__()\n{assigns}\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        f"{forward}"
    )


def _docstring(block: BlockSpec) -> str:
    """The class's docstring, naming the block by its label (made safe for a docstring) and its type."""
    label = " ".join("".join(ch if ch.isprintable() else " " for ch in block.label[:100]).split())
    label = label.replace("\\", "/").replace('"', "'")
    what = f"a {block.type}" + (f" of {_stacks_text(block)}" if not isinstance(block, ResidualBlock) else "")
    return f'"""The {label} block: {what}."""' if label else f'"""A {block.type} block."""'


def _stacks_text(block: BlockSpec) -> str:
    count, noun = (len(block.branches), "branch") if isinstance(block, ParallelBlock) else (len(block.layers), "layer")
    return f"{count} {noun}" if count == 1 else f"{count} {noun}es" if noun == "branch" else f"{count} {noun}s"


def _forward_line(attribute: str, item: Item) -> str:
    """``x = self.linear1(x)``; tuple results unpacked (``x, _ = self.lstm1(x)``), x repeated for each input."""
    n_inputs, first_output = CALLS[item.style]
    target = "x, _" if first_output else "x"
    return f"        {target} = self.{attribute}({', '.join(['x'] * n_inputs)}){item.comment}\n"


def parameter_names(items: list[Item], taken: list[str]) -> list[str]:
    """Attributes of the inline tensor ops' parameters, in order: ``pos_embedding``, ``cls_token``; numbered from 1
    when a name repeats (``layer_scale1``, ``layer_scale2``), never a name ``taken`` or nn.Module needs."""
    bases = [item.inline.parameter[0] for item in items if item.inline is not None and item.inline.parameter]
    counts: dict[str, int] = {}
    names: list[str] = []
    for base in bases:
        counts[base] = counts.get(base, 0) + 1
        name = f"{base}{counts[base]}" if bases.count(base) > 1 else base
        while name in MODULE_ATTRIBUTES or name in taken or name in names:
            name = f"{name}_"
        names.append(name)
    return names


def attribute_names_for(items: list[Item]) -> list[str]:
    """Layers: snake_case type and a counter per type (linear1, relu1, linear2); blocks: their class in snake_case
    (down1), a counter only when a class repeats. Never a name nn.Module or Python needs, never twice."""
    from builder.export import snake_case

    counts: dict[str, int] = {}
    names: list[str] = []
    for item in items:
        base = snake_case(item.base)
        counts[base] = counts.get(base, 0) + 1
        name = f"{base}{counts[base]}" if not item.block else base if counts[base] == 1 else f"{base}_{counts[base]}"
        while name in MODULE_ATTRIBUTES or name in names or not name.isidentifier():
            name = f"{name}_block" if item.block else f"{name}_"
        names.append(name)
    return names
