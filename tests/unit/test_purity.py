"""consensus/ does no I/O and reads no clock: time and messages come in as arguments."""

from __future__ import annotations

import ast
from pathlib import Path

import consensus

FORBIDDEN_MODULES = {
    "asyncio", "socket", "sqlite3", "aiosqlite", "httpx", "logging", "subprocess",
    "os", "time", "datetime", "threading", "urllib", "http", "select", "io", "shutil",
    "pathlib", "tempfile", "signal", "secrets", "uuid",
}  # fmt: skip
FORBIDDEN_CALLS = {"open", "print", "input"}
ROOT = Path(consensus.__file__).parent


def offenders(source: str, name: str) -> list[str]:
    """Lines of source that import an I/O or clock module or call open/print/input."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        found += [
            f"{name}:{node.lineno} imports {m}"
            for m in modules
            if m.split(".")[0] in FORBIDDEN_MODULES
        ]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        ):
            found.append(f"{name}:{node.lineno} calls {node.func.id}")
    return found


def test_the_core_imports_nothing_that_does_io_or_reads_time() -> None:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        found += offenders(path.read_text(), str(path.relative_to(ROOT)))
    assert found == []


def test_the_scan_catches_each_kind_of_offence() -> None:
    bad = "import time\nfrom asyncio import sleep\nimport os.path\nprint(1)\n"
    assert offenders(bad, "bad.py") == [
        "bad.py:1 imports time",
        "bad.py:2 imports asyncio",
        "bad.py:3 imports os.path",
        "bad.py:4 calls print",
    ]
    assert offenders("from consensus.hlc import Hlc\nimport random\n", "ok.py") == []
