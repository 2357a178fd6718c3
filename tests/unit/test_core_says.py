"""The core says everything the shell acts on, as commands: targets and
windows that changed, agreed moves, the claims awaiting a peer's word. No
shell module decides anything from a log key's name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from consensus import keys
from consensus.commands import AgreedMoved, Push, TargetsChanged, WindowsChanged
from consensus.hlc import Hlc
from consensus.lww import Entry
from consensus.node import NodeCore
from tests.unit.pair import results, started

ROOT = Path(__file__).parents[2]
PAIR = ("huginn", "muninn")
TARGETS = ("blog",)
# A shell reading a key's name to choose what to do: prefixes tested,
# stripped or split off log keys.
KEY_SNIFFING = re.compile(r"startswith\(\(?keys\.|keys\.suffix\(|removeprefix\(keys\.|"
                          r"NODE_SUBJECT|\.key\.startswith\(|\.key\[len\(")  # fmt: skip


def test_no_shell_module_decides_from_a_key_name() -> None:
    found = []
    for package in ("watchers", "notify"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if KEY_SNIFFING.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_pattern_catches_what_it_is_for() -> None:
    for line in ("if e.key.startswith(keys.TARGET):", "keys.suffix(entry.key, keys.CLAIM)",
                 "any(e.key.startswith((keys.MAINTENANCE, keys.SILENCE)) for e in w)"):  # fmt: skip
        assert KEY_SNIFFING.search(line), line


def test_every_public_step_of_the_core_is_told() -> None:
    tree = ast.parse((ROOT / "consensus" / "node.py").read_text())
    (core,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "NodeCore"]
    public = [f.name for f in core.body if isinstance(f, ast.FunctionDef)
              and not f.name.startswith("_") and f.returns is not None
              and ast.unparse(f.returns) == "Step"]  # fmt: skip
    assert "entries_received" in public and "tick" in public
    for name in public:
        assert hasattr(getattr(NodeCore, name), "__wrapped__"), f"{name} is not @telling"


def test_a_target_written_here_or_merged_is_said() -> None:
    net = started(PAIR, TARGETS)
    huginn, muninn = net.cores["huginn"], net.cores["muninn"]
    shop = {"kind": "tcp", "host": "shop.example", "port": 443}
    local = huginn.admin_write(keys.TARGET + "shop", shop, net.now_ms, {"by": "ops"})
    assert [c for c in local.commands if isinstance(c, TargetsChanged)] == [TargetsChanged()]
    merged = muninn.entries_received("huginn", tuple(local.to_commit), net.now_ms)
    assert any(isinstance(c, TargetsChanged) for c in merged.commands)
    assert not any(isinstance(c, WindowsChanged) for c in merged.commands)


def test_a_window_written_is_said_and_nothing_else_is() -> None:
    net = started(PAIR, TARGETS)
    huginn = net.cores["huginn"]
    window = {"target": "blog"}
    step = huginn.admin_write(keys.MAINTENANCE + "w1", window, net.now_ms, {"by": "ops"})
    assert any(isinstance(c, WindowsChanged) for c in step.commands)
    assert not any(isinstance(c, TargetsChanged) for c in step.commands)
    quiet = huginn.tick(net.now_ms + 1)
    assert not any(isinstance(c, TargetsChanged | WindowsChanged) for c in quiet.commands)


def test_an_agreed_move_is_said_with_its_state_and_event() -> None:
    net = started(PAIR, TARGETS)
    said: list[AgreedMoved] = []
    original = net.run

    def run(node: str, step):  # type: ignore[no-untyped-def]
        said.extend(c for c in step.commands if isinstance(c, AgreedMoved))
        original(node, step)

    net.run = run  # type: ignore[method-assign]
    net.rounds("blog", results(PAIR, False), 2)
    moves = [(m.target, m.state) for m in said]
    assert ("blog", "DOWN") in moves
    down = next(m for m in said if m.state == "DOWN")
    assert down.event is not None and net.cores["huginn"].event(down.event) is not None


def test_a_push_names_only_its_own_nodes_claims() -> None:
    mine = Entry(keys.claim("e1"), {"node": "huginn"}, Hlc(1, 0, "huginn"), "huginn", 1)
    theirs = Entry(keys.claim("e2"), {"node": "muninn"}, Hlc(1, 0, "muninn"), "muninn", 1)
    other = Entry(keys.obs("huginn", "blog"), {}, Hlc(1, 0, "huginn"), "huginn", 2)
    push = Push((mine, theirs, other))
    assert push.claims_by("huginn") == {mine.key: "e1"}
    assert push.claims_by("muninn") == {theirs.key: "e2"}
