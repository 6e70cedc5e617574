"""``python -m builder import FILE.py -o DESIGN.json``: read PyTorch code into a design file.

Registered by ``builder.cli`` with ``register_import_command(commands)``. The code is parsed, never run. The notes
on what was translated or skipped go to stderr; the design goes to the output file (or stdout). Exit status 0 when
a design was written, 1 with one ``error:`` line (no traceback) when the file cannot be read or holds nothing
importable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from builder.cli import input_shape_arg
from builder.summary import printable

HELP = "read PyTorch code (nn.Sequential, nn.Module classes, helper functions) into a design file; the code is not run"


def register_import_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``import`` command to the CLI's sub-commands; ``args.run`` is its handler."""
    parser = subparsers.add_parser("import", help=HELP, description=HELP)
    parser.add_argument("source", metavar="FILE.py", help="Python code holding the model")
    parser.add_argument("-o", "--output", metavar="DESIGN.json", help="write the design here (default: stdout)")
    parser.add_argument("--name", help="the design's name (default: the file's name)")
    parser.add_argument(
        "--input-shape", type=input_shape_arg, metavar="SHAPE", help="the input shape, e.g. 2,20 (default: the code's)"
    )
    parser.add_argument(
        "--model", metavar="NAME", help="the class or function to import when the code defines several and builds none"
    )
    parser.set_defaults(run=run_import)
    return parser


def _read_source(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OSError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise OSError(f"{path}: is a directory; give a Python file") from None
    except UnicodeDecodeError:
        raise OSError(f"{path}: not UTF-8 text; give a Python file") from None
    except OSError as error:
        raise OSError(f"{path}: cannot read the file ({error.strerror or error})") from None


def run_import(args: argparse.Namespace) -> int:
    """`import`: parse the file, print the notes to stderr, write the design; 1 with a message on failure."""
    from builder.design import DesignError, dump_design
    from builder.importer import import_code

    try:
        source = _read_source(args.source)
        name = args.name or Path(args.source).stem
        result = import_code(source, name=name, input_shape=args.input_shape, model=getattr(args, "model", None))
    except (OSError, DesignError) as error:
        lines = str(error).splitlines() or [""]  # "nothing to import" lists the problems, one per line
        print("error: " + "\n".join(map(printable, lines)), file=sys.stderr)
        return 1
    for note in result.notes:
        print(note, file=sys.stderr)
    text = dump_design(result.design)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"error: {args.output}: cannot write the file ({error.strerror or error})", file=sys.stderr)
        return 1
    layers, warnings = len(result.design.layers), len(result.problems)
    print(f"wrote {args.output}: {layers} layer(s), {warnings} warning(s)", file=sys.stderr)
    return 0
