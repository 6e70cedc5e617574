"""Import PyTorch source code into a design, statically.

``import_code`` parses pasted code with ``ast`` and never runs it. It understands an ``nn.Sequential(...)``
expression or assignment, a function returning one (the exported ``build_model()``), and an ``nn.Module`` class
whose ``forward`` is a straight chain of its sub-modules. Constructor arguments must be literal values (names bound
to literals in the pasted code count). Classes of the pasted code used as layers are carried as custom layers, for
the sandbox to check. Whatever cannot be imported becomes an :class:`ImportNote` naming the line, the construct
and why; nothing is guessed without a note.

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
- ``reader``: ``Importer``, the readers composed into one object.
"""

from builder.importer.entry import import_code, parse_source
from builder.importer.notes import ImportFailed, ImportNote, ImportResult, Severity

__all__ = ["ImportFailed", "ImportNote", "ImportResult", "Severity", "import_code", "parse_source"]
