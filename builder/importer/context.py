"""The state of one import: the parsed source, its names and aliases, the notes gathered on the way."""

from __future__ import annotations

import ast

from builder.catalog import catalog
from builder.design import CustomLayerSpec, DType
from builder.importer.notes import ImportNote, Severity
from builder.importer.syntax import COMPOUND, DEFAULT_ALIASES, NN, _dotted, _module_bases, _star_imports, read_aliases


class ImporterBase:
    """One import: the parsed source, its names, and the notes gathered on the way."""

    def __init__(self, source: str, tree: ast.Module) -> None:
        self.source = source
        self.tree = tree
        self.aliases = {**DEFAULT_ALIASES, **read_aliases(tree)}
        self.assumed_aliases = {k for k in DEFAULT_ALIASES if k not in read_aliases(tree)}
        self.star_nn = NN in _star_imports(tree)
        self.model_dtype: DType | None = None  # set by model.double() / model.float()
        self.notes: list[ImportNote] = []
        self.custom: dict[str, CustomLayerSpec] = {}
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        self.module_classes = self._find_module_classes()
        self.toplevel_names = self._toplevel_names()
        self.decomposing: list[str] = []  # classes being read, to refuse a class that contains itself
        self.probe: tuple[int, ...] | None = None  # the input the code feeds its model, for reshapes to be checked

    # -- notes ---------------------------------------------------------------------------------------------

    def snippet(self, node: ast.AST) -> str:
        """The source of a construct on one line, shortened; only the header of a class, def, loop or branch."""
        text = ast.get_source_segment(self.source, node) or ast.unparse(node)
        if isinstance(node, COMPOUND):
            text = text.splitlines()[0].rstrip(":") + ": ..."
        text = " ".join(text.split())
        return text if len(text) <= 80 else text[:77] + "..."

    def note(self, node: ast.AST, message: str, severity: Severity = Severity.WARNING) -> None:
        line = getattr(node, "lineno", 0)
        entry = ImportNote(line, self.snippet(node), message, severity)
        if entry not in self.notes:
            self.notes.append(entry)

    def info(self, node: ast.AST, message: str) -> None:
        self.note(node, message, Severity.INFO)

    # -- names ---------------------------------------------------------------------------------------------

    def resolve(self, node: ast.AST) -> str | None:
        """The qualified name an expression refers to (``nn.Linear`` -> ``torch.nn.Linear``), or None."""
        name = _dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        if head in self.classes or head in self.functions:
            return name
        if head not in self.aliases:
            star = self.star_nn and not rest and (head in catalog() or head == "Sequential")
            return f"{NN}.{head}" if star else name
        if head in self.assumed_aliases:
            self.assumed_aliases.discard(head)
            self.info(node, f"`{head}` is not imported; read as {self.aliases[head]} (and so on below)")
        qualified = self.aliases[head]
        return f"{qualified}.{rest}" if rest else qualified

    def _find_module_classes(self) -> set[str]:
        found: set[str] = set()
        changed = True
        while changed:  # a class may subclass another pasted class defined earlier or later
            changed = False
            for name, cls in self.classes.items():
                if name not in found and _module_bases(cls, self._base_name, found):
                    found.add(name)
                    changed = True
        return found

    def _base_name(self, node: ast.AST) -> str | None:
        name = _dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        qualified = self.aliases.get(head, head)
        return f"{qualified}.{rest}" if rest else qualified

    def _toplevel_names(self) -> dict[str, int]:
        names: dict[str, int] = {}
        for stmt in self.tree.body:
            if isinstance(stmt, ast.ClassDef | ast.FunctionDef):
                names[stmt.name] = stmt.lineno
            elif isinstance(stmt, ast.Import | ast.ImportFrom):
                for alias in stmt.names:
                    names[(alias.asname or alias.name).split(".")[0]] = stmt.lineno
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    for node in ast.walk(target):
                        if isinstance(node, ast.Name):
                            names[node.id] = stmt.lineno
        return names
