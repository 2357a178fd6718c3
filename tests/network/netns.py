"""Separate networks from Linux network namespaces, for the fault tests.

One namespace per node (huginn, muninn), one for the targets, one for the
ntfy test server, and a router joining them, each on its own /24; the test
process reaches them over a veth of its own. Faults are real: a link set
down, policy routes that drop one path in the router, nftables rules that
drop one direction or one port, netem delay and loss.
Everything created is removed on exit, also when a test fails.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

LEAVES = ("huginn", "muninn", "targets", "ntfy", "world")
# <NET>.<n>.0/24 per leaf; the router is .1 on each, the leaf .2. Another
# NET lets a soak run beside the tests.
NET = os.environ.get("RAVENS_TEST_NET", "10.77")
SUBNET = {"host": 0, "huginn": 1, "muninn": 2, "targets": 3, "ntfy": 4, "world": 5}
CANARY = f"{NET}.5.2"  # "the rest of the internet", where the canaries are


def why_not() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed (Debian: apt-get install iproute2)"
    return None


needs_netns = pytest.mark.skipif(why_not() is not None, reason=str(why_not()))


def why_no_nft() -> str | None:
    """Why nftables rules cannot be set here, or None."""
    if shutil.which("nft") is None:
        return "nftables is not installed (Debian: apt-get install nftables)"
    return why_not()


needs_nft = pytest.mark.skipif(why_no_nft() is not None, reason=str(why_no_nft()))


def has_netem() -> bool:
    """Whether this kernel has netem, the qdisc that delays packets."""
    try:
        with open("/proc/config.gz", "rb") as raw:
            return b"CONFIG_NET_SCH_NETEM=" in gzip.decompress(raw.read())
    except OSError:
        return True  # no config to read: try it, and let tc say


def faketime_library() -> str | None:
    """Debian's libfaketime, which shifts a process's clock when preloaded."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    return found[0] if found else None


