"""A local authoritative DNS server for the benchmark's DNS part, on the
other core: NSD when it is installed (Debian: nsd), otherwise a Python
responder that answers its one name from a prebuilt reply."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.bench.targets import pin, stop_all
from watchers.demo import free_port

ZONE = "bench.test"
NAME = f"www.{ZONE}."
ADDRESS = "192.0.2.7"
ZONE_FILE = f"""$ORIGIN {ZONE}.
$TTL 300
@   IN SOA ns.{ZONE}. admin.{ZONE}. 1 3600 900 604800 300
@   IN NS  ns.{ZONE}.
ns  IN A   127.0.0.1
www IN A   {ADDRESS}
"""
NSD_CONF = """server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    username: ""
    chroot: ""
    zonesdir: "{root}"
    pidfile: "{root}/nsd.pid"
    database: ""
    xfrdfile: "{root}/xfrd.state"
    zonelistfile: "{root}/zone.list"
    server-count: 1
    verbosity: 0
    hide-version: yes
    # Response rate limiting would drop most of the benchmark's queries.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: "{root}/{zone}.zone"
"""


@contextlib.contextmanager
def authoritative(root: Path, core: int) -> Iterator[tuple[str, int]]:
    """(what answers, UDP port) for www.bench.test A 192.0.2.7."""
    port = free_port()
    root = root / "dns"
    root.mkdir(exist_ok=True)
    nsd = shutil.which("nsd") or shutil.which("nsd", path="/usr/sbin")
    if nsd is not None:
        (root / f"{ZONE}.zone").write_text(ZONE_FILE)
        conf = root / "nsd.conf"
        conf.write_text(NSD_CONF.format(port=port, root=root, zone=ZONE))
        argv = ["taskset", "-c", str(core), nsd, "-d", "-c", str(conf)]
        said = subprocess.run([nsd, "-v"], capture_output=True, text=True, check=False)
        what = "NSD " + (said.stderr or said.stdout).split()[2]
    else:
        argv = [sys.executable, "-m", "tests.bench.authoritative", str(port), str(core)]
        what = "Python responder (one prebuilt reply)"
    log = (root / "dns.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_answer(port)
        yield what, port
    finally:
        stop_all([proc])
        log.close()


def _wait_for_answer(port: int) -> None:
    import dns.message
    import dns.query

    query = dns.message.make_query(NAME, "A")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, dns.exception.Timeout):
            dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
            return
        time.sleep(0.1)
    raise RuntimeError(f"no DNS answer on port {port}")


def respond(port: int, core: int) -> None:
    """The Python fallback: the prebuilt reply with each query's id."""
    import dns.message
    import dns.rrset

    pin(core)
    query = dns.message.make_query(NAME, "A")
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA
    reply.answer.append(dns.rrset.from_text(NAME, 300, "IN", "A", ADDRESS))
    wire = reply.to_wire()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    while True:
        data, peer = sock.recvfrom(512)
        if len(data) >= 2:
            sock.sendto(data[:2] + wire[2:], peer)


if __name__ == "__main__":
    respond(int(sys.argv[1]), int(sys.argv[2]))
