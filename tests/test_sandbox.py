"""The sandbox: custom layer code runs in a limited worker process, and every hostile layer gets a clear message fast.

Each hostile case runs through ``check_layer`` and through ``trace_in_worker`` (via ``builder.run.analyze``), and a
few through the CLI. Every one must name the layer (and the line, where one applies), return within a few seconds,
write no file and leave the sandbox working for the next check.
"""

from __future__ import annotations

import errno
import os
import pickle
import resource
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from builder import sandbox
from builder.catalog import ParamKind
from builder.custom import check_source, layer_signature
from builder.design import CustomLayerSpec, Design, DesignError, InputSpec, LayerSpec, dump_design
from builder.run import analyze
from builder.sandbox import pool, results
from builder.sandbox.protocol import GRACE

TIMEOUT = 1.5  # seconds per job in these tests (the default is 10)
FAST = TIMEOUT + GRACE + 2.5  # a hostile case must come back within this, worker kill included
ROOT = Path(__file__).resolve().parent.parent
PROBE = "/tmp/builder-sandbox-probe"  # hostile layers try to create this file

CENTERED = "class CenteredLayer(nn.Module):\n    def forward(self, X):\n        return X - X.mean()\n"
MY_LINEAR = (
    "class MyLinear(nn.Module):\n"
    "    def __init__(self, in_units, units):\n"
    "        super().__init__()\n"
    "        self.weight = nn.Parameter(torch.randn(in_units, units))\n"
    "        self.bias = nn.Parameter(torch.randn(units,))\n"
    "    def forward(self, X):\n"
    "        linear = torch.matmul(X, self.weight.data) + self.bias.data\n"
    "        return F.relu(linear)\n"
)
GATE = (
    "class Gate(nn.Module):\n"
    "    def forward(self, x):\n"
    "        if x.sum() > 0:\n"
    "            return x * 2\n"
    "        return -x\n"
)


def forward_layer(body: str, name: str = "Evil") -> str:
    """A layer whose forward runs ``body`` (from line 3) and then returns its input."""
    lines = "".join(f"        {line}\n" for line in body.splitlines())
    return f"class {name}(nn.Module):\n    def forward(self, X):\n{lines}        return X\n"


def init_layer(body: str, name: str = "Evil") -> str:
    """A layer whose __init__ runs ``body`` (from line 4)."""
    lines = "".join(f"        {line}\n" for line in body.splitlines())
    return (
        f"class {name}(nn.Module):\n    def __init__(self):\n        super().__init__()\n{lines}"
        "    def forward(self, X):\n        return X\n"
    )


# (id, source, expected words in the message, line, refused before running)
HOSTILE = [
    ("loop-in-forward", forward_layer("while True:\n    pass"), "forward did not finish within 1.5 s", 3, False),
    ("loop-in-init", init_layer("while True:\n    pass"), "__init__ did not finish within 1.5 s", 4, False),
    ("loop-in-c-code", forward_layer("sum(range(10**15))"), "forward did not finish within 1.5 s", None, False),
    ("memory-bomb", forward_layer("b = bytearray(60 * 1024**3)"), "forward ran out of memory (MemoryError)", 3, False),
    ("torch-memory-bomb", forward_layer("b = torch.ones(2**34)"), "forward ran out of memory", 3, False),
    ("recursion", forward_layer("return self.forward(X)"), "forward recursed without end", 3, False),
    ("recursion-in-helper", forward_layer("f = lambda n: f(n + 1)\nf(0)"), "forward recursed without end", 3, False),
    ("sys-exit", "import sys\n" + forward_layer("sys.exit(1)"), "`import sys` is not allowed", 1, True),
    (
        "raise-system-exit",
        forward_layer("raise SystemExit"),
        "forward raised SystemExit: a layer cannot stop",
        3,
        False,
    ),
    (
        "raise-system-exit-3",
        forward_layer("raise SystemExit(3)"),
        "raise an exception with a message instead",
        3,
        False,
    ),
    (
        "raised-exception",
        forward_layer("raise ValueError('units must be positive, got -3')"),
        "forward raised ValueError: units must be positive, got -3",
        3,
        False,
    ),
    ("syntax-error", "class Evil(nn.Module):\n    def forward(self, X)\n        return X\n", "syntax error", 2, True),
    ("no-forward", "class Evil(nn.Module):\n    pass\n", "class Evil has no forward method", 1, True),
    ("import-os", "import os\n" + forward_layer("os.remove('x')"), "`import os` is not allowed", 1, True),
    ("open", forward_layer(f"open({PROBE!r}, 'w').write('x')"), "`open` is not available", 3, True),
    ("dunder-import", forward_layer(f"__import__('os').system('touch {PROBE}')"), "`__import__`", 3, True),
    (
        "subclasses-escape",
        forward_layer("().__class__.__mro__[-1].__subclasses__()"),
        "`__class__` is not allowed",
        3,
        True,
    ),
    (
        "torch-save",
        forward_layer(f"torch.save(X, {PROBE!r})"),
        "`.save` is not allowed: it reads or writes files",
        3,
        True,
    ),
    ("torch-module-escape", forward_layer("torch.os.system('true')"), "`.os` is not allowed", 3, True),
    ("top-level-code", "x = print('hi')\n" + forward_layer("pass"), "only imports, classes, functions", 1, True),
]


