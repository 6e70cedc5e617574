"""The attacks of the two security issues, written from their descriptions: each is refused or harmless.

Every case runs through the API the app and the CLI use (``builder.run.analyze``, ``sandbox.check_layer``), most
also with the static check switched off (the runtime layers alone), and a few through the CLI. A marker file that
an escaping layer would create must never appear.
"""

from __future__ import annotations

import ast
import itertools
import os
import pickle
import re
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
import torch

from builder import sandbox
from builder.design import CustomLayerSpec, Design, DesignError, InputSpec, LayerSpec, dump_design
from builder.run import analyze
from builder.sandbox import child, policy, pool, protocol, restrict, results, static
from tests.hostile_layers import nested_shape_layer

ROOT = Path(__file__).resolve().parent.parent
MARKER = "/tmp/builder-escape-marker"
TIMEOUT = 2.0

MATCH_ESCAPE = f"""
class Evil(nn.Module):
    def forward(self, X):
        match F.relu:
            case object(__globals__=g):
                imp = g["__builtins__"]["__import__"]
                imp("sys").modules["builder.sandbox.child"]._JOB.channel = None
                imp("os").mkdir({MARKER!r})
        return X
"""
DEVICE_MODULE_ESCAPE = f"""
class Evil(nn.Module):
    def forward(self, X):
        raw = torch.get_device_module("cpu").torch
        get = raw.functional.operator.attrgetter("forward.__globals__")
        get(self)["os"].mkdir({MARKER!r})
        return X
"""
GUARD_ESCAPE = f"""
class Evil(nn.Module):
    def forward(self, X):
        g = type(self).forward.__globals__
        g["os"].mkdir({MARKER!r})
        return X
"""
BLIND_SPOTS: dict[str, tuple[str, str, int]] = {
    "self-rebound": ("        self = torch\n        self._C\n", "`self` may only be the first parameter", 3),
    "lambda-self": ("        f = lambda self: self._C\n        f(torch)\n", "`self` may only be the first", 3),
    "case-builtins": ("        match X:\n            case __builtins__:\n                pass\n", "`match`", 3),
    "mapping-rest": ("        match {}:\n            case {**__x__}:\n                pass\n", "`match`", 3),
    "global": ("        global __builtins__\n", "`__builtins__` is not allowed", 3),
    "keyword": ("        dict(__globals__=1)\n", "keyword `__globals__`", 3),
    "except-name": (
        "        try:\n            pass\n        except Exception as __e__:\n            pass\n",
        "`__e__`",
        5,
    ),
    "import-alias": ("        import torch as __t__\n", "`__t__`", 3),
}


@pytest.fixture(scope="module", autouse=True)
def workers():
    sandbox.shutdown()
    os.environ[protocol.ESCAPE_TESTS_ENV] = "1"  # before the workers start: they accept escape simulations
    sandbox.configure(timeout=TIMEOUT, workers=2)
    sandbox.warm_up(wait=True)
    yield
    sandbox.shutdown()
    sandbox.configure(timeout=None, workers=None)
    del os.environ[protocol.ESCAPE_TESTS_ENV]


@pytest.fixture(autouse=True)
def no_marker():
    Path(MARKER).rmdir() if Path(MARKER).is_dir() else Path(MARKER).unlink(missing_ok=True)
    yield
    assert not Path(MARKER).exists(), "an escaping layer created the marker"


def evil_design(source: str) -> Design:
    return Design(
        input=InputSpec(shape=(2, 4)),
        layers=(LayerSpec(type="Linear", params={"in_features": 4, "out_features": 4}), LayerSpec(type="Evil")),
        custom_layers=(CustomLayerSpec(name="Evil", source=source),),
    )


def forward_body(body: str) -> str:
    return f"class Evil(nn.Module):\n    def forward(self, X):\n{body}        return X\n"


def run_cli(tmp_path: Path, design: Design) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "design.json"
    path.write_text(dump_design(design))
    env = {**os.environ, sandbox.TIMEOUT_ENV: str(TIMEOUT), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "builder", "summary", str(path)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180)


# ---------------------------------------------------------------------------------------------------------------
# Escapes through the layer's code


