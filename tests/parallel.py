"""Run the test suite as several pytest processes side by side, then report
each: the network scenarios wait on real time (faults held for minutes,
peer timeouts), so running them in turn would waste most of CI's time.
``python -m tests.parallel [--check] [pytest args...]`` (--check: the fast
lane of `make check`).
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests import lane_ids

HERE = Path(__file__).parent
FAULTS = "tests/network/test_faults.py"
# The fault scenarios that hold the pair longest: lanes of their own.
LONG_FAULTS = ("kill_9", "own_network_down")
PARTITION = "partition_with_an_outage"
SIMULATOR = "tests/unit/test_simulator.py"
# The simulator's seeds only compute (about 100 s of CPU as quarter days
# at density 4; 350 s as whole days): in one lane they ran on alone at
# the end, one core idle. In two lanes at a lower priority
# they take what CPU the lanes waiting on real time leave them (never
# delaying those lanes' deadlines), and both cores work to the end: 473 s
# against 529 s in one lane. (Two lanes at normal priority only fought the
# rest for the cores: 546 s against 491 s, an earlier day.)
SEEDS_A, SEEDS_B = "the simulator's seeds: every fault, three nodes", "the simulator's other seeds"
SEEDS_A_TESTS = "every_fault or three_nodes"
LOW_PRIORITY = {SEEDS_A, SEEDS_B}
# Lanes of about equal length; each network lane on its own address plan
# (RAVENS_TEST_NET), so their namespaces never meet. Whatever no lane names
# runs in the last. The network lanes mostly wait on real time (a fault
# held for minutes): six of them, each under about 200 s, since the
# longest lane is the least the whole run can take.
LANES: list[tuple[str, list[str], dict[str, str]]] = [
    ("network: the longest faults",
     [FAULTS, "-k", " or ".join(LONG_FAULTS)], {"RAVENS_TEST_NET": "10.77"}),
    ("network: the other faults, hostile targets",
     [FAULTS, "-k", " and ".join(f"not {k}" for k in (*LONG_FAULTS, PARTITION)),
      "tests/network/test_hostile_targets.py"],
     {"RAVENS_TEST_NET": "10.78"}),
    ("network: clock steps, hostile peers",
     ["tests/network/test_clock_steps.py", "tests/network/test_hostile_peers.py"],
     {"RAVENS_TEST_NET": "10.76"}),
    ("network: ntfy cut from one node, disk full",
     ["tests/network/test_ntfy_lease.py", "tests/network/test_disk_full.py"],
     {"RAVENS_TEST_NET": "10.75"}),
    ("network: degraded paths, flapping, a partition with an outage",
     ["tests/network/test_degraded_paths.py", "tests/network/test_flapping.py",
      FAULTS, "-k", f"{PARTITION} or slow_lossy or one_way_drop or flapping"],
     {"RAVENS_TEST_NET": "10.73"}),
    ("network: a short soak", ["tests/network/test_soak.py"], {"RAVENS_TEST_NET": "10.74"}),
    (SEEDS_A, [SIMULATOR, "-k", SEEDS_A_TESTS], {}),
    (SEEDS_B, [SIMULATOR, "-k", f"not ({SEEDS_A_TESTS})"], {}),
    # Real processes that mostly wait on real time (a kill -9 and its
    # restart, the demo's minute, ntfy failing): apart, their waits overlap
    # the work of the rest rather than add to it. Two lanes: in one, the
    # waits alone took 342 s.
    ("real processes waiting on real time: delivery, the demo",
     ["tests/integration/test_notify_pair.py", "tests/integration/test_demo.py",
      "tests/integration/test_webhooks.py", "tests/integration/test_live_page.py"],
     {"RAVENS_TEST_PORTS": "20000"}),
    ("real processes waiting on real time: the stream, families, the outbox",
     ["tests/integration/test_outbox.py", "tests/integration/test_push.py",
      "tests/integration/test_tls.py", "tests/integration/test_history_pair.py",
      "tests/integration/test_stream.py", "tests/integration/test_family.py"],
     {"RAVENS_TEST_PORTS": "20400"}),
    # Real processes and installs that mostly compute: beside the tests in
    # process, one lane alone took 417 s (251 s of CPU on one core).
    ("real processes: the deploy kit, the bench, the README, the API fuzz",
     ["tests/deploy", "tests/integration/test_bench_smoke.py",
      "tests/integration/test_api_fuzz.py", "tests/integration/test_readme_examples.py",
      "tests/integration/test_pair.py", "tests/integration/test_admin.py",
      "tests/integration/test_seeded_history.py", "tests/integration/test_ntfy.py"],
     {"RAVENS_TEST_PORTS": "20800"}),
]  # fmt: skip
# `make check`, the fast lane: the core's tests (a few seeds per simulated
# property) and the tests that build nodes in process, in three runs.
IN_PROCESS = [
    "tests/integration/test_outbox.py",
    "tests/integration/test_probes.py",
    "tests/integration/test_pair_in_process.py",
    "tests/integration/test_oncall_in_process.py",
    "tests/integration/test_api_in_process.py",
    "tests/integration/test_admin_in_process.py",
    "tests/integration/test_apply_in_process.py",
    "tests/integration/test_customer_pages.py",
    "tests/integration/test_where_it_failed.py",
    "tests/integration/test_webhooks_in_process.py",
    "tests/integration/test_domain_expiry.py",
    "tests/integration/test_push_limits.py",
    "tests/integration/test_reach.py",
    "tests/integration/test_shed.py",
]
# One seed per simulated property: make test runs thirty (two made the
# simulator's run the longest of make check).
CHECK_SEEDS = {"RAVENS_SIM_SEEDS": "1"}
# The nodes in process wait on loopback probes now and then: in two runs,
# one's waits overlap the other's work (`make check` in one: 130 s; in two, 88 s).
# The outbox's thousand transitions mostly wait on the inbox's timeouts:
# beside the simulator's seeds, they overlap its work (82 s as one run, 61 s).
# Domain expiry's days of fake time go beside them too (alone, the third
# run was the longest: 96 s against 64).
ON_CALL = "tests/integration/test_oncall_in_process.py"
OUTBOX = "tests/integration/test_outbox.py"
DOMAINS = "tests/integration/test_domain_expiry.py"
CHECK: list[tuple[str, list[str], dict[str, str]]] = [
    ("the simulator, one seed each; the outbox; domain expiry",
     [SIMULATOR, OUTBOX, DOMAINS], CHECK_SEEDS),
    ("the core's other tests, on call in process",
     ["tests/unit", f"--ignore={SIMULATOR}", ON_CALL], CHECK_SEEDS),
    ("the other nodes in process",
     [p for p in IN_PROCESS if p not in (ON_CALL, OUTBOX, DOMAINS)], CHECK_SEEDS),
]  # fmt: skip


def runs() -> list[tuple[str, list[str], dict[str, str]]]:
    named = {arg for _, args, _ in LANES for arg in args if arg.startswith("tests/")}
    rest = ["--ignore=tests/network", *(f"--ignore={p}" for p in sorted(named))]
    return [*LANES, ("everything else", ["tests", *rest], {"RAVENS_TEST_PORTS": "21200"})]


def main() -> int:
    extra = sys.argv[1:]
    lanes = runs()
    if extra[:1] == ["--check"]:
        extra, lanes = extra[1:], CHECK
    began = time.monotonic()
    # Bytecode once, before the lanes: where writing it is turned off
    # (PYTHONDONTWRITEBYTECODE), every node a test starts would compile
    # the packages again (0.15 s of CPU per process).
    for package in ("consensus", "watchers", "notify"):
        compileall.compile_dir(HERE.parent / package, quiet=1)
    started = []
    # The whole suite, as the lanes split it: each test in exactly one.
    whole = not extra and lanes is not CHECK
    with tempfile.TemporaryDirectory(prefix="ravens-tests-") as scratch:
        ids = {name: Path(scratch) / f"{i}.ids" for i, (name, _, _) in enumerate(lanes)}
        for i, (name, args, env) in enumerate(lanes):
            log = Path(scratch) / f"{i}.log"
            listed = {lane_ids.TARGET: str(ids[name])} if whole else {}
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                     "-p", "tests.lane_ids", "--durations=8", *args, *extra],
                    stdout=out, stderr=subprocess.STDOUT,
                    env={**os.environ, **env, **listed},
                )  # fmt: skip
            if name in LOW_PRIORITY:
                os.setpriority(os.PRIO_PROCESS, proc.pid, 10)
            started.append((name, proc, log))
        failed = []
        for name, proc, log in started:
            # wait4: the run's CPU time with its children's (the nodes it ran),
            # so a lane's cost shows apart from its wait on real time.
            _, status, usage = os.wait4(proc.pid, 0)
            code = proc.returncode = os.waitstatus_to_exitcode(status)
            cpu_s = usage.ru_utime + usage.ru_stime
            verdict = "passed" if code == 0 else f"FAILED (exit {code})"
            print(f"\n===== {name}: {verdict}, {cpu_s:.0f} s of CPU")
            print(log.read_text(), end="")
            if code != 0:
                failed.append(name)
        problems = lane_ids.unplaced(ids) if whole else []
        if whole and not problems:
            print(f"\n===== each of {lane_ids.count_kept(ids)} tests ran in exactly one lane")
    for problem in problems:
        print(f"===== the lanes' lists: {problem}")
    if problems:
        failed.append("the lanes' lists (tests/parallel.py LANES)")
    which = f"; failed: {', '.join(failed)}" if failed else ""
    took = time.monotonic() - began
    passed = sum(1 for name, _, _ in started if name not in failed)
    print(f"\n===== {passed} of {len(started)} runs passed in {took:.0f} s{which}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
