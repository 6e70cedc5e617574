"""Classes of the paste used as layers: carried as source, for the sandbox to check."""

from __future__ import annotations

import ast
from typing import Any

from builder.catalog import catalog
from builder.design import CustomLayerSpec, LayerSpec
from builder.importer.context import ImporterBase
from builder.importer.literals import Scope, _json_ready, literal
from builder.importer.notes import NotLiteral, Severity
from builder.importer.syntax import _init_names, _method

# What the custom-layer source is run with (see builder.custom.define_trusted).
CUSTOM_GLOBALS: frozenset[str] = frozenset({"torch", "nn", "F"})


class CustomCarrying(ImporterBase):
    """Carries pasted classes as custom layers with literal arguments."""

    def layers_from_custom(self, node: ast.Call, name: str, scope: Scope) -> list[LayerSpec]:
        """A class of the pasted code used as a layer: carried as source, its arguments as literals."""
        cls = self.classes[name]
        if name in catalog():
            self.note(node, f"the pasted class {name} has the name of a torch.nn layer; rename it. Skipped")
            return []
        params = self.custom_arguments(node, cls, scope)
        if params is None:
            return []
        self.carry_custom(cls)
        return [LayerSpec(type=name, params=params)]

    def custom_arguments(self, node: ast.Call, cls: ast.ClassDef, scope: Scope) -> dict[str, Any] | None:
        init = _method(cls, "__init__")
        names = _init_names(init) if init else ()
        if init is not None and init.args.vararg is not None and node.args:
            self.note(
                node,
                f"{cls.name} takes *{init.args.vararg.arg}, which only has names when the code runs; a custom layer "
                "needs named, literal arguments. Skipped",
            )
            return None
        given = self.bind_arguments(node, names, cls.name)
        params: dict[str, Any] = {}
        for arg_name, value_node in given.items():
            try:
                params[arg_name] = _json_ready(literal(value_node, scope))
            except NotLiteral as error:
                self.note(
                    error.node,
                    f"{cls.name}'s argument {arg_name} is not a literal value ({error.why}); a custom layer is "
                    "carried as its class source and literal arguments, so it is skipped",
                )
                return None
        return params

    def carry_custom(self, cls: ast.ClassDef) -> None:
        """Add the class source to the design once, naming what it uses from the rest of the paste."""
        if cls.name in self.custom:
            return
        source = ast.get_source_segment(self.source, cls) or ast.unparse(cls)
        self.custom[cls.name] = CustomLayerSpec(name=cls.name, source=source)
        self.info(cls, f"carried as the custom layer {cls.name} (checked in the sandbox)")
        used = sorted({n.id for n in ast.walk(cls) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)})
        outside = [n for n in used if n in self.toplevel_names and n not in CUSTOM_GLOBALS and n != cls.name]
        if outside:
            listed = ", ".join(f"{n} (line {self.toplevel_names[n]})" for n in outside)
            self.note(
                cls,
                f"custom layer {cls.name} uses {listed} from elsewhere in the pasted code; its source runs with only "
                "torch, nn and F defined, so move what it needs inside the class",
            )

    def _class_as_layer(self, node: ast.Call | None, name: str, scope: Scope) -> list[LayerSpec]:
        """A class whose forward yields no chain comes in whole, as one custom layer, if its arguments allow."""
        cls = self.classes[name]
        if _method(cls, "forward") is None or self.problems_in(cls) == 0 or name in catalog():
            return []
        call = node or ast.Call(func=ast.Name(id=name), args=[], keywords=[])
        params = self.custom_arguments(call, cls, scope)
        if params is None:
            return []
        self.carry_custom(cls)
        self.note(cls, f"{name}'s forward is not a chain of layers: imported whole, as one custom layer")
        return [LayerSpec(type=name, params=params)]

    def problems_in(self, cls: ast.ClassDef) -> int:
        lines = range(cls.lineno, (cls.end_lineno or cls.lineno) + 1)
        return sum(1 for n in self.notes if n.line in lines and n.severity is Severity.WARNING)
