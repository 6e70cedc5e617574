"""Benchmark: the builder's shape inference against what a user would do instead, side by side in one run.

The alternative is the usual path: build the same model on the CPU (from the builder's exported code, so it is
the very same model) and call ``torchinfo.summary``. Three measurements:

1. warm, in-process: ``infer_shapes`` on design (a) against build + ``torchinfo.summary`` (target: >= 10x faster);
2. whole processes: ``python -m builder summary a.json`` against a python process doing the torchinfo path
   (target: at most 0.75 of its time). Design (a) takes a batch of 8 ImageNet-sized images; the same design on
   one image is measured too, for reference: there both processes are dominated by importing torch (and, for
   the meta device, torch._dynamo), so the builder's advantage shrinks to nothing;
3. design (b), ~12 billion parameters: the ``summary`` process's wall time and peak RSS (targets: < 20 s,
   < 1.5 GB). The torchinfo path cannot run it here: its weights alone need 47 GB;
4. design (c), ResNet-50 with residual blocks on a batch of 8 ImageNet images: warm ``infer_shapes`` against
   build + ``torchinfo.summary`` (target: >= 10x faster);
5. design (d), 60 repeated residual blocks with 1.1 billion parameters: the ``summary`` process's wall time and
   peak RSS (targets: < 20 s, < 1.5 GB);
6. the seed MLP (examples/d2l-mlp.json), a small design: the ``summary`` process against a bare
   ``python -c "import torch"`` (target: within 1.3x) and against the torchinfo process, the three alternating,
   median of 7. Its small layers run on the CPU (``builder.fast_path``), so it never imports torch._dynamo.

Run: ``python benchmarks/bench_inference.py`` (about two minutes), or ``... small`` for measurement 6 alone. It
prints ratios; the README quotes them.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torchinfo  # noqa: E402

from benchmarks.designs import conv_mlp_design, deep_residual_design, huge_mlp_design, resnet50_design  # noqa: E402
from builder.design import Design, dump_design  # noqa: E402
from builder.examples import load_example  # noqa: E402
from builder.export import ExportStyle, export_code  # noqa: E402
from builder.inference import infer_shapes  # noqa: E402

TORCHINFO_SCRIPT = """
import runpy, sys
import torch, torchinfo
ns = runpy.run_path(sys.argv[1])
model = ns["build_model"]()
torchinfo.summary(model, input_size=ns["INPUT_SHAPE"], device="cpu", verbose=0)
"""


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def torchinfo_path(code_file: Path) -> None:
    """Build the exported model on the CPU and summarise it with torchinfo, as a user would."""
    namespace = runpy.run_path(str(code_file))
    model = namespace["build_model"]()
    with torch.no_grad():
        torchinfo.summary(model, input_size=namespace["INPUT_SHAPE"], device="cpu", verbose=0)


def _child(argv: list[str]) -> dict[str, float]:
    """Wall time (s), CPU time (user + system, s) and peak RSS (MB) of one child process."""
    script = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "w = time.perf_counter() - t; u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps([w, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024, r.returncode]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, check=True, cwd=ROOT)
    wall, cpu, rss, code = json.loads(out.stdout)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {code}")
    return {"wall": wall, "cpu": cpu, "rss": rss}


def _timed_process(argv: list[str]) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MB) of one child process."""
    child = _child(argv)
    return child["wall"], child["rss"]