@pytest.fixture(scope="module", autouse=True)
def worker():
    """One warm worker for the module (its start-up is not part of any case's time)."""
    sandbox.shutdown()
    sandbox.configure(enabled=None, timeout=None, memory=None, workers=1)  # one worker: tests can find it
    sandbox.warm_up(wait=True)
    yield
    sandbox.shutdown()
    sandbox.configure(workers=None)


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch):
    monkeypatch.setenv(sandbox.TIMEOUT_ENV, str(TIMEOUT))
    monkeypatch.delenv(sandbox.DISABLE_ENV, raising=False)
    Path(PROBE).unlink(missing_ok=True)
    yield
    assert not Path(PROBE).exists(), "a custom layer wrote a file"


def two_layer_design(source: str, name: str = "Evil", params: dict | None = None) -> Design:
    """Linear(20, 8), then the custom layer ``name``."""
    return Design(
        input=InputSpec(shape=(2, 20)),
        layers=(
            LayerSpec(type="Linear", params={"in_features": 20, "out_features": 8}),
            LayerSpec(type=name, params=params or {}),
        ),
        custom_layers=(CustomLayerSpec(name=name, source=source),),
    )


def check_unchecked(source: str, name: str = "Evil") -> sandbox.CheckReport:
    """check_layer with the static check switched off: the runtime defences alone."""
    return sandbox.check_layer(source, name, static_check=False)


def worker_process() -> int:
    """The Python worker's pid: the pool's process itself, or bwrap's descendant running Python in the jail."""
    top = sandbox.worker_pid()
    assert top is not None
    pids = [top]
    while True:
        children = [pid for pid, parent in processes() if parent == pids[-1]]
        if not children:
            break
        pids.append(children[0])
    python = [pid for pid in pids if Path(f"/proc/{pid}/exe").resolve().name.startswith("python")]
    return python[0]


def processes() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process on the machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((int(entry.name), int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])))
            except (OSError, IndexError, ValueError):
                continue
    return found


def assert_still_works() -> None:
    report = sandbox.check_layer(MY_LINEAR, "MyLinear", {"in_units": 20, "units": 8})
    assert report.ok, report.message


# ---------------------------------------------------------------------------------------------------------------
# The seed's layers, end to end


def test_seed_layers_trace_in_the_worker() -> None:
    design = Design(
        input=InputSpec(shape=(2, 20)),
        layers=(
            LayerSpec(type="Linear", params={"in_features": 20, "out_features": 8}),
            LayerSpec(type="CenteredLayer"),
            LayerSpec(type="MyLinear", params={"in_units": 8, "units": 4}),
            LayerSpec(type="Gate"),
        ),
        custom_layers=(
            CustomLayerSpec(name="CenteredLayer", source=CENTERED),
            CustomLayerSpec(name="MyLinear", source=MY_LINEAR),
            CustomLayerSpec(name="Gate", source=GATE),
        ),
    )
    trace = analyze(design)
    assert trace.ok, trace.error and trace.error.message
    assert [t.output_shape for t in trace.layers] == [(2, 8), (2, 8), (2, 4), (2, 4)]
    my_linear = trace.layers[2]
    assert [(p.name, p.shape) for p in my_linear.params_after] == [("weight", (8, 4)), ("bias", (4,))]
    assert my_linear.params == 36 and my_linear.device == "meta"
    gate = trace.layers[3]
    assert gate.device == "cpu"
    assert any("ran on small real tensors" in note for note in gate.notes)


