"""The command line: ``python -m builder summary|export|graph DESIGN.json`` (and ``import FILE.py``, ``doctor``).

Each command is a pipeline: read the design file -> trace it (``builder.run.analyze``) -> format the result.
Modules are imported by the command that needs them, so ``--help`` and usage errors do not import torch and
``summary`` does not import the graph or export code.

Exit codes: 0 success; 1 a problem with the design or its files (one "error: ..." line on stderr, no
traceback); 2 wrong usage. When the forward pass fails, summary prints the layers that ran, graph still writes
the graph with the failing layer in red and export still writes the code (shape comments up to the failing
layer); all three then exit 1 with the diagnosis. export --materialize writes nothing then.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from builder.summary import printable  # stdlib only: no torch before parsing

if TYPE_CHECKING:
    from builder.design import Design
    from builder.trace import Trace

EXIT_OK = 0
EXIT_ERROR = 1
DEBUG_ENV = "BUILDER_DEBUG"  # set to 1 to see the traceback of an unexpected failure
MAX_SHAPE_TEXT = 200  # characters of --input-shape; six sizes of ten digits fit many times over
EXPORT_STYLES: tuple[str, ...] = ("sequential", "module")  # builder.export.ExportStyle's values (no torch for --help)


class CommandError(Exception):
    """A failure to report as one ``error:`` line and exit status 1."""


def input_shape_arg(text: str) -> tuple[int, ...]:
    """argparse type for --input-shape: ``2,20`` or ``1x3x32x32``, within the design format's limits."""
    from builder.design import DesignError, shape_problem
    from builder.edit import parse_shape

    if len(text) > MAX_SHAPE_TEXT:
        raise argparse.ArgumentTypeError(f"{len(text):,} characters is not a shape; type sizes such as 2,20")
    try:
        shape = parse_shape(text)
    except (DesignError, ValueError) as error:  # ValueError: digits int() cannot read
        raise argparse.ArgumentTypeError(printable(str(error)).removeprefix("input shape: ")) from None
    problem = shape_problem(shape)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return shape


def read_design(path: str, input_shape: tuple[int, ...] | None = None) -> Design:
    """Load and validate a design file, optionally with another input shape; CommandError says what is wrong."""
    from builder.design import DesignError, load_design
    from builder.edit import set_input

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CommandError(f"{path}: is a directory; give a design .json file") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise CommandError(f"{path}: cannot read the file ({reason})") from None
    try:
        design = load_design(text)
        return set_input(design, input_shape) if input_shape else design
    except DesignError as error:
        raise CommandError(f"{path}: {error}") from None


def trace_design(design: Design, trust: bool = False, then: tuple[int, ...] | None = None) -> Trace:
    """The dummy forward pass; custom layers run in the sandbox worker unless ``trust``.

    With ``then``, a second input of that shape runs through the modules the first pass built, and its trace is
    returned (``builder.inference.infer_then``).
    """
    from builder.design import DesignError

    try:
        if then is not None:
            from builder.inference import infer_then
            from builder.run import analyze_then

            return infer_then(design, then)[1] if trust else analyze_then(design, then)
        if trust:
            from builder.inference import infer_shapes

            return infer_shapes(design)
        from builder.run import analyze

        return analyze(design)
    except DesignError as error:
        raise CommandError(str(error)) from None


def _report(trace: Trace) -> int:
    """Exit status for a trace: 1 with the diagnosis on stderr when the forward pass failed."""
    if trace.error is None:
        return EXIT_OK
    print(f"error: {printable(trace.error.message)}", file=sys.stderr)
    return EXIT_ERROR


def _emit(text: str, output: str | None) -> None:
    """Print ``text``, or write it to ``output``."""
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise CommandError(f"{output}: cannot write the file ({error.strerror or error})") from None
    print(f"wrote {output}", file=sys.stderr)


def run_summary(args: argparse.Namespace) -> int:
    """`summary`: the layer table, or the trace as JSON."""
    design = read_design(args.design, args.input_shape)
    then = args.then_input_shape
    trace = trace_design(design, args.trust, then)
    first = {"first_input_shape": list(design.input.shape)} if then is not None else {}
    if args.json:
        import json

        from builder.summary import summary_json

        _emit(json.dumps(summary_json(design, trace) | first, indent=2), None)
    else:
        from builder.summary import format_shape, format_summary

        table = format_summary(trace, show_error=False, design=design, depth=args.depth)
        if then is not None:
            built_by = format_shape(design.input.shape)
            table = f"Second input, through the model the first input {built_by} built:\n{table}"
        _emit(table, None)
    return _report(trace)


def run_export(args: argparse.Namespace) -> int:
    """`export`: PyTorch source for the design."""
    design = read_design(args.design, args.input_shape)
    trace = trace_design(design, args.trust)
    from builder.design import DesignError
    from builder.export import ExportStyle, export_code  # black and the code generator: only for this command

    if args.materialize and not trace.ok:
        message = trace.error.message if trace.error else "the forward pass did not run"
        raise CommandError(f"--materialize needs a design whose forward pass runs: {message}")
    try:
        code = export_code(design, trace, style=ExportStyle(args.style), materialize=args.materialize)
    except DesignError as error:  # a custom layer's code the static check refuses
        raise CommandError(str(error)) from None
    _emit(code, args.output)
    return _report(trace)


