"""The entry points: parse the paste, read its model and input, return the validated design with notes."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

from builder.design import Design, DesignError, DType, Entry, InputSpec, LayerSpec, is_block, validate_design
from builder.importer.choice import REFUSED, Evaluated, candidate_definitions, evaluate_model
from builder.importer.inputs import choose_input, read_input
from builder.importer.models import _TopLevel, choose_model, read_toplevel
from builder.importer.notes import ImportFailed, ImportNote, ImportResult, Severity
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


def import_code(
    source: str, name: str = "imported", input_shape: tuple[int, ...] | None = None, model: str | None = None
) -> ImportResult:
    """Read PyTorch code into a design, statically: nothing in ``source`` is executed.

    Straight chains are read directly; helper functions, loops, skip connections, branches and the book's
    ``d2l.Classifier`` style are read by abstract evaluation (:mod:`builder.importer.evaluate`).

    Args:
        source: Python code building a model: an ``nn.Sequential(...)``, a function returning one, an
            ``nn.Module`` class, or the book's classes setting ``self.net``, with the instantiation at the end.
        name: the design's name.
        input_shape: the input shape, batch included; else the code's ``INPUT_SHAPE``, its ``layer_summary``,
            the tensor it feeds the model, or one chosen from the first layer (with a note).
        model: the class or function to import, when the code defines several and builds none
            (``ImportFailed.candidates`` lists them).

    Returns:
        An ImportResult: the validated design and the notes on every construct translated, replaced or skipped.

    Raises:
        ImportFailed: the code does not parse, or holds no model that can be imported.
    """
    importer = Importer(source, parse_source(source))
    top = read_toplevel(importer)
    importer.probe = input_shape or _fed_input(importer, top)
    read = _read_model(importer, top, model)
    layers = importer.resolve_ties(read.layers)
    stated = _stated_input(importer, top, read)
    if input_shape is not None:
        stated = (_given_shape(input_shape), stated[1])
    spec = choose_input(importer, layers, stated, read.where)
    design = Design(name=name, input=spec, layers=tuple(layers), custom_layers=tuple(importer.custom.values()))
    notes = sorted(importer.notes, key=lambda n: n.line)
    return ImportResult(validate_design(design), tuple(notes))


@dataclass
class _Model:
    """The model read: where it is built, its entries, and the input shapes evaluation found."""

    where: ast.AST
    layers: list[Entry]
    shape: tuple[int, ...] | None = None  # layer_summary's
    data_shape: tuple[int, ...] | None = None  # the data set's


def _read_model(importer: Importer, top: _TopLevel, model: str | None) -> _Model:
    """The chain reader's model, or abstract evaluation's where the chain reader cannot follow the code."""
    before = (list(importer.notes), dict(importer.custom))
    try:
        chosen, layers = choose_model(importer, top) if model is None else (importer.tree, [])
    except RecursionError:
        raise ImportFailed("the code nests expressions too deeply to be read") from None
    suffices = model is None and _chain_suffices(importer, chosen, layers, len(before[0]))
    carried = len(importer.custom) > len(before[1])  # classes carried whole may read as blocks
    if suffices and not carried:
        return _Model(chosen, list(layers))
    chain = (importer.notes, importer.custom)
    importer.notes, importer.custom = list(before[0]), dict(before[1])
    evaluated = evaluate_model(importer, model)
    if _evaluation_wins(importer, evaluated, chain[0], (chosen, layers), suffices):
        _refuse_a_different_model(importer, len(before[0]))
        return _Model(evaluated.where, evaluated.entries, evaluated.shape, evaluated.data_shape)
    if layers and not _is_fragment(importer, chosen) and not evaluated.candidates:
        refusals = [n for n in importer.notes[len(before[0]) :] if n.message.endswith(REFUSED)]
        importer.notes, importer.custom = chain  # the chain reader's result and notes stand
        _refuse_a_different_model(importer, len(before[0]), refusals)
        return _Model(chosen, list(layers))
    refusals = [n for n in importer.notes if n.severity is Severity.WARNING and n not in chain[0]]
    importer.notes = [*chain[0], *refusals]
    raise ImportFailed(_nothing_message(importer), evaluated.candidates)


def _refuse_a_different_model(importer: Importer, known: int, refusals: Sequence[ImportNote] = ()) -> None:
    """A warning while reading the model means the design would differ from the code: refuse, naming each line
    (and ``refusals``, why abstract evaluation could not read the code either)."""
    differences = [n for n in importer.notes[known:] if n.severity is Severity.WARNING]
    named = {n.line for n in differences}
    differences += [n for n in refusals if n.line not in named] if differences else []
    if differences:
        lines = "".join(f"\n  {n}" for n in sorted(differences, key=lambda n: n.line))
        raise ImportFailed(
            "not imported: the design would differ from the model this code builds, at these places (each says what "
            "a design would have done instead; rewrite them, or paste the part the builder can hold):" + lines,
            differences=tuple(sorted(differences, key=lambda n: n.line)),
        )


def _fed_input(importer: Importer, top: _TopLevel) -> tuple[int, ...] | None:
    """The input shape the code states, read before the model (a reshape of forward is checked against it)."""
    chosen = top.candidates[-1].stmt if top.candidates else importer.tree
    known = list(importer.notes)
    shape = read_input(importer, top, chosen)[0]
    importer.notes = known  # said again, where the input is chosen
    return shape


def _stated_input(importer: Importer, top: _TopLevel, read: _Model) -> tuple[tuple[int, ...] | None, DType | None]:
    """INPUT_SHAPE, else layer_summary's shape, else the tensor fed to the model, else the data set's images."""
    stated = read_input(importer, top, read.where)
    if read.shape is not None and "INPUT_SHAPE" not in top.constants:
        return read.shape, stated[1]
    if stated[0] is None and read.data_shape is not None:
        importer.info(read.where, f"input shape {read.data_shape} taken from the data set the code trains on")
        return read.data_shape, stated[1]
    return stated


def _chain_suffices(importer: Importer, chosen: ast.AST, layers: list[LayerSpec], known: int) -> bool:
    """The chain reader's result stands when it read layers without a warning, from the model itself."""
    warned = any(n.severity is Severity.WARNING for n in importer.notes[known:])
    guessed = isinstance(chosen, ast.ClassDef | ast.FunctionDef) and len(candidate_definitions(importer)) > 1
    return bool(layers) and not warned and not guessed and not _is_fragment(importer, chosen)


