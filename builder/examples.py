"""The example designs shipped in ``examples/`` at the repository root (one JSON file per design)."""

from __future__ import annotations

import difflib
from pathlib import Path

from builder.design import Design, DesignError, load_design

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


def example_paths() -> dict[str, Path]:
    """Example name (the file's stem) -> its file, sorted by name."""
    return {path.stem: path for path in sorted(EXAMPLES_DIR.glob("*.json"))}


def _read(name: str, path: Path) -> Design:
    try:
        return load_design(path.read_text(encoding="utf-8"))
    except DesignError as error:
        raise DesignError(f"example '{name}' ({path}): {error}") from None


def list_examples() -> dict[str, Design]:
    """Every example, by name, sorted by name."""
    return {name: _read(name, path) for name, path in example_paths().items()}


def load_example(name: str) -> Design:
    """The example called ``name`` (``d2l-mlp``, ``lenet``...).

    Raises:
        DesignError: there is no such example; the message lists the close matches or all the names.
    """
    paths = example_paths()
    if name not in paths:
        close = difflib.get_close_matches(name, list(paths), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"examples: {', '.join(paths)}"
        raise DesignError(f"no example named '{name}'; {hint}")
    return _read(name, paths[name])