def shifted_clock(offset_s: int) -> dict[str, str]:
    """Environment that runs a process with its wall clock offset_s off."""
    library = faketime_library()
    assert library is not None
    # Monotonic time stays true: only the wall clock (what HLCs read) moves.
    return {"LD_PRELOAD": library, "FAKETIME": f"{offset_s:+d}s",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1"}  # fmt: skip


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def address(leaf: str) -> str:
    return f"{NET}.{SUBNET[leaf]}.2"


@dataclass
class Topology:
    tag: str = field(default_factory=lambda: f"rv{os.getpid() % 100000}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cuts: set[tuple[str, str]] = field(default_factory=set)
    filtering: bool = False

    def ns(self, leaf: str) -> str:
        return f"{self.tag}-{leaf}"

    @property
    def router(self) -> str:
        return f"{self.tag}-router"

    def _in(self, ns: str, *argv: str) -> None:
        run("ip", "netns", "exec", ns, *argv)

    def build(self) -> None:
        run("ip", "netns", "add", self.router)
        self._in(self.router, "ip", "link", "set", "lo", "up")
        self._in(self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for leaf in LEAVES:
            ns = self.ns(leaf)
            run("ip", "netns", "add", ns)
            self._in(ns, "ip", "link", "set", "lo", "up")
            self._veth(leaf, ns)
        self._veth("host", None)

    def _veth(self, leaf: str, ns: str | None) -> None:
        n = SUBNET[leaf]
        outer, inner = f"{self.tag}r{n}", f"{self.tag}l{n}"
        run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        run("ip", "link", "set", outer, "netns", self.router)
        self._in(self.router, "ip", "addr", "add", f"{NET}.{n}.1/24", "dev", outer)
        self._in(self.router, "ip", "link", "set", outer, "up")
        if ns is None:  # the test process's own way in
            run("ip", "addr", "add", f"{NET}.{n}.2/24", "dev", inner)
            run("ip", "link", "set", inner, "up")
            run("ip", "route", "add", f"{NET}.0.0/16", "via", f"{NET}.{n}.1")
            return
        run("ip", "link", "set", inner, "netns", ns)
        self._in(ns, "ip", "addr", "add", f"{NET}.{n}.2/24", "dev", inner)
        self._in(ns, "ip", "link", "set", inner, "up")
        self._in(ns, "ip", "route", "add", "default", "via", f"{NET}.{n}.1")

    def start(
        self, leaf: str, argv: Sequence[str], log: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        return self.start_in(self.ns(leaf), argv, log, env)

    def start_in(
        self, ns: str, argv: Sequence[str], log: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv], stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    # -- faults --------------------------------------------------------------

    def link(self, leaf: str, up: bool) -> None:
        """The leaf's one link to the world, at the router's end."""
        state = "up" if up else "down"
        self._in(self.router, "ip", "link", "set", f"{self.tag}r{SUBNET[leaf]}", state)

    def cut(self, a: str, b: str) -> None:
        """Drop what the router forwards between two leaves, both ways."""
        for src, dst in ((a, b), (b, a)):
            self._in(self.router, "ip", "rule", "add", "from", f"{NET}.{SUBNET[src]}.0/24",
                     "to", f"{NET}.{SUBNET[dst]}.0/24", "blackhole")  # fmt: skip
        self.cuts.add((a, b))

    def mend(self, a: str, b: str) -> None:
        for src, dst in ((a, b), (b, a)):
            self._in(self.router, "ip", "rule", "del", "from", f"{NET}.{SUBNET[src]}.0/24",
                     "to", f"{NET}.{SUBNET[dst]}.0/24", "blackhole")  # fmt: skip
        self.cuts.discard((a, b))

    def blackhole(self, leaf: str, prefix: str, on: bool = True) -> None:
        """Drop what the router forwards from a leaf to one prefix (one way
        is enough for TCP: no answer comes back)."""
        verb = "add" if on else "del"
        self._in(self.router, "ip", "rule", verb, "from", f"{NET}.{SUBNET[leaf]}.0/24", "to",
                 prefix, "blackhole")  # fmt: skip

    def _nft_rule(self, *rule: str) -> None:
        """A rule in the router's forward hook (nftables)."""
        if not self.filtering:
            self._in(self.router, "nft", "add", "table", "inet", "ravens")
            self._in(self.router, "nft", "add", "chain", "inet", "ravens", "forward",
                     "{ type filter hook forward priority 0; policy accept; }")  # fmt: skip
            self.filtering = True
        self._in(self.router, "nft", "add", "rule", "inet", "ravens", "forward", *rule)

    def drop(self, src: str, dst: str, port: int | None = None) -> None:
        """Drop in the router what goes from src to dst, one direction only,
        or only TCP to one port."""
        match = ["ip", "saddr", f"{NET}.{SUBNET[src]}.0/24",
                 "ip", "daddr", f"{NET}.{SUBNET[dst]}.0/24"]  # fmt: skip
        if port is not None:
            match += ["tcp", "dport", str(port)]
        self._nft_rule(*match, "drop")

    def lossy(self, leaf: str, percent: int) -> None:
        """Lose this share of the packets to and from a leaf, at random."""
        for way in ("saddr", "daddr"):
            self._nft_rule("ip", way, f"{NET}.{SUBNET[leaf]}.0/24", "numgen", "random", "mod",
                           "100", "<", str(percent), "drop")  # fmt: skip

    def thin(self, leaf: str, rate: str | None) -> None:
        """A thin link: a token bucket of this rate both ways (queues build,
        so delay grows under load); None removes it."""
        for ns, dev in ((self.router, f"{self.tag}r{SUBNET[leaf]}"),
                        (self.ns(leaf), f"{self.tag}l{SUBNET[leaf]}")):  # fmt: skip
            if rate is None:
                with contextlib.suppress(subprocess.CalledProcessError):
                    self._in(ns, "tc", "qdisc", "del", "dev", dev, "root")
            else:
                self._in(ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate,
                         "burst", "16kb", "latency", "500ms")  # fmt: skip

    def undrop(self) -> None:
        """Remove every drop rule."""
        if self.filtering:
            self._in(self.router, "nft", "flush", "chain", "inet", "ravens", "forward")

    def netem(self, leaf: str, spec: Sequence[str] | None) -> None:
        """Delay or loss on the router's side of a leaf's link; None removes
        it. Needs a kernel with netem (see has_netem)."""
        dev = f"{self.tag}r{SUBNET[leaf]}"
        if spec is None:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._in(self.router, "tc", "qdisc", "del", "dev", dev, "root")
            return
        self._in(self.router, "tc", "qdisc", "replace", "dev", dev, "root", "netem", *spec)

    # -- cleanup -------------------------------------------------------------

    def destroy(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for ns in [*(self.ns(leaf) for leaf in LEAVES), self.router]:
            pids = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
            )
            for pid in pids.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)
        # The host end went with the router; its route with it.
        subprocess.run(["ip", "link", "delete", f"{self.tag}l0"], capture_output=True, check=False)


def sweep_stale() -> None:
    """A run killed before its cleanup (SIGKILL, a timeout) leaves its
    namespaces and host route on our address plan: remove them, unless a
    process still runs inside, which means another run is using them."""
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                           check=False).stdout  # fmt: skip
    for line in shown.splitlines():
        fields = line.split()
        if f"{NET}.0.2/24" not in fields:
            continue
        tag = fields[1].split("@")[0][: -len("l0")]
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                check=False).stdout  # fmt: skip
        spaces = [n.split()[0] for n in listed.splitlines() if n.startswith(f"{tag}-")]
        for ns in spaces:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                                  check=False).stdout.split()  # fmt: skip
            if pids:
                raise RuntimeError(f"another test run uses {NET}.0.0/16 ({ns} has processes); "
                                   "give this one another RAVENS_TEST_NET")  # fmt: skip
        for ns in spaces:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "delete", f"{tag}l0"], capture_output=True, check=False)


@contextlib.contextmanager
def topology() -> Iterator[Topology]:
    sweep_stale()
    net = Topology()
    try:
        net.build()
        yield net
    finally:
        net.destroy()