def _evaluation_wins(
    importer: Importer,
    evaluated: Evaluated,
    chain_notes: list[ImportNote],
    chain: tuple[ast.AST, list[LayerSpec]],
    suffices: bool,
) -> bool:
    """Whether abstract evaluation's reading replaces the chain reader's."""
    if not evaluated.entries:
        return False
    if suffices:  # read cleanly, with classes carried whole: evaluation wins when it reads them as blocks
        return any(is_block(entry) for entry in evaluated.entries)
    chosen, layers = chain
    fewer = _warnings(importer.notes) < _warnings(chain_notes)
    return not layers or _is_fragment(importer, chosen) or fewer


def _warnings(notes: list[ImportNote]) -> int:
    return sum(1 for n in notes if n.severity is Severity.WARNING)


def _is_fragment(importer: Importer, chosen: ast.AST) -> bool:
    """A helper function or class other definitions use: never the model."""
    named = isinstance(chosen, ast.ClassDef | ast.FunctionDef)
    return named and chosen.name not in candidate_definitions(importer)


def _given_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return InputSpec(shape=tuple(shape)).shape
    except ValueError:
        raise DesignError(f"input_shape: expected 1 to 6 sizes of at least 1, got {shape!r}") from None


def _nothing_message(importer: Importer) -> str:
    expected = (
        "nothing to import: expected an nn.Sequential(...) expression or assignment, a function returning one, "
        "or an nn.Module class (the book's d2l.Classifier style included), built at the end (model = Net(...))"
    )
    problems = [str(n) for n in sorted(importer.notes, key=lambda n: n.line) if n.severity is Severity.WARNING]
    return expected + ("".join(f"\n  {p}" for p in problems) if problems else "")
