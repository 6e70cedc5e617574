"""The importer of one paste, composed of its readers (each in its own module of this package)."""

from __future__ import annotations

from builder.importer.calls import CallReading
from builder.importer.classes import ClassReading
from builder.importer.custom import CustomCarrying
from builder.importer.models import ModelReading
from builder.importer.tying import TyingReading


class Importer(ModelReading, ClassReading, CustomCarrying, CallReading, TyingReading):
    """One import: the parsed source, its names, the notes, and every reader of the paste's constructs."""