def test_inspect_without_running() -> None:
    trace = analyze(two_layer_design(MY_LINEAR, "MyLinear", {"in_units": 8, "units": 3}), run=False)
    assert not trace.ran and trace.error is None
    assert [(p.name, p.shape) for p in trace.layers[1].params_before] == [("weight", (8, 3)), ("bias", (3,))]


def test_check_layer_reports_shape_parameters_and_device() -> None:
    report = sandbox.check_layer(MY_LINEAR, "MyLinear", {"in_units": 20, "units": 8}, (2, 20))
    assert report.ok, report.message
    assert report.output_shape == (2, 8)
    assert [(p.name, p.shape) for p in report.params] == [("weight", (20, 8)), ("bias", (8,))]
    assert report.param_count == 168 and report.device == "meta" and not report.needs_values
    assert "ran on the meta device" in report.message


def test_check_layer_falls_back_to_real_values() -> None:
    report = sandbox.check_layer(GATE, "Gate", {}, (4, 3))
    assert report.ok and report.needs_values and report.output_shape == (4, 3)
    assert "needs values" in report.message


def test_check_layer_reports_wrong_arguments_and_prints() -> None:
    report = sandbox.check_layer(MY_LINEAR, "MyLinear", {"in_units": 20})
    assert not report.ok
    assert "__init__ raised TypeError" in report.message and "units" in report.message
    printed = sandbox.check_layer(forward_layer("print('shape', tuple(X.shape))", "Talk"), "Talk")
    assert printed.ok and printed.output == "shape (2, 20)\n"


def test_check_layer_refuses_a_tuple_output() -> None:
    report = sandbox.check_layer(forward_layer("return X, X", "Pair"), "Pair")
    assert not report.ok and "must return one tensor" in report.message


def test_legitimate_layers_pass_the_audit_hook() -> None:
    """Attention, recurrent, embedding and normalisation layers, and torch APIs a custom layer may use."""
    source = (
        "import math\n"
        "from torch.nn import init\n"
        "class Mix(nn.Module):\n"
        "    def __init__(self, dim: int = 8):\n"
        "        super().__init__()\n"
        "        self.proj = nn.Linear(dim, dim)\n"
        "        init.xavier_uniform_(self.proj.weight)\n"
        "    def forward(self, X):\n"
        "        q = self.proj(X) / math.sqrt(X.shape[-1])\n"
        "        y = F.scaled_dot_product_attention(q, q, q)\n"
        "        return torch.linalg.norm(y, dim=-1, keepdim=True) * y.softmax(-1) + torch.einsum('bsd->bsd', y)\n"
    )
    design = Design(
        input=InputSpec(shape=(2, 6), dtype="int64"),
        layers=(
            LayerSpec(type="Embedding", params={"num_embeddings": 50, "embedding_dim": 8}),
            LayerSpec(type="Mix"),
            LayerSpec(type="TransformerEncoderLayer", params={"d_model": 8, "nhead": 2, "dim_feedforward": 16}),
            LayerSpec(type="GRU", params={"input_size": 8, "hidden_size": 8, "batch_first": True}),
            LayerSpec(type="MultiheadAttention", params={"embed_dim": 8, "num_heads": 2, "batch_first": True}),
            LayerSpec(type="LayerNorm", params={"normalized_shape": [8]}),
            LayerSpec(type="Conv1d", params={"in_channels": 6, "out_channels": 4, "kernel_size": 3}),
            LayerSpec(type="BatchNorm1d", params={"num_features": 4}),
        ),
        custom_layers=(CustomLayerSpec(name="Mix", source=source),),
    )
    trace = analyze(design)
    assert trace.ok, trace.error and trace.error.message
    assert trace.output_shape == (2, 4, 6)


# ---------------------------------------------------------------------------------------------------------------
# Hostile layers


