"""Reading a forward method: the calls applied to the tensor flowing through, in order."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from builder.catalog import catalog
from builder.design import LayerSpec
from builder.importer.calls import _MISSING
from builder.importer.functionals import FUNCTIONALS, TENSOR_METHODS, Functional, _functional_for
from builder.importer.literals import Scope, _is_minus_one
from builder.importer.notes import Unsupported
from builder.importer.syntax import FUNCTIONAL, _dotted, _first_name
from builder.importer.tensor_ops import (
    TENSOR_OP_METHODS,
    constant_factor,
    expanded_token,
    is_one_hot_cast,
    method_layer,
    one_hot_layer,
    parameter_layer,
    reshape_layer,
    start_note,
    subscript_layer,
    token_of,
)

if TYPE_CHECKING:
    from builder.importer.classes import _ClassInfo
    from builder.importer.reader import Importer


SKIPPED = "Skipped: the stack goes on without it"
EVAL_DROPOUT = "dropout without training=self.training also drops in eval mode; nn.Dropout does not"


@dataclass
class _Step:
    """One call in a forward chain."""

    node: ast.AST
    attr: str | None = None  # self.<attr>(x)
    layer: LayerSpec | None = None  # a function or an inline layer translated to a layer
    n_inputs: int = 1
    first_output: bool = False
    tensor: str | None = None  # the learned tensor (self.<tensor> = nn.Parameter(...)) the layer holds


class _ForwardReader:
    """Walks the statements of forward, tracking which name holds the tensor flowing through the stack."""

    def __init__(self, importer: Importer, info: _ClassInfo, input_name: str) -> None:
        self.importer = importer
        self.info = info
        self.live = input_name
        self.aux: set[str] = set()  # names holding sizes read off the tensor (batch = x.size(0))
        self.tokens: dict[str, str] = {}  # names holding a learned token expanded over the batch -> its attribute
        self.tensor_uses: dict[str, str] = {}  # learned tensors used so far -> the tensor op using them
        self.steps: list[_Step] = []

    def read(self, stmt: ast.stmt) -> bool:
        """Take one statement in; True once forward returns."""
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            return False  # a docstring
        if isinstance(stmt, ast.Pass):
            return False
        if isinstance(stmt, ast.Return):
            if stmt.value is None:
                raise Unsupported(stmt, "forward returns nothing")
            self.steps += self.chain(stmt.value, first_output=False)
            return True
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            self.assign(stmt)
            return False
        if isinstance(stmt, ast.Expr):
            self.importer.info(stmt, "a statement that does not change the tensor; ignored")
            return False
        raise Unsupported(stmt, _statement_why(stmt))

    def skip(self, stmt: ast.stmt) -> None:
        """After an unsupported assignment, its target still names the running tensor."""
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = _first_name(stmt.targets[0])
            if target:
                self.live = target

    def assign(self, stmt: ast.Assign | ast.AnnAssign) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if len(targets) != 1 or stmt.value is None:
            raise Unsupported(stmt, "a chained assignment in forward")
        target = targets[0]
        if self.is_size(stmt.value):
            self.aux.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            return
        token = expanded_token(stmt.value, self.live, self.aux, self.info.parameters)
        if token is not None and isinstance(target, ast.Name):
            self.tokens[target.id] = token
            return
        name = _first_name(target)
        if name is None:
            raise Unsupported(stmt, "an assignment to something other than a name in forward")
        first_output = isinstance(target, ast.Tuple)
        self.steps += self.chain(stmt.value, first_output)
        self.live = name

    def is_size(self, node: ast.expr) -> bool:
        """``x.size(0)``, ``x.shape[0]``, ``x.shape``: sizes read off the tensor, not a new tensor."""
        inner = node.value if isinstance(node, ast.Subscript) else node
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "size":
            return True
        return isinstance(inner, ast.Attribute) and inner.attr == "shape"

    def chain(self, node: ast.expr, first_output: bool) -> list[_Step]:
        """The steps an expression applies to the running tensor, innermost first."""
        if isinstance(node, ast.Name):
            if node.id != self.live:
                raise Unsupported(node, f"uses `{node.id}` where the running tensor is `{self.live}` (a second path)")
            if first_output:
                raise Unsupported(node, "unpacks the running tensor itself")
            return []
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Constant) and node.slice.value == 0 and isinstance(node.value, ast.Call):
                return self.chain(node.value, first_output=True)
            layer = subscript_layer(node, self.info.scope)
            if layer is None or first_output:
                raise Unsupported(node, "this indexing of the tensor has no layer: Select and Slice take one dim")
            return [*self.chain(node.value, False), _Step(node, layer=layer)]
        if isinstance(node, ast.Call):
            return self.call_or_skip(node, first_output)
        if isinstance(node, ast.BinOp):
            return self.arithmetic(node)
        if isinstance(node, ast.Attribute) and node.attr == "T" and not first_output:
            self.importer.info(node, "x.T read as Transpose(0, 1): x.T of a 2-D tensor (torch deprecates it on others)")
            return [
                *self.chain(node.value, False),
                _Step(node, layer=LayerSpec(type="Transpose", params={"dim0": 0, "dim1": 1})),
            ]
        raise Unsupported(node, f"a {type(node).__name__} expression is not a layer call")

    def arithmetic(self, node: ast.BinOp) -> list[_Step]:
        """``x + self.pos_embedding``, ``x * self.layer_scale``, ``x * 0.5`` (either side), as tensor ops."""
        for tensor, other in ((node.left, node.right), (node.right, node.left)):
            name = _dotted(other) or ""
            learned = self.info.parameters.get(name.removeprefix("self.")) if name.startswith("self.") else None
            layer = parameter_layer(node.op, learned) if learned is not None else None
            factor = constant_factor(other, self.info.scope) if isinstance(node.op, ast.Mult) else None
            if layer is None and factor is not None:
                layer = LayerSpec(type="MulConstant", params={"factor": factor})
            if layer is not None:
                held = name.removeprefix("self.") if learned is not None else None
                note = start_note(layer, learned) if learned is not None else None
                if note is not None:
                    self.importer.info(node, note)
                return [*self.chain(tensor, False), _Step(node, layer=layer, tensor=self.holding(node, held, layer))]
        raise Unsupported(
            node,
            "arithmetic on the tensor has no layer; a residual x + f(x) needs a custom layer (x + self.<parameter>, "
            "x * self.<parameter> and x * <number> are read as tensor ops)",
        )

    def holding(self, node: ast.AST, tensor: str | None, layer: LayerSpec) -> str | None:
        """The learned tensor a layer holds; one used again must be used by the same operation (it is then tied)."""
        if tensor is None:
            return None
        first = self.tensor_uses.setdefault(tensor, layer.type)
        if first != layer.type:
            why = f"self.{tensor} is used by {first} and then by {layer.type}; a tied tensor stays with one operation"
            raise Unsupported(node, why)
        return tensor

    def call_or_skip(self, node: ast.Call, first_output: bool) -> list[_Step]:
        """A call that is no layer, with the tensor as its input, is skipped alone: the calls inside it still count."""
        try:
            return self.call(node, first_output)
        except Unsupported as error:
            tensor = self.tensor_argument(node)
            if error.node is not node or tensor is None:
                raise
            steps = self.chain(tensor, False)
            self.importer.note(node, f"{error.why}. {SKIPPED}")
            return steps

    def tensor_argument(self, node: ast.Call) -> ast.expr | None:
        """What flows into a call: the object of a tensor method, else a first argument that is a call."""
        if isinstance(node.func, ast.Attribute) and self._on_tensor(node.func.value):
            inner = node.func.value
            return inner if isinstance(inner, ast.Call | ast.Subscript) else None
        first = node.args[0] if node.args else None
        return first if isinstance(first, ast.Call | ast.Subscript) else None

    def call(self, node: ast.Call, first_output: bool) -> list[_Step]:
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            return self.module_call(node, func.attr, first_output)
        if isinstance(func, ast.Call):
            return self.inline_call(node, first_output)
        if is_one_hot_cast(self.importer.resolve, node):
            assert isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
            one_hot = func.value
            if not one_hot.args:
                raise Unsupported(node, "F.one_hot() is called without the tensor")
            return [*self.chain(one_hot.args[0], False), _Step(node, layer=one_hot_layer(one_hot, self.info.scope))]
        if isinstance(func, ast.Attribute) and func.attr in TENSOR_OP_METHODS and self._on_tensor(func.value):
            return [*self.chain(func.value, False), _Step(node, layer=method_layer(node, func.attr, self.info.scope))]
        if self.importer.resolve(func) == "torch.cat":
            found = token_of(node, self.live, self.tokens, self.aux, self.info.parameters)
            if found is not None:
                layer, held = found
                note = start_note(layer, self.info.parameters[held])
                if note is not None:
                    self.importer.info(node, note)
                return [_Step(node, layer=layer, tensor=self.holding(node, held, layer))]
        if isinstance(func, ast.Attribute) and func.attr in TENSOR_METHODS and self._on_tensor(func.value):
            return self.method_call(node, func.attr, first_output)
        qualified = self.importer.resolve(func) or ""
        function = _functional_for(qualified)
        if function is not None:
            return self.function_call(node, qualified, function, first_output)
        if isinstance(func, ast.Attribute) and self._on_tensor(func.value) and qualified.split(".")[0] != "torch":
            raise Unsupported(node, f"the tensor method .{func.attr}() has no layer in the catalog")
        raise Unsupported(node, _call_why(qualified, func))

    def _on_tensor(self, node: ast.expr) -> bool:
        """True unless ``node`` is a module name (``torch``, ``F``) or ``self``: a method then is no tensor method."""
        if isinstance(node, ast.Name) and node.id != self.live:
            return node.id not in self.importer.aliases and node.id != "self"
        return True

    def module_call(self, node: ast.Call, attr: str, first_output: bool) -> list[_Step]:
        if attr in self.info.containers:
            raise Unsupported(node, f"self.{attr} is an nn container; forward picks its layers at run time")
        if attr not in self.info.submodules:
            if attr in self.info.tensors:
                raise Unsupported(node, f"self.{attr} holds a value computed at run time, not a layer")
            if attr in self.info.methods:
                raise Unsupported(node, f"self.{attr}() is a method of the class, not a layer; its code is not read")
            raise Unsupported(node, f"self.{attr} is not a layer set in __init__")
        if not node.args:
            raise Unsupported(node, f"self.{attr}() is called without the tensor")
        first = ast.dump(node.args[0])
        if any(ast.dump(arg) != first for arg in node.args[1:]):
            raise Unsupported(node, f"self.{attr} gets different tensors as inputs; a stack passes x to each input")
        steps = self.chain(node.args[0], first_output=False)
        if node.keywords:
            names = ", ".join(k.arg or "**" for k in node.keywords)
            self.importer.note(node, f"keyword arguments {names} are not passed by the stack; ignored")
        return [*steps, _Step(node, attr=attr, n_inputs=len(node.args), first_output=first_output)]

    def inline_call(self, node: ast.Call, first_output: bool) -> list[_Step]:
        """``nn.ReLU()(x)``: a layer built inside forward."""
        if len(node.args) != 1:
            raise Unsupported(node, "a layer built in forward and called with more than the tensor")
        made = self.importer.layers_from_expr(node.func, Scope())
        if len(made) != 1:
            raise Unsupported(node, "not a single layer")
        self.importer.info(node, "a layer built inside forward; imported as a layer of the stack")
        return [*self.chain(node.args[0], False), _Step(node, layer=made[0], first_output=first_output)]

    def method_call(self, node: ast.Call, method: str, first_output: bool) -> list[_Step]:
        """``x.view(x.size(0), -1)``, ``x.flatten(1)``, ``x.relu()``."""
        assert isinstance(node.func, ast.Attribute)
        inner = self.chain(node.func.value, False)
        if method in ("view", "reshape"):
            return [*inner, _Step(node, layer=self.flatten_for_view(node))]
        call = ast.Call(func=node.func, args=[node.func.value, *node.args], keywords=node.keywords)
        ast.copy_location(call, node)
        layer = self.functional_layer(call, f"torch.{method}", FUNCTIONALS[method])
        return [*inner, _Step(node, layer=layer, first_output=first_output)]

    def flatten_for_view(self, node: ast.Call) -> LayerSpec:
        """``x.view(batch, -1)`` keeps the batch dimension and flattens the rest: nn.Flatten()."""
        args = node.args[0].elts if len(node.args) == 1 and isinstance(node.args[0], ast.Tuple) else node.args
        if len(args) != 2:
            return self.reshape_for_view(node)
        batch, rest = args
        keeps_batch = self.importer_is_batch(batch)
        if keeps_batch and _is_minus_one(rest):
            self.importer.info(node, "read as nn.Flatten(): keeps the batch dimension, flattens the rest")
        elif _is_minus_one(batch) and (exact := reshape_layer(node, self.info.scope)) is not None:
            self.importer.info(node, f"read as Reshape({exact.params['shape']}): the sizes view gives, batch first")
            return exact
        elif _is_minus_one(batch) and isinstance(rest, ast.Constant | ast.BinOp | ast.Name):
            self.importer.info(
                node, "read as nn.Flatten(): -1 first assumes the batch dimension is kept and the rest flattened"
            )
        else:
            return self.reshape_for_view(node)
        return LayerSpec(type="Flatten")

    def reshape_for_view(self, node: ast.Call) -> LayerSpec:
        """``x.reshape(-1, 16)``: every size a literal, the batch's included."""
        layer = reshape_layer(node, self.info.scope)
        if layer is None:
            raise Unsupported(
                node, "a view/reshape with computed sizes has no layer: give (batch, -1) or literal sizes"
            )
        return layer

    def importer_is_batch(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.aux
        return self.is_size(node)

    def function_call(self, node: ast.Call, qualified: str, function: Functional, first_output: bool) -> list[_Step]:
        tensor = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "input"), None)
        if tensor is None:
            raise Unsupported(node, f"{qualified}() is called without the tensor")
        inner = self.chain(tensor, False)
        layer = self.functional_layer(node, qualified, function)
        return [*inner, _Step(node, layer=layer, first_output=first_output)]

    def functional_layer(self, node: ast.Call, qualified: str, function: Functional) -> LayerSpec:
        """The nn layer computing a function call, its arguments renamed to the layer's."""
        importer = self.importer
        entry = catalog()[function.layer]
        given = importer.bind_arguments(
            ast.Call(func=node.func, args=node.args[1:], keywords=[k for k in node.keywords if k.arg != "input"]),
            function.args,
            qualified,
        )
        params: dict[str, Any] = dict(function.fixed)
        for name, value_node in given.items():
            if name == "training":
                if _dotted(value_node) != "self.training":
                    importer.note(node, EVAL_DROPOUT)
                continue
            value = importer.param_value(entry, name, value_node, Scope(), node)
            if value is not _MISSING:
                params[name] = value
        if "training" in function.args and "training" not in given:
            importer.note(node, EVAL_DROPOUT)
        short = qualified.replace(f"{FUNCTIONAL}.", "F.")
        importer.info(node, f"{short}() imported as the layer nn.{function.layer}")
        return LayerSpec(type=function.layer, params=params)


def _call_why(qualified: str, func: ast.expr) -> str:
    if qualified.startswith(f"{FUNCTIONAL}."):
        return f"{qualified.replace(FUNCTIONAL, 'F')}() has no equivalent layer in the catalog"
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        return f"self.{func.attr}() is a method, not a layer"
    if qualified.startswith("torch."):
        return f"{qualified}() combines or reshapes tensors; it has no layer in the catalog"
    return f"`{qualified or ast.unparse(func)}(...)` is not a layer call"


def _statement_why(stmt: ast.stmt) -> str:
    if isinstance(stmt, ast.If):
        return "a branch (if) in forward: the path depends on run-time values"
    if isinstance(stmt, ast.For | ast.While):
        return f"a loop ({type(stmt).__name__.lower()}) in forward: its layers are only known when the code runs"
    if isinstance(stmt, ast.AugAssign):
        return "in-place arithmetic on the tensor (x += ...); a stack is a straight chain"
    return f"a {type(stmt).__name__} statement in forward is not a layer call"