def run_graph(args: argparse.Namespace) -> int:
    """`graph`: the diagram as DOT source, or as a .gv/.svg/.png file."""
    design = read_design(args.design, args.input_shape)
    trace = trace_design(design, args.trust)
    from builder.graph import GraphError, render_graph, write_graph  # graphviz: only for this command

    unknown = [block_id for block_id in args.collapse if block_id not in _block_ids(design)]
    if unknown:
        raise CommandError(f"--collapse {unknown[0]}: the design has no block with this id; {_blocks_hint(design)}")
    graph = render_graph(design, trace, depth=args.depth, collapse=args.collapse)
    if args.output is None:
        _emit(graph.source, None)
    else:
        try:
            write_graph(graph, args.output)
        except (GraphError, OSError) as error:
            raise CommandError(str(error)) from None
        print(f"wrote {args.output}", file=sys.stderr)
    return _report(trace)


def _block_ids(design: Design) -> list[str]:
    """The ids of the design's blocks, in the order they stand."""
    from builder.design import is_block, walk

    return [located.entry.id for located in walk(design.layers) if is_block(located.entry)]


def _blocks_hint(design: Design) -> str:
    ids = _block_ids(design)
    return f"its blocks: {', '.join(ids[:20])}" if ids else "it has no blocks"


def depth_arg(text: str) -> int:
    """argparse type for --depth: a whole number from 1."""
    if not text.isdigit() or int(text) < 1 or len(text) > 6:
        raise argparse.ArgumentTypeError(f"{printable(text[:40])!r} is not a depth; give a whole number from 1")
    return int(text)


def _common() -> argparse.ArgumentParser:
    """Arguments every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("design", help="a design file (.json, as saved by the app)")
    common.add_argument(
        "--input-shape", type=input_shape_arg, metavar="SHAPE", help="override the design's input shape, e.g. 2,20"
    )
    common.add_argument(
        "--trust", action="store_true", help="run custom layers' code in this process instead of the sandbox"
    )
    return common


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "summary": (run_summary, "print the layer table: shapes, parameters, FLOPs, memory"),
    "export": (run_export, "print or write PyTorch code for the design"),
    "graph": (run_graph, "print or write the design's graph (DOT source, .svg or .png)"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per entry of COMMANDS, plus ``import``; ``args.run`` runs it."""
    from builder.cli_import import register_import_command  # argparse only: no torch before parsing
    from builder.doctor import register_doctor_command

    doc = (__doc__ or "").split("\n\n")
    parser = argparse.ArgumentParser(
        prog="python -m builder",
        description="Inspect, draw and export model designs.",
        epilog=doc[2] if len(doc) > 2 else None,  # the exit codes
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()
    sub = {name: commands.add_parser(name, parents=[common], help=text) for name, (_, text) in COMMANDS.items()}
    for name, (run, _) in COMMANDS.items():
        sub[name].set_defaults(run=run)
    register_import_command(commands)  # `import FILE.py`: reads code into a design (builder.cli_import)
    register_doctor_command(commands)  # `doctor`: what this machine offers (builder.doctor)
    sub["summary"].add_argument("--json", action="store_true", help="print the trace as JSON")
    sub["summary"].add_argument(
        "--then-input-shape",
        type=input_shape_arg,
        metavar="SHAPE",
        help="after the forward pass, feed a second input of this shape through the same, now built model",
    )
    sub["summary"].add_argument(
        "--depth", type=depth_arg, metavar="N", help="levels of blocks to show (1: top-level entries only)"
    )
    sub["graph"].add_argument(
        "--depth", type=depth_arg, metavar="N", help="draw blocks at level N and below as one node each"
    )
    sub["graph"].add_argument(
        "--collapse", action="append", default=[], metavar="ID", help="draw this block as one node (repeatable)"
    )
    sub["export"].add_argument("-o", "--output", metavar="FILE", help="write the code here (default: stdout)")
    sub["export"].add_argument("--style", choices=EXPORT_STYLES, default=EXPORT_STYLES[0], help="code layout")
    sub["export"].add_argument(
        "--materialize", action="store_true", help="replace lazy layers by their concrete classes (needs a run)"
    )
    sub["graph"].add_argument(
        "-o", "--output", metavar="FILE", help="write .gv/.dot source, or .svg/.png (needs Graphviz's dot)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit status (argparse exits with 2 itself on wrong usage)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        print(f"error: {printable(str(error))}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Python's docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except Exception as error:
        if os.environ.get(DEBUG_ENV):
            raise
        print(
            f"error: unexpected {type(error).__name__}: {printable(str(error))}. This is a bug in the builder; "
            f"run again with {DEBUG_ENV}=1 to see the traceback and report it",
            file=sys.stderr,
        )
    return EXIT_ERROR
