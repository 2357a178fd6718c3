"""Run the test suite as three pytest processes side by side, then report
each: most tests wait on the clock (checks every few seconds, peer
timeouts), so running them in turn would waste most of CI's time.

The network scenarios are split in two, each half on its own address plan
(RAVENS_TEST_NET), so their namespaces never meet; everything else runs in
the third. ``python -m tests.parallel [pytest args...]``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
FIRST_HALF = ["tests/network/test_faults.py", "tests/network/test_clock_steps.py"]
# Pairs on loopback that mostly wait on peer timeouts: run after the network
# halves, so that the three runs take about as long.
AFTER_FIRST = ["tests/integration/test_notify_pair.py", "tests/integration/test_history_pair.py"]
AFTER_SECOND = ["tests/integration/test_secret_mismatch.py"]


def runs() -> list[tuple[str, list[str], dict[str, str]]]:
    network = sorted(str(p.relative_to(HERE.parent)) for p in (HERE / "network").glob("test_*.py"))
    second_half = [p for p in network if p not in FIRST_HALF]
    moved = [f"--ignore={p}" for p in (*AFTER_FIRST, *AFTER_SECOND)]
    return [
        ("network scenarios, part 1", [*FIRST_HALF, *AFTER_FIRST], {"RAVENS_TEST_NET": "10.77"}),
        ("network scenarios, part 2", [*second_half, *AFTER_SECOND],
         {"RAVENS_TEST_NET": "10.78"}),
        ("everything else", ["--ignore=tests/network", *moved], {}),
    ]  # fmt: skip


def main() -> int:
    extra = sys.argv[1:]
    began = time.monotonic()
    started = []
    with tempfile.TemporaryDirectory(prefix="ravens-tests-") as scratch:
        for i, (name, args, env) in enumerate(runs()):
            log = Path(scratch) / f"{i}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--durations=8",
                     *args, *extra],
                    stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
                )  # fmt: skip
            started.append((name, proc, log))
        failed = []
        for name, proc, log in started:
            code = proc.wait()
            print(f"\n===== {name}: {'passed' if code == 0 else f'FAILED (exit {code})'}")
            print(log.read_text(), end="")
            if code != 0:
                failed.append(name)
    which = f"; failed: {', '.join(failed)}" if failed else ""
    took = time.monotonic() - began
    passed = len(started) - len(failed)
    print(f"\n===== {passed} of {len(started)} runs passed in {took:.0f} s{which}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
