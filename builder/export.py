"""Export a design as a plain PyTorch file that runs without this project.

``export_code`` is the pipeline: resolve each layer (materializing lazy ones from a trace if asked), render its
constructor the way a person writes torch (required arguments positional, optional ones only when they differ
from torch's default), assemble the file from small blocks (imports, custom layers, ``Stackable``, the model,
the dummy forward pass) and format it with black. Custom layer sources are spliced in after formatting, so they
stay exactly as the user wrote them (a ``from __future__`` import moves to the top, where Python requires it).

Nothing of the design reaches the file as code except through two doors: ``_name`` (a Python identifier, or a
ValueError) and ``_literal`` (the repr of None, a bool, an int, a finite float, a str, or lists of those). Free
text (the design's name) goes only into the docstrings, stripped to one line of printable characters; a file
name for the code comes from ``builder.design.file_stem``.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import math
import re
from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from typing import Any

import black
from torch import nn

from builder import adapters
from builder.blocks.codegen import HELPERS, CodeWriter, unmarked
from builder.catalog import LayerEntry, catalog
from builder.design import RESERVED_NAMES, Design, DType, LayerSpec, source_bindings, validate_design
from builder.layer_run import token_range, torch_params
from builder.tensor_code import class_source
from builder.tensor_ops import TENSOR_OPS
from builder.trace import LayerTrace, Trace

Shape = tuple[int, ...]


class ExportStyle(StrEnum):
    """How the model is written out."""

    SEQUENTIAL = "sequential"  # build_model() returns an nn.Sequential
    MODULE = "module"  # an nn.Module subclass with an explicit forward


DTYPE_NAMES: dict[DType, str] = {
    DType.FLOAT32: "torch.float32",
    DType.FLOAT64: "torch.float64",
    DType.INT64: "torch.int64",
}

# Containers rendered around their repeated layer, as torch builds them: nn.TransformerEncoder(layer, num_layers=N).
ENCODER_LAYERS: dict[str, str] = {
    "TransformerEncoder": "TransformerEncoderLayer",
    "TransformerDecoder": "TransformerDecoderLayer",
}

# Mixed-case acronyms that snake_case would split ("ReLU" -> "re_lu").
WORDS: dict[str, str] = {"PReLU": "Prelu", "RReLU": "Rrelu", "ReLU": "Relu", "SiLU": "Silu"}

HEADER = '''"""{title}: a PyTorch model exported by the visual model builder.

Run this file to build the model and pass a dummy input through it; it prints the output shape.
"""

{future}import torch
{functional}from torch import nn
'''

MAIN = '''INPUT_SHAPE = {shape!r}
INPUT_DTYPE = {dtype}


def dummy_input() -> torch.Tensor:
    """{input_doc}"""
    return {input_expr}


def main() -> None:
    torch.manual_seed(0)
    model = build_model()
    model.eval()
    with torch.no_grad():
        out = model(dummy_input())
    print(tuple(out.shape))


if __name__ == "__main__":
    main()
'''


def _literal(value: Any) -> str:
    """Python source for a design value: the repr of a plain literal; anything else is refused."""
    if isinstance(value, tuple):
        items = ", ".join(_literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if value is None or type(value) in (bool, str) or (type(value) is int and -(2**63) <= value < 2**63):
        return repr(value)
    if type(value) is float and math.isfinite(value):
        return repr(value)
    raise ValueError(f"cannot write this {type(value).__name__} as a Python literal; validate the design first")


def _name(name: Any) -> str:
    """``name``, checked to be a Python identifier before it is written as code."""
    if not (isinstance(name, str) and name.isidentifier() and name.isascii() and not keyword.iskeyword(name)):
        raise ValueError(f"cannot write {name!r} as a Python name; validate the design first")
    return name


def _is_default(value: Any, default: Any) -> bool:
    """True when ``value`` is torch's default (True is not 1, 1 is 1.0)."""
    return isinstance(value, bool) == isinstance(default, bool) and value == default


def _arguments(entry: LayerEntry, params: Mapping[str, Any]) -> list[str]:
    """Required arguments positional in signature order, then optional ones that differ from the default."""
    values = torch_params(entry, params)
    args = []
    for spec in entry.params:
        if spec.name not in values:
            continue
        value = values[spec.name]
        if spec.required and not spec.keyword_only:
            args.append(_literal(value))
        elif not _is_default(value, spec.default):
            args.append(f"{_name(spec.name)}={_literal(value)}")
    return args