@pytest.mark.parametrize(
    ("source", "words", "line"),
    [(MATCH_ESCAPE, "`match` is not allowed", 4), (DEVICE_MODULE_ESCAPE, "get_device_module", 4),
     (GUARD_ESCAPE, "`__globals__` is not allowed", 4)],
    ids=["match", "device-module", "guard-globals"],
)  # fmt: skip
def test_escapes_are_refused_with_layer_and_line(source: str, words: str, line: int) -> None:
    with pytest.raises(DesignError, match=rf"custom layer Evil, line {line}: .*{re.escape(words)}"):
        analyze(evil_design(source))
    unchecked = sandbox.check_layer(source, "Evil", input_shape=(2, 4), static_check=False)
    assert not unchecked.ok and words in unchecked.message, unchecked.message
    assert unchecked.problems[0].layer == "Evil" and unchecked.problems[0].line is not None


@pytest.mark.parametrize("case", list(BLIND_SPOTS), ids=list(BLIND_SPOTS))
def test_blind_spots_of_the_old_check(case: str) -> None:
    body, words, line = BLIND_SPOTS[case]
    with pytest.raises(DesignError, match=rf"custom layer Evil, line {line}: .*{re.escape(words)}"):
        analyze(evil_design(forward_body(body)))
    assert not sandbox.check_layer(forward_body(body), "Evil", input_shape=(2, 4), static_check=False).ok


@pytest.mark.parametrize("source", [MATCH_ESCAPE, DEVICE_MODULE_ESCAPE], ids=["match", "device-module"])
def test_escapes_through_the_cli(tmp_path: Path, source: str) -> None:
    result = run_cli(tmp_path, evil_design(source))
    assert result.returncode == 1, result.stdout
    assert re.search(r"^error: custom layer Evil, line 4: ", result.stderr, re.M), result.stderr
    assert "Traceback" not in result.stderr


def _identifier_fields() -> set[tuple[str, str]]:
    """Every (node type, field) that Python's grammar types as ``identifier``, read from the ast module itself."""
    found = set()
    for name in dir(ast):
        node = getattr(ast, name)
        if isinstance(node, type) and issubclass(node, ast.AST) and (node.__doc__ or "").startswith(f"{name}("):
            signature = node.__doc__.splitlines()[0]
            found |= {(name, field) for field in re.findall(r"identifier[*?]? (\w+)", signature)}
    return found


def test_every_identifier_field_of_the_grammar_is_checked() -> None:
    fields = _identifier_fields()
    assert ("MatchClass", "kwd_attrs") in fields and ("keyword", "arg") in fields  # the reading works
    assert fields <= set(static.IDENTIFIER_FIELDS), fields - set(static.IDENTIFIER_FIELDS)


# A source per identifier field with `__globals__` (or a dunder) in that very place, refused by the check.
FIELD_SAMPLES: dict[tuple[str, str], str] = {
    ("Name", "id"): "        __globals__\n",
    ("Attribute", "attr"): "        X.__globals__\n",
    ("FunctionDef", "name"): "        def __globals__():\n            pass\n",
    ("AsyncFunctionDef", "name"): "        async def __globals__():\n            pass\n",
    ("ClassDef", "name"): "        class __globals__:\n            pass\n",
    ("ImportFrom", "module"): "        from os import path\n",
    ("alias", "name"): "        from torch import __globals__\n",
    ("alias", "asname"): "        import math as __globals__\n",
    ("Global", "names"): "        global __globals__\n",
    ("Nonlocal", "names"): "        def f():\n            nonlocal __globals__\n",
    (
        "ExceptHandler",
        "name",
    ): "        try:\n            pass\n        except Exception as __globals__:\n            pass\n",
    ("arg", "arg"): "        f = lambda __globals__: 1\n",
    ("keyword", "arg"): "        print(__globals__=1)\n",
    ("MatchMapping", "rest"): "        match X:\n            case {**__globals__}:\n                pass\n",
    ("MatchClass", "kwd_attrs"): "        match X:\n            case object(__globals__=g):\n                pass\n",
    ("MatchStar", "name"): "        match X:\n            case [*__globals__]:\n                pass\n",
    ("MatchAs", "name"): "        match X:\n            case __globals__:\n                pass\n",
}


# Fields whose dunder the rewrite leaves to the run-time guards (attribute reads, imports).
RUNTIME_FIELDS = {("Attribute", "attr"), ("ImportFrom", "module"), ("alias", "name")}


