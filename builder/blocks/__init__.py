"""Blocks (format 2): what the core needs beyond a flat stack of layers.

``merge`` holds the merges' vocabulary (symbols, operators, how tensors are combined and what it costs);
``edit`` holds the tree's pure edits (wrap, unwrap, block fields, fixes such as a projection shortcut). The block
models themselves are part of the design format (``builder.design``).
"""