def _median_process(argv: list[str], repeat: int) -> tuple[float, float]:
    runs = [_timed_process(argv) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def _write(folder: Path, design: Design) -> tuple[Path, Path]:
    folder.mkdir(exist_ok=True)
    design_file = folder / f"{design.name}.json"
    design_file.write_text(dump_design(design))
    code_file = folder / f"{design.name}.py"
    code_file.write_text(export_code(design, style=ExportStyle.SEQUENTIAL))
    return design_file, code_file


def small_design(folder: Path, repeat: int = 7) -> None:
    """Measurement 6: processes on a small design, alternating so that the machine's load falls on all three."""
    design = load_example("d2l-mlp")
    design_file, code_file = _write(folder / "small", design)
    runner = folder / "torchinfo_small.py"
    runner.write_text(TORCHINFO_SCRIPT)
    commands = {
        "summary": [sys.executable, "-m", "builder", "summary", str(design_file)],
        "import torch": [sys.executable, "-c", "import torch"],
        "torchinfo": [sys.executable, str(runner), str(code_file)],
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            runs[name].append(_child(argv))

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    ours, bare, theirs = (median(name, "wall") for name in commands)
    cpu = {name: median(name, "cpu") for name in commands}
    print(f"6. {design.name} whole process (median of {repeat}, alternating): builder summary {ours:.2f} s, "
          f"python -c 'import torch' {bare:.2f} s, torchinfo path {theirs:.2f} s -> {ours / bare:.2f}x import torch "
          f"(target <= 1.3x), {ours / theirs:.2f}x the torchinfo path; CPU time {cpu['summary']:.2f} s, "
          f"{cpu['import torch']:.2f} s, {cpu['torchinfo']:.2f} s -> {cpu['summary'] / cpu['import torch']:.2f}x "
          f"import torch")  # fmt: skip


def main() -> None:
    if sys.argv[1:] == ["small"]:
        with tempfile.TemporaryDirectory() as tmp:
            small_design(Path(tmp))
        return
    design_a, design_b = conv_mlp_design(), huge_mlp_design()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        file_a, code_a = _write(folder, design_a)
        file_b, _ = _write(folder, design_b)
        trace = infer_shapes(design_a)
        print(f"design (a): {len(design_a.layers)} layers, {trace.total_params / 1e6:.1f}M parameters, "
              f"{trace.total_flops / 1e9:.1f} GFLOPs on input {design_a.input.shape}")  # fmt: skip

        ours = _best(lambda: infer_shapes(design_a), repeat=5)
        theirs = _best(lambda: torchinfo_path(code_a), repeat=3)
        print(f"1. warm in-process: builder {ours * 1000:.0f} ms, build + torchinfo {theirs * 1000:.0f} ms "
              f"-> builder is {theirs / ours:.1f}x faster (target >= 10x)")  # fmt: skip

        runner = folder / "torchinfo_path.py"
        runner.write_text(TORCHINFO_SCRIPT)
        repeat = int(os.environ.get("BENCH_REPEAT", "3"))
        small_file, small_code = _write(folder / "batch1", conv_mlp_design(batch=1))
        runs = (("", file_a, code_a), (" (batch 1, for reference)", small_file, small_code))
        for label, design_file, code_file in runs:
            ours_p, ours_rss = _median_process([sys.executable, "-m", "builder", "summary", str(design_file)], repeat)
            theirs_p, theirs_rss = _median_process([sys.executable, str(runner), str(code_file)], repeat)
            print(f"2. whole process{label}: builder summary {ours_p:.2f} s ({ours_rss:.0f} MB), "
                  f"torchinfo path {theirs_p:.2f} s ({theirs_rss:.0f} MB) -> ratio {ours_p / theirs_p:.2f} "
                  f"(target <= 0.75)")  # fmt: skip

        huge = infer_shapes(design_b)
        wall_b, rss_b = _median_process([sys.executable, "-m", "builder", "summary", str(file_b)], 1)
        print(f"3. design (b): {huge.total_params / 1e9:.1f}B parameters "
              f"({huge.param_bytes / 2**30:.0f} GiB as float32): summary process {wall_b:.2f} s, "
              f"peak RSS {rss_b:.0f} MB (targets < 20 s, < 1500 MB)")  # fmt: skip
        blocks(folder)
        small_design(folder)
        print(f"   this benchmark process peaked at {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def blocks(folder: Path) -> None:
    """Measurements 4 and 5: designs with residual blocks."""
    resnet, deep = resnet50_design(), deep_residual_design()
    _, code = _write(folder, resnet)
    trace = infer_shapes(resnet)
    ours = _best(lambda: infer_shapes(resnet), repeat=5)
    theirs = _best(lambda: torchinfo_path(code), repeat=3)
    print(f"4. ResNet-50 ({trace.total_params:,} parameters, input {resnet.input.shape}): builder "
          f"{ours * 1000:.0f} ms, build + torchinfo {theirs * 1000:.0f} ms -> builder is {theirs / ours:.1f}x "
          f"faster (target >= 10x)")  # fmt: skip
    deep_file, _ = _write(folder, deep)
    wall, rss = _median_process([sys.executable, "-m", "builder", "summary", str(deep_file)], 1)
    print(f"5. 60 residual blocks ({infer_shapes(deep).total_params / 1e9:.2f}B parameters): summary process "
          f"{wall:.2f} s, peak RSS {rss:.0f} MB (targets < 20 s, < 1500 MB)")  # fmt: skip


if __name__ == "__main__":
    main()