def layer_source(layer_type: str, params: Mapping[str, Any]) -> str:
    """The constructor call as a person writes it, ``nn.Conv2d(3, 8, 3, padding=1)``; custom layers get keywords."""
    entry = catalog().get(layer_type)
    if entry is None:
        args = [f"{_name(name)}={_literal(value)}" for name, value in params.items()]
        return f"{_name(layer_type)}({', '.join(args)})"
    if not entry.builtin:  # one of the builder's own, defined in the exported file
        return f"{layer_type}({', '.join(_arguments(entry, params))})"
    if layer_type in ENCODER_LAYERS:
        inner = {name: value for name, value in params.items() if name != "num_layers"}
        layer = layer_source(ENCODER_LAYERS[layer_type], inner)
        return f"nn.{layer_type}({layer}, num_layers={_literal(params['num_layers'])})"
    return f"nn.{layer_type}({', '.join(_arguments(entry, params))})"


def _check_materializable(design: Design, trace: Trace | None) -> Trace:
    if trace is None:
        raise ValueError("materialize=True needs the trace of a dummy forward pass: pass trace=infer_shapes(design)")
    if not trace.ok:
        where = trace.error.message if trace.error else "the trace did not run the layers (it came from inspect_design)"
        raise ValueError(f"materialize=True needs a successful trace; fix the design first: {where}")
    missing = [spec.id for spec in design.layers if trace.layer(spec.id) is None]
    if missing:
        raise ValueError(f"the trace does not belong to this design (no result for {', '.join(missing)}); re-run it")
    return trace


def resolve_layer(spec: LayerSpec, ran: LayerTrace | None, materialize: bool) -> tuple[str, dict[str, Any]]:
    """The class and arguments to write: a lazy layer becomes its concrete class with the inferred sizes."""
    entry = catalog().get(spec.type)
    if materialize and ran is not None and entry is not None and not entry.builtin:  # "auto" sizes as inferred
        return spec.type, {**spec.params, **ran.inferred}
    if not (materialize and ran is not None and entry is not None and entry.lazy):
        return spec.type, dict(spec.params)
    concrete = getattr(nn, spec.type).cls_to_become.__name__
    # The lazy class's own defaults can differ from the concrete one's (LazyInstanceNorm1d has affine=True).
    defaults = {p.name: p.default for p in entry.params if not p.required}
    return concrete, {**defaults, **ran.inferred, **spec.params}


def _returned(expr: str, design: Design) -> str:
    return f"{expr}.double()" if design.input.dtype is DType.FLOAT64 else expr


def _sequential(design: Design, writer: CodeWriter) -> str:
    items = writer.stack_items(design.layers, "")
    return (
        "def build_model() -> nn.Module:\n"
        f'    """Build the {_title(design)} model."""\n'
        f"{writer.shared_assigns()}"
        f"    model = nn.Sequential(\n{unmarked(items)}    )\n"
        f"    return {_returned('model', design)}\n"
    )


def snake_case(name: str) -> str:
    """``BatchNorm2d`` -> ``batch_norm2d``, ``LSTMCell`` -> ``lstm_cell``, ``LeakyReLU`` -> ``leaky_relu``."""
    for word, replacement in WORDS.items():
        name = name.replace(word, replacement)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def attribute_names(layer_types: list[str]) -> list[str]:
    """Attribute names from the snake_case type and a counter per type: linear1, relu1, linear2."""
    counts: dict[str, int] = {}
    names = []
    for layer_type in layer_types:
        base = snake_case(layer_type)
        counts[base] = counts.get(base, 0) + 1
        names.append(f"{base}{counts[base]}")
    return names


def _names_in_use(design: Design) -> set[str]:
    """Names the exported file binds besides the model class: its own, the custom layers', Python's."""
    bound = {name for spec in design.custom_layers for name in source_bindings(spec.source)}
    return {*RESERVED_NAMES, *design.custom_names(), *bound, *TENSOR_OPS}


def class_name(design: Design) -> str:
    """The model class: the design's name in CamelCase ("d2l mlp" -> "D2lMlp"), never clashing with a name in use."""
    words = re.findall(r"[A-Za-z0-9]+", design.name)
    name = "".join(word[:1].upper() + word[1:] for word in words)[:64] or "Model"
    if name[0].isdigit():
        name = f"Model{name}"
    taken = _names_in_use(design)
    if name in taken:
        name = f"{name}Model"
    counter = 1
    while name in taken:
        counter += 1
        name = f"{name.rstrip('0123456789')}{counter}"
    return _name(name)


def _module(design: Design, writer: CodeWriter) -> str:
    name = class_name(design)
    assigns, calls = writer.chain([(entry, entry.id) for entry in design.layers])
    return (
        f"class {name}(nn.Module):\n"
        f'    """The {_title(design)} model."""\n\n'
        "    def __init__(self) -> None:\n"
        f"        super().__init__()\n{unmarked(assigns)}\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        f"{unmarked(calls)}        return x\n\n\n"
        "def build_model() -> nn.Module:\n"
        f'    """Build the {_title(design)} model."""\n'
        f"    return {_returned(f'{name}()', design)}\n"
    )


