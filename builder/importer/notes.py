"""What the importer tells the user: notes with line, construct and reason, the result, the errors."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from enum import StrEnum

from builder.design import Design, DesignError


class Severity(StrEnum):
    """How much a note matters to the person importing."""

    INFO = "info"  # imported, with a translation worth knowing (F.relu became nn.ReLU)
    WARNING = "warning"  # not imported, or imported differently from the source: check the design


@dataclass(frozen=True)
class ImportNote:
    """One thing the importer did not take over as written: where, what and why."""

    line: int
    construct: str
    message: str
    severity: Severity = Severity.WARNING

    def __str__(self) -> str:
        return f"line {self.line}: {self.severity}: `{self.construct}`: {self.message}"


@dataclass(frozen=True)
class ImportResult:
    """The imported design and the notes about what was translated, skipped or replaced."""

    design: Design
    notes: tuple[ImportNote, ...] = ()

    @property
    def problems(self) -> tuple[ImportNote, ...]:
        """The warnings: parts of the source that are missing from the design or differ in it."""
        return tuple(n for n in self.notes if n.severity is Severity.WARNING)


class ImportFailed(DesignError):
    """Nothing in the source could be imported; the message says what was expected and what was found.

    ``candidates`` names the classes and functions that could each be the model when the code builds none:
    ``import_code(..., model=name)`` imports the one picked. ``differences`` are the places where a design would
    differ from the model the code builds, the reason nothing was imported.
    """

    def __init__(
        self, message: str, candidates: tuple[str, ...] = (), differences: tuple[ImportNote, ...] = ()
    ) -> None:
        super().__init__(message)
        self.candidates = candidates
        self.differences = differences


class NotLiteral(Exception):
    """An expression whose value is only known when the code runs."""

    def __init__(self, node: ast.AST, why: str = "") -> None:
        super().__init__(why)
        self.node = node
        self.why = why


class Unsupported(Exception):
    """A construct the importer cannot translate into layers."""

    def __init__(self, node: ast.AST, why: str) -> None:
        super().__init__(why)
        self.node = node
        self.why = why