@pytest.mark.parametrize(("source", "words", "line", "static"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_check_layer(source: str, words: str, line: int | None, static: bool) -> None:
    start = time.monotonic()
    report = sandbox.check_layer(source, "Evil")
    elapsed = time.monotonic() - start
    assert not report.ok
    problem = report.problems[0]
    assert problem.layer == "Evil" and "custom layer Evil" in report.message
    assert words in problem.message, report.message
    assert problem.line == line, report.message
    assert elapsed < (0.5 if static else FAST), f"took {elapsed:.1f} s"
    assert_still_works()


@pytest.mark.parametrize(("source", "words", "line", "static"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_trace_in_worker(source: str, words: str, line: int | None, static: bool) -> None:
    design = two_layer_design(source)
    start = time.monotonic()
    if static:
        with pytest.raises(DesignError) as raised:
            analyze(design)
        message = str(raised.value)
        assert message.startswith(f"custom layer Evil, line {line}:" if line else "custom layer Evil:"), message
    else:
        trace = analyze(design)
        assert trace.error is not None and trace.error.index == 1 and trace.error.layer_type == "Evil"
        message = trace.error.message
        assert message.startswith("layer 2 Evil():"), message
        if line:
            assert f"(line {line})" in message, message
    assert words in message, message
    assert time.monotonic() - start < (0.5 if static else FAST)
    assert_still_works()


def test_timeout_keeps_the_layers_before_it() -> None:
    trace = analyze(two_layer_design(forward_layer("while True:\n    pass")))
    assert [t.type for t in trace.layers] == ["Linear"] and trace.layers[0].output_shape == (2, 8)


def test_each_job_starts_clean() -> None:
    """A layer that changes torch's global state changes it for its own job only."""
    report = sandbox.check_layer(forward_layer("torch.set_default_dtype(torch.float64)", "Meddle"), "Meddle")
    assert report.ok, report.message
    trace = analyze(two_layer_design(MY_LINEAR, "MyLinear", {"in_units": 8, "units": 3}))
    assert trace.layers[1].param_bytes == 4 * trace.layers[1].params  # still float32


def test_a_crashed_job_is_named() -> None:
    outcome = pool.Outcome(progress=("Evil", "forward"), ending={"ending": "exited", "signal": signal.SIGSEGV})
    problem = sandbox._stopped(outcome, "Evil")
    assert str(problem).startswith("custom layer Evil: forward crashed the sandbox process (SIGSEGV)")


def test_a_killed_job_leaves_the_worker_running() -> None:
    pid = sandbox.worker_pid()
    report = sandbox.check_layer(forward_layer("sum(range(10**15))"), "Evil")
    assert "did not finish" in report.message
    assert sandbox.worker_pid() == pid
    assert_still_works()


# ---------------------------------------------------------------------------------------------------------------
# The runtime defences alone (static check switched off in the worker)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (f"open({PROBE!r}, 'w').write('x')", "NameError: name 'open' is not defined"),
        ("__import__('os')", "`__import__` is not allowed"),
        ("import subprocess", "ImportError: import subprocess is not allowed"),
        (f"torch.save(X, {PROBE!r})", "`.save` is not allowed"),
        ("torch.os.getcwd()", "`.os` is not allowed"),
        ("F.warnings.warn('x')", "`.warnings` is not allowed"),
        ("torch._C", "`_C` is not allowed"),
        ("torch.get_device_module('cpu')", "`.get_device_module` is not allowed"),
        ("torch.nn.Module = None", "read-only"),
        ("f = F.relu\nf.__globals__", "`__globals__` is not allowed"),
        ("type(self).forward.__globals__", "`__globals__` is not allowed"),
        (
            "for c in ().__class__.__base__.__subclasses__():\n"
            "    if c.__name__ == 'catch_warnings':\n"
            f"        c()._module.__builtins__['open']({PROBE!r}, 'w').write('x')",
            "`__class__` is not allowed",
        ),
        ("'{0.__globals__}'.format(F.relu)", "`.format` is not allowed"),
        ("g = (i for i in [1])\ng.gi_frame.f_back", "`.gi_frame` is not allowed"),
        ("match F.relu:\n    case object(__globals__=g):\n        pass", "`match` is not allowed"),
        ("self = torch\nself._C", "`_C` is not allowed"),
    ],
    ids=["open", "dunder-import", "import", "torch-save", "torch-os", "f-warnings", "torch-C", "device-module",
         "set-module", "globals", "guard-globals", "escape-to-open", "format", "frames", "match", "self-rebound"],
)  # fmt: skip
def test_runtime_defences_without_the_static_check(body: str, words: str) -> None:
    report = check_unchecked(forward_layer(body))
    assert not report.ok
    assert words in report.message and "custom layer Evil, line" in report.message, report.message


def test_class_creation_hooks_run_under_the_audit_hook() -> None:
    """__init_subclass__ runs when the sandbox subclasses the layer: custom code, held to the same rules."""
    source = (
        "class Evil(nn.Module):\n"
        "    def __init_subclass__(cls):\n"
        "        for c in ().__class__.__base__.__subclasses__():\n"
        "            if c.__name__ == 'catch_warnings':\n"
        f"                c()._module.__builtins__['open']({PROBE!r}, 'w')\n"
        "    def forward(self, X):\n"
        "        return X\n"
    )
    report = check_unchecked(source)
    assert "`__init_subclass__` is not allowed" in report.message
    assert report.problems[0].line == 2


def test_limits_refuse_file_writes_and_new_descriptors(tmp_path: Path) -> None:
    """RLIMIT_FSIZE=0 makes a write to an open file fail (no SIGXFSZ); RLIMIT_NOFILE=0 refuses any new file."""
    from builder.sandbox.child import limit_resources

    held = tmp_path / "held.txt"
    new = tmp_path / "new.txt"
    fd = os.open(held, os.O_WRONLY | os.O_CREAT)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 0
        try:
            limit_resources(5.0, 2**30)
            try:
                os.write(fd, b"data")
            except OSError as error:
                code |= 1 if error.errno == errno.EFBIG else 0
            try:
                open(new, "w").close()
            except OSError as error:
                code |= 2 if error.errno == errno.EMFILE else 0
            code |= 4 if resource.getrlimit(resource.RLIMIT_CORE) == (0, 0) else 0
        finally:
            os._exit(code)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 7
    assert held.stat().st_size == 0 and not new.exists()


# ---------------------------------------------------------------------------------------------------------------
# The worker process


def test_worker_is_single_threaded_and_has_no_secrets(monkeypatch) -> None:
    pid = worker_process()
    assert len(os.listdir(f"/proc/{pid}/task")) == 1  # forking it is safe
    names = {entry.split(b"=", 1)[0].decode() for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")}
    allowed = {"PATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "HOME",
               "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BUILDER_IN_JAIL", "PWD", ""}  # fmt: skip
    assert names <= allowed, names - allowed


def test_a_hung_worker_is_replaced() -> None:
    pid = sandbox.worker_pid()
    os.kill(worker_process(), signal.SIGSTOP)
    start = time.monotonic()
    report = sandbox.check_layer(MY_LINEAR, "MyLinear", {"in_units": 20, "units": 8})
    assert "the sandbox worker stopped answering" in report.message
    assert time.monotonic() - start < TIMEOUT + GRACE + pool.SLACK + 2
    assert sandbox.worker_pid() is None  # killed; the next check starts another
    assert_still_works()
    assert sandbox.worker_pid() not in (None, pid)


def test_a_dead_worker_is_replaced() -> None:
    pid = sandbox.worker_pid()
    os.kill(pid, signal.SIGKILL)
    assert_still_works()
    assert sandbox.worker_pid() not in (None, pid)


def test_results_are_unpickled_with_an_allowlist() -> None:
    with pytest.raises(results.ResultError, match="not a result"):
        results.load_payload(pickle.dumps(os.system))
    design = two_layer_design(CENTERED, "CenteredLayer")
    trace = analyze(design)
    assert results.trace(results.load_payload(pickle.dumps(trace)), design) == trace


# ---------------------------------------------------------------------------------------------------------------
# Settings


def test_custom_code_can_be_turned_off(monkeypatch) -> None:
    design = two_layer_design(CENTERED, "CenteredLayer")
    monkeypatch.setenv(sandbox.DISABLE_ENV, "1")
    with pytest.raises(DesignError, match="custom code is turned off"):
        analyze(design)
    sandbox.configure(enabled=True)  # the environment switch wins over the app's config
    try:
        assert "turned off" in sandbox.check_layer(CENTERED, "CenteredLayer").message
    finally:
        sandbox.configure(enabled=None)
    monkeypatch.delenv(sandbox.DISABLE_ENV)
    sandbox.configure(enabled=False)
    try:
        with pytest.raises(DesignError, match="custom layer\\(s\\) CenteredLayer: custom code is turned off"):
            analyze(design)
    finally:
        sandbox.configure(enabled=None)
    assert analyze(design).ok


def test_settings_read_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(sandbox.MEMORY_ENV, "512")
    assert sandbox.settings().memory == 512 * 2**20 and sandbox.settings().timeout == TIMEOUT
    monkeypatch.setenv(sandbox.TIMEOUT_ENV, "soon")
    with pytest.raises(sandbox.SandboxError, match="BUILDER_SANDBOX_TIMEOUT must be a number of seconds"):
        sandbox.settings()
    with pytest.raises(TypeError, match="unknown sandbox setting"):
        sandbox.configure(timout=3)


# ---------------------------------------------------------------------------------------------------------------
# Static checks and the signature, without running anything


@pytest.mark.parametrize(
    "source",
    [
        CENTERED,
        MY_LINEAR,
        "import torch\nimport torch.nn as nn\nfrom torch.nn import functional as F\nimport math\n" + CENTERED,
        "from __future__ import annotations\nSCALE = 2.0\nSIZES = (1, 2)\n" + forward_layer("return X * SCALE"),
        forward_layer("self._cache = X\nreturn self._cache"),
        "class Base(nn.Module):\n    def forward(self, X):\n        return X\nclass Evil(Base):\n    pass\n",
        "class Evil(nn.Linear):\n    pass\n",
    ],
    ids=["centered", "my-linear", "imports", "constants", "private-self", "local-base", "torch-base"],
)
def test_static_check_accepts(source: str) -> None:
    name = "CenteredLayer" if source.endswith(CENTERED) else "MyLinear" if source == MY_LINEAR else "Evil"
    assert check_source(source, name) == ()


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (forward_layer("X._version"), "private attributes only of self"),
        (forward_layer("'{0.weight}'.format(self)"), "use an f-string"),
        (forward_layer("nn.Linear.forward = None"), "changes a module"),
        (forward_layer("getattr(X, 'sum')"), "`getattr` is not available"),
        ("from torch import *\n" + forward_layer("pass"), "import the names you use"),
        ("from torch import _C\n" + forward_layer("pass"), "`_C` is not allowed"),
        ("from . import x\n" + forward_layer("pass"), "is not allowed"),
        ("class Evil:\n    def forward(self, X):\n        return X\n", "must derive from nn.Module"),
        (forward_layer("pass", "Other"), "the code defines no class Evil (it defines Other)"),
        ("x = (" + "1+" * 10_000 + "1)\n", "nested too deeply"),
        ("# " + "x" * 60_000, "keep a layer under 50,000"),
    ],
    ids=["private", "format", "monkeypatch", "getattr", "star", "torch-C", "relative", "no-base", "wrong-name",
         "deep", "long"],
)  # fmt: skip
def test_static_check_refuses(source: str, words: str) -> None:
    problems = check_source(source, "Evil")
    assert any(words in p.message for p in problems), problems


def test_layer_signature_reads_init_without_running() -> None:
    specs = layer_signature(MY_LINEAR, "MyLinear")
    assert [(s.name, s.kind, s.required) for s in specs] == [
        ("in_units", ParamKind.ANY, True),
        ("units", ParamKind.ANY, True),
    ]
    source = (
        "class Fancy(nn.Module):\n"
        "    def __init__(self, units: int, scale: float = 0.5, *, act: str = 'relu',\n"
        "                 kernel: tuple[int, int] = (3, 3), norm=nn.LayerNorm, dropout=0.1,\n"
        "                 flag: bool | None = None, **extra):\n"
        "        open('/etc/passwd')  # never runs\n"
        "    def forward(self, X):\n"
        "        return X\n"
    )
    specs = {s.name: s for s in layer_signature(source, "Fancy")}
    assert list(specs) == ["units", "scale", "act", "kernel", "norm", "dropout", "flag"]
    assert specs["units"].kind is ParamKind.INT and specs["units"].required
    assert (specs["scale"].kind, specs["scale"].default) == (ParamKind.FLOAT, 0.5)
    assert specs["act"].keyword_only and specs["act"].default == "relu"
    assert (specs["kernel"].kind, specs["kernel"].arity, specs["kernel"].default) == (ParamKind.INT_OR_TUPLE, 2, [3, 3])
    assert (specs["norm"].kind, specs["norm"].required, specs["norm"].default) == (ParamKind.ANY, False, None)
    assert (specs["dropout"].kind, specs["dropout"].minimum, specs["dropout"].maximum) == (ParamKind.FLOAT, 0, 1)
    assert specs["flag"].kind is ParamKind.BOOL and specs["flag"].optional


def test_layer_signature_of_derived_classes() -> None:
    assert layer_signature(CENTERED, "CenteredLayer") == []
    inherited = layer_signature("class Evil(nn.Linear):\n    pass\n", "Evil")
    assert [s.name for s in inherited][:2] == ["in_features", "out_features"]
    with pytest.raises(DesignError, match="custom layer Evil, line 1: syntax error"):
        layer_signature("class Evil(nn.Module)\n", "Evil")


# ---------------------------------------------------------------------------------------------------------------
# Through the CLI (a process of its own, as a user runs it)


def run_cli(tmp_path: Path, design: Design) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "design.json"
    path.write_text(dump_design(design))
    env = {**os.environ, sandbox.TIMEOUT_ENV: str(TIMEOUT), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "builder", "summary", str(path)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (forward_layer("while True:\n    pass"), "error: layer 2 Evil(): forward did not finish within 1.5 s"),
        (forward_layer(f"open({PROBE!r}, 'w')"), "error: custom layer Evil, line 3: `open` is not available"),
    ],
    ids=["loop", "open"],
)
def test_hostile_layers_through_the_cli(tmp_path: Path, source: str, words: str) -> None:
    result = run_cli(tmp_path, two_layer_design(source))
    assert result.returncode == 1, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "design.json"]