def _title(design: Design) -> str:
    """The design's name, safe inside a docstring: one line of printable characters, no backslash or double quote."""
    printable = "".join(ch if ch.isprintable() else " " for ch in design.name[:100])
    text = " ".join(printable.split()).replace("\\", "/").replace('"', "'")
    return text or "untitled"


def _main(design: Design) -> str:
    if design.input.dtype is DType.INT64:
        high = int(token_range(design))
        doc = f"Random token ids of INPUT_SHAPE, below the vocabulary size {high}."
        expr = f"torch.randint(0, {high}, INPUT_SHAPE)"
    else:
        doc = "A random input of INPUT_SHAPE and INPUT_DTYPE."
        expr = "torch.randn(INPUT_SHAPE, dtype=INPUT_DTYPE)"
    shape = tuple(int(size) for size in design.input.shape)
    return MAIN.format(shape=shape, dtype=DTYPE_NAMES[design.input.dtype], input_doc=doc, input_expr=expr)


def _header(design: Design, features: list[str], functional: bool) -> str:
    functional = "import torch.nn.functional as F\n" if design.custom_layers or functional else ""
    future = f"from __future__ import {', '.join(map(_name, features))}\n\n" if features else ""
    return HEADER.format(title=_title(design), functional=functional, future=future)


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def _without_future(source: str) -> tuple[str, list[str]]:
    """The source without its ``from __future__`` imports (a statement alone on its lines is dropped, else becomes
    ``pass``), and the features they named."""
    tree = ast.parse(source)
    futures = [node for node in tree.body if _is_future(node)]
    lines = source.encode("utf-8").splitlines(keepends=True)
    for node in reversed(futures):  # from the end, so earlier offsets stay valid
        first, last = node.lineno - 1, node.end_lineno - 1
        head, tail = lines[first][: node.col_offset], lines[last][node.end_col_offset :]
        alone = not head.strip() and (not tail.strip() or tail.lstrip().startswith(b"#"))
        lines[first : last + 1] = [] if alone else [head + b"pass" + tail]
    features = [alias.name for node in futures for alias in node.names]
    return b"".join(lines).decode("utf-8"), features


def _custom_sources(design: Design) -> tuple[list[str], list[str]]:
    """Each custom layer's source as it goes into the file, and the ``__future__`` features they import.

    Raises:
        DesignError: a source the static check refuses (builder.custom.check_source): it is not exported.
    """
    from builder.custom import require_valid  # the static check (ast only); it imports this module's dependencies

    require_valid(design.custom_layers)
    sources, features = [], []
    for spec in design.custom_layers:
        source, named = _without_future(spec.source)
        sources.append(source.strip("\n"))
        features += [feature for feature in named if feature not in features]
    return sources, sorted(features)


@cache
def _helper_source(name: str) -> str:
    """A helper class of ``builder.adapters`` (Stackable, Residual, Parallel), as the exported file defines it."""
    return _format(inspect.getsource(getattr(adapters, name)))


def _format(source: str) -> str:
    return black.format_str(source, mode=black.Mode()).rstrip("\n")


def export_code(
    design: Design,
    trace: Trace | None = None,
    style: ExportStyle = ExportStyle.SEQUENTIAL,
    materialize: bool = False,
) -> str:
    """Write the design as a runnable PyTorch file that never imports this project.

    The file defines ``build_model()``, ``INPUT_SHAPE`` and ``INPUT_DTYPE``; run as a script it does the dummy
    forward pass and prints the output shape, such as ``(2, 10)``.

    Args:
        design: the design to export (validated here).
        trace: its ``infer_shapes`` result; each layer line then ends with its output shape, ``# -> (2, 256)``.
        style: an ``nn.Sequential`` (layers taking several inputs wrapped in ``Stackable``) or an ``nn.Module``
            subclass with an explicit forward.
        materialize: write lazy layers as their concrete classes with the sizes the trace inferred
            (``LazyLinear(256)`` -> ``Linear(20, 256)``); needs a successful trace.

    Returns:
        The source, formatted with black, the same for the same arguments.

    Raises:
        DesignError: the design is invalid, or the static check refuses a custom layer's code.
        ValueError: ``materialize`` without a successful trace of this design.
    """
    validate_design(design)
    if materialize:
        trace = _check_materializable(design, trace)
    module_style = style is ExportStyle.MODULE
    writer = CodeWriter(design, trace, materialize, module_style, _names_in_use(design) | {class_name(design)})
    model = _module(design, writer) if module_style else _sequential(design, writer)
    sources, features = _custom_sources(design)
    blocks = [
        _format(_header(design, features, writer.functional)),
        *sources,  # verbatim, not reformatted
        *(_helper_source(name) for name in HELPERS if name in writer.helpers),
        *(_format(class_source(name)) for name in TENSOR_OPS if name in writer.tensor_ops),
        *(_format(source) for source in writer.class_sources()),
        _format(model),
        _format(_main(design)),
    ]
    return "\n\n\n".join(blocks) + "\n"
