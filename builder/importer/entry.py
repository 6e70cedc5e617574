"""The entry points: parse the paste, read its model and input, return the validated design with notes."""

from __future__ import annotations

import ast

from builder.design import Design, DesignError, InputSpec, validate_design
from builder.importer.inputs import choose_input, read_input
from builder.importer.models import choose_model, read_toplevel
from builder.importer.notes import ImportFailed, ImportResult, Severity
from builder.importer.reader import Importer


def parse_source(source: str) -> ast.Module:
    """The syntax tree of the pasted code, or ImportFailed naming the line of the syntax error."""
    try:
        return ast.parse(source)
    except SyntaxError as error:
        where = f"line {error.lineno}, column {error.offset}" if error.lineno else "the code"
        raise ImportFailed(f"{where}: {error.msg}; the code must be valid Python to be imported") from None
    except (ValueError, RecursionError, MemoryError) as error:  # null bytes; absurdly deep nesting
        raise ImportFailed(f"the code cannot be parsed ({type(error).__name__}: {error})") from None


def import_code(source: str, name: str = "imported", input_shape: tuple[int, ...] | None = None) -> ImportResult:
    """Read PyTorch code into a design, statically: nothing in ``source`` is executed.

    Args:
        source: Python code holding an ``nn.Sequential(...)`` expression or assignment, a function returning one,
            or an ``nn.Module`` class whose ``forward`` chains its sub-modules.
        name: the design's name.
        input_shape: the input shape, batch included; else the code's ``INPUT_SHAPE``, or the tensor it feeds
            the model, or one chosen from the first layer (with a note).

    Returns:
        An ImportResult: the validated design and the notes on every construct translated, replaced or skipped.

    Raises:
        ImportFailed: the code does not parse, or holds no layer that can be imported.
    """
    importer = Importer(source, parse_source(source))
    top = read_toplevel(importer)
    try:
        chosen, layers = choose_model(importer, top)
    except RecursionError:
        raise ImportFailed("the code nests expressions too deeply to be read") from None
    if not layers:
        raise ImportFailed(_nothing_message(importer))
    layers = importer.resolve_ties(layers)
    stated = read_input(importer, top, chosen)
    if input_shape is not None:
        stated = (_given_shape(input_shape), stated[1])
    spec = choose_input(importer, layers, stated, chosen)
    design = Design(name=name, input=spec, layers=tuple(layers), custom_layers=tuple(importer.custom.values()))
    notes = sorted(importer.notes, key=lambda n: n.line)
    return ImportResult(validate_design(design), tuple(notes))


def _given_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return InputSpec(shape=tuple(shape)).shape
    except ValueError:
        raise DesignError(f"input_shape: expected 1 to 6 sizes of at least 1, got {shape!r}") from None


def _nothing_message(importer: Importer) -> str:
    expected = (
        "nothing to import: expected an nn.Sequential(...) expression or assignment, a function returning one, "
        "or an nn.Module class whose forward calls its layers one after another (x = self.layer(x))"
    )
    problems = [str(n) for n in sorted(importer.notes, key=lambda n: n.line) if n.severity is Severity.WARNING]
    return expected + ("".join(f"\n  {p}" for p in problems) if problems else "")
