"""Import PyTorch source code into a design, statically.

``import_code`` parses pasted code with ``ast`` and never runs it. Two readers share the work. The chain reader
takes an ``nn.Sequential(...)`` expression or assignment, a function returning one (the exported ``build_model()``)
and an ``nn.Module`` class whose ``forward`` is a straight chain of its sub-modules, carrying pasted classes used as
layers as custom layers for the sandbox to check. Where it cannot follow the code (or picks a helper, or carries a
class whose forward merges paths), abstract evaluation reads the model: helper functions and classes called with
literal arguments, loops, the book's ``d2l.Classifier`` style, and ``forward`` as data flow whose merges become
Residual and Parallel blocks. Whatever cannot be imported becomes an :class:`ImportNote` naming the line, the
construct and why; nothing is guessed without a note.

The package, by responsibility:

- ``entry``: ``parse_source`` and ``import_code``, the pipeline (parse -> choose the model -> its input -> design).
- ``notes``: ``ImportNote``, ``ImportResult``, ``ImportFailed`` and the internal ``NotLiteral``/``Unsupported``.
- ``syntax``, ``literals``: names, imports and def signatures of the tree; literal values and the ``Scope``.
- ``context``: ``ImporterBase``, the state of one import (source, aliases, notes, name resolution).
- ``calls``: constructor calls -> catalog layers (``nn.Sequential``, ``Stackable``, Transformer encoders).
- ``functionals``: ``F.relu`` and friends -> the layer computing them.
- ``tensor_ops``: ``x.permute``, ``x[:, 0]``, ``F.one_hot``, ``x + self.pos_embedding``... -> the builder's tensor ops.
- ``custom``: pasted classes carried as custom layers.
- ``classes``, ``forward``: a module class's ``__init__`` and the chain its ``forward`` calls.
- ``models``: which expression, function or class of the paste is the model.
- ``inputs``: the input shape and dtype.
- ``tying``: one module object used twice, read back as ``Shared`` entries.
- ``reader``: ``Importer``, the chain readers composed into one object.
- ``choice``: abstract evaluation's entry: which model the top level builds, or the candidates to pick from.
- ``values``, ``invocation``, ``evaluate``: the abstract values and budget; calls (functions, classes, methods);
  statements and expressions.
- ``flow``: modules built from calls and the entries they stand for; ``dataflow``: ``forward``'s data flow, whose
  merges become blocks; ``flow_tensors``: learned tensors, indexing, sizes read off the tensor and reshapes;
  ``introspect``: layer attributes, ``isinstance``, ``hasattr`` and ``functools.partial`` in ``__init__``.
"""

from builder.importer.entry import import_code, parse_source
from builder.importer.notes import ImportFailed, ImportNote, ImportResult, Severity

__all__ = ["ImportFailed", "ImportNote", "ImportResult", "Severity", "import_code", "parse_source"]