def test_seed_layers_through_the_cli(tmp_path: Path) -> None:
    design = Design(
        input=InputSpec(shape=(2, 20)),
        layers=(
            LayerSpec(type="CenteredLayer"),
            LayerSpec(type="MyLinear", params={"in_units": 20, "units": 4}),
            LayerSpec(type="Gate"),
        ),
        custom_layers=(
            CustomLayerSpec(name="CenteredLayer", source=CENTERED),
            CustomLayerSpec(name="MyLinear", source=MY_LINEAR),
            CustomLayerSpec(name="Gate", source=GATE),
        ),
    )
    result = run_cli(tmp_path, design)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in ("CenteredLayer", "MyLinear", "Gate")), result.stdout
    assert "84" in result.stdout  # MyLinear's parameters: 20 * 4 + 4


# ---------------------------------------------------------------------------------------------------------------
# Custom layers inside blocks


def block_design(source: str) -> Design:
    """A repeated stage of residual blocks whose body holds the custom layer ``Half``."""
    from builder.design import design_from_dict

    residual = {"type": "Residual", "label": "res", "body": [{"type": "Half"}, {"type": "ReLU"}]}
    stage = {"type": "Sequential", "label": "stage", "repeat": 3, "layers": [residual]}
    return design_from_dict(
        {
            "version": 2,
            "input": {"shape": [2, 8]},
            "layers": [stage],
            "custom_layers": [{"name": "Half", "source": source}],
        }
    )


def test_custom_layers_inside_blocks_trace_in_the_worker() -> None:
    from builder.custom import define_trusted
    from builder.inference import infer_shapes

    design = block_design(forward_layer("return X * 0.5", "Half").replace("        return X\n", "", 1))
    trace = analyze(design)
    assert trace.ok, trace.error and trace.error.message
    assert trace == infer_shapes(design, define_trusted(design.custom_layers))
    assert {layer.path for layer in trace.inner if layer.type == "Half"} == {
        f"layer-1#{copy}/layers/0/body/0" for copy in (1, 2, 3)
    }


def test_a_failure_inside_a_block_names_its_path() -> None:
    trace = analyze(block_design(forward_layer("while True:\n    pass", "Half")))
    assert trace.error is not None and trace.error.layer_type == "Half"
    assert trace.error.path.endswith("/layers/0/body/0") and "did not finish" in trace.error.problem


def test_a_forged_inner_record_is_refused() -> None:
    design = block_design(forward_layer("return X", "Half"))
    trace = analyze(design)
    forged = replace(trace, inner=(replace(trace.inner[0], id="layer-99"),))
    with pytest.raises(results.ResultError, match="not an entry of the design's blocks"):
        results.trace(results.load_payload(pickle.dumps(forged)), design)