@pytest.mark.parametrize("field", sorted(_identifier_fields()), ids=lambda f: f"{f[0]}.{f[1]}")
def test_a_dunder_in_each_identifier_field_is_refused(field: tuple[str, str]) -> None:
    source = forward_body(FIELD_SAMPLES[field])
    tree = ast.parse(source)
    assert any(type(n).__name__ == field[0] for n in ast.walk(tree)), "the sample must hold that node"
    assert static.check_source(source, "Evil"), f"{field} not refused by the static check"
    report = sandbox.check_layer(source, "Evil", input_shape=(2, 4), static_check=False)
    assert not report.ok, f"{field} not refused at run time"  # by the rewrite, the guards or the import hook
    if field not in RUNTIME_FIELDS:
        with pytest.raises(SyntaxError):
            restrict.compile_restricted(source, "<test>")


def test_module_allowlists_hold_no_way_to_raw_modules_or_names() -> None:
    """No allowlisted attribute is a module outside the allowlist or a by-name attribute reader."""
    import operator

    readers = {operator.attrgetter, operator.methodcaller, getattr, torch.get_device_module}
    for module_name in policy.ALLOWED_IMPORTS - {"__future__"}:
        module = sys.modules[module_name]
        for name in policy.module_allowlist(module_name):
            value = getattr(module, name)
            assert value not in readers, f"{module_name}.{name}"
            if isinstance(value, type(sys)):
                assert value.__name__ in policy.ALLOWED_IMPORTS, f"{module_name}.{name}"
            if callable(value) and not isinstance(value, type):
                home = getattr(value, "__module__", "") or ""
                assert home.startswith(("torch", "math")) or home in ("", "builtins"), f"{module_name}.{name}: {home}"


def test_the_layer_guard_leads_nowhere() -> None:
    """The wrapper around a layer is defined where its globals hold nothing of the sandbox."""
    guarded = child._GUARD(torch.nn.Identity, "Evil", child._Watch)
    for function in (guarded.forward, guarded.__init__, child._GUARD):
        assert set(function.__globals__) <= {"__builtins__", "__name__", "guard"}
        assert set(function.__globals__["__builtins__"]) == {"__build_class__"}


# ---------------------------------------------------------------------------------------------------------------
# The job's process: one-way guards, no process left behind, no forged replies


def _locked_down_child(action: str) -> int:
    """Fork, lock down as a job does, run ``action`` (our own code) and exit 0 if it was refused."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - reports through its exit status
        code = 1
        try:
            child.lock_down({"timeout": 5.0, "memory": 2**30}, frozenset())
            try:
                exec(action, {})
            except (PermissionError, OSError):
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status)


@pytest.mark.parametrize(
    "action",
    ["open('/proc/self/status')", "import os; os.system('true')", "import os; os.kill(os.getppid(), 0)",
     "import os; os.fork()"],
    ids=["open", "system", "kill-parent", "fork"],
)  # fmt: skip
def test_the_job_process_has_no_switch_back_to_trusted(action: str) -> None:
    """After lock-down even the job's own code is refused: the audit hook's decision is one-way."""
    assert not hasattr(child._JOB, "trusted")
    assert _locked_down_child(action) == 0


def test_a_process_that_outlives_its_job_is_killed() -> None:
    """Were fork and setsid possible (no seccomp, no RLIMIT_NPROC), the orphan still dies with its job."""
    source = (
        "import os, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(30)\n"
        f"    os.mkdir({MARKER!r})\n"
        "    os._exit(0)\n"
        "report.append(f'forked {pid}')\n"
    )
    before = set(_all_pids())
    _raw, outcome = sandbox.simulate_escape(source, os_limits=False)
    assert outcome.ending.get("leftovers") == 1, outcome
    assert "started a process" in sandbox._stopped(outcome, "Evil").message
    time.sleep(0.5)
    survivors = [pid for pid in set(_all_pids()) - before if "time.sleep" in _cmdline(pid)]
    assert survivors == []


def test_fork_is_refused_under_the_os_limits() -> None:
    raw, outcome = sandbox.simulate_escape("import os\nos.fork()\n")
    assert raw is not None and raw[0].startswith(("raised PermissionError", "raised BlockingIOError")), raw
    assert not outcome.ending.get("leftovers")


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


FORGER = (
    "import pickle\n"
    "from builder.sandbox import child\n"
    "channel = child._JOB.channel\n"
    "fake = {'ending': 'result', 'signal': 0, 'code': 0}\n"
    "channel.send_bytes(b'D' + pickle.dumps(fake))\n"
    "channel.send_bytes(b'R' + pickle.dumps({'output': 'paste your code at https://127.0.0.1:9/', 'raw': ()}))\n"
    "report.append('forged')\n"
)
PRINTER = "class Talk(nn.Module):\n    def forward(self, X):\n        print('{word}')\n        return X * {scale}\n"


def test_forged_messages_reach_no_other_job() -> None:
    raw, outcome = sandbox.simulate_escape(FORGER)
    assert outcome.ending.get("ending") == "bad-message" and raw is None
    for word, scale in (("alpha", 2), ("beta", 3)):
        report = sandbox.check_layer(PRINTER.format(word=word, scale=scale), "Talk", session=f"user-{word}")
        assert report.ok and report.output == f"{word}\n", (report.message, report.output)


def test_replies_of_another_job_are_dropped() -> None:
    ours, theirs = socket.socketpair()
    reader, writer = Connection(ours.detach()), Connection(theirs.detach())
    stale = protocol.frame(protocol.RESULT, 6, pickle.dumps({"output": "someone else's", "design_error": "x"}))
    mine = protocol.frame(protocol.RESULT, 7, pickle.dumps({"output": "mine", "design_error": "y"}))
    done = protocol.frame(protocol.DONE, 7, pickle.dumps({"ending": "result", "signal": 0, "code": 0}))
    for message in (stale, mine, done):
        writer.send_bytes(message)
    outcome = pool.collect(reader, 7, time.monotonic() + 5)
    assert outcome.result["output"] == "mine"


# ---------------------------------------------------------------------------------------------------------------
# Replies checked as bounded data


NESTED_PARAMETER = nested_shape_layer("Evil")


@pytest.mark.parametrize("run", [True, False], ids=["run", "link-view"])
def test_a_shape_nested_2_to_the_25_deep_cannot_freeze_the_server(run: bool) -> None:
    ticks = []
    stop = threading.Event()

    def heartbeat() -> None:  # the server's other sessions: must keep running while the reply is read
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    beat = threading.Thread(target=heartbeat)
    beat.start()
    try:
        trace = analyze(evil_design(NESTED_PARAMETER), run=run)
    finally:
        stop.set()
        beat.join()
    assert trace.error is not None and "not a result" in trace.error.message, trace
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps, default=0) < 1.0  # the GIL was never held for long


def test_result_checks_refuse_what_is_not_plain_data() -> None:
    design = evil_design(NESTED_PARAMETER)
    deep: tuple = ()
    for _ in range(25):
        deep = (deep, deep)
    cases = [deep, (2**70,), ("2",), tuple(range(40))]
    for bad in cases:
        layer = results.LayerTrace(0, design.layers[0].id, "Linear", input_shape=bad)
        trace = results.Trace("x", (2, 4), results.DType.FLOAT32, (layer,))
        with pytest.raises(results.ResultError):
            results.trace(results.load_payload(pickle.dumps(trace)), design)
    forged = results.Trace("x", (2, 4), results.DType.FLOAT32, (results.LayerTrace(0, "other", "Linear"),))
    with pytest.raises(results.ResultError, match="not the design's layer"):
        results.trace(results.load_payload(pickle.dumps(forged)), design)


# ---------------------------------------------------------------------------------------------------------------
# Settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [(sandbox.TIMEOUT_ENV, "abc"), (sandbox.TIMEOUT_ENV, "-1"), (sandbox.TIMEOUT_ENV, "nan"),
     (sandbox.TIMEOUT_ENV, "inf"), (sandbox.MEMORY_ENV, "nan"), (sandbox.MEMORY_ENV, "1e30"),
     (sandbox.MODE_ENV, "chroot")],
)  # fmt: skip
def test_bad_settings_get_one_clear_message(monkeypatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(sandbox.SandboxError, match=rf"^{variable} must be .*; got '{re.escape(value)}'$"):
        sandbox.settings()


def test_bad_settings_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "design.json"
    path.write_text(dump_design(evil_design(forward_body(""))))
    env = {**os.environ, sandbox.TIMEOUT_ENV: "abc", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "builder", "summary", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == ["error: BUILDER_SANDBOX_TIMEOUT must be a number of seconds "
                                                  "from 0.1 to 600; got 'abc'"]  # fmt: skip
