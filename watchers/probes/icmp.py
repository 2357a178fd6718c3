"""ICMP echo (ping): unprivileged datagram sockets where the kernel allows
(net.ipv4.ping_group_range), raw sockets with CAP_NET_RAW otherwise."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from typing import Literal

from pydantic import Field

from watchers.probes.base import CheckResult, TargetBase, seconds

ECHO_REQUEST = 8
ECHO_REPLY = 0
NO_PERMISSION = (
    "ping not permitted: allow unprivileged ping (sysctl net.ipv4.ping_group_range) "
    "or grant CAP_NET_RAW"
)


class IcmpTarget(TargetBase):
    kind: Literal["icmp"]
    host: str = Field(min_length=1, max_length=253)


def open_icmp_socket() -> tuple[socket.socket, bool]:
    """(socket, raw): a datagram ICMP socket if allowed, else a raw one."""
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP), False
    except PermissionError:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), True


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, sequence: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, sequence)
    checksum = _checksum(header + payload)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum, ident, sequence) + payload


async def probe_icmp(target: IcmpTarget, timeout_s: float) -> CheckResult:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, None, family=socket.AF_INET)
    except OSError as exc:
        return CheckResult(False, None, f"cannot resolve {target.host}: {exc.strerror or exc}")
    address = str(infos[0][4][0])
    try:
        sock, raw = open_icmp_socket()
    except PermissionError:
        return CheckResult(False, None, NO_PERMISSION)
    sequence = int.from_bytes(os.urandom(2), "big")
    payload = b"ravens" + os.urandom(10)
    with sock:
        sock.setblocking(False)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                request = echo_request(os.getpid() & 0xFFFF, sequence, payload)
                await _send_to(loop, sock, request, address)
                while True:
                    packet = await loop.sock_recv(sock, 2048)
                    if raw:
                        packet = packet[(packet[0] & 0x0F) * 4 :]  # strip the IP header
                    kind, _, _, _, seq = struct.unpack("!BBHHH", packet[:8])
                    if kind == ECHO_REPLY and seq == sequence and packet[8:] == payload:
                        break
        except TimeoutError:
            return CheckResult(False, None, f"no echo reply after {seconds(timeout_s)}")
        except OSError as exc:
            return CheckResult(False, None, f"ping failed: {exc.strerror or exc}")
    latency = round((time.perf_counter() - started) * 1000, 2)
    return CheckResult(True, latency, f"echo reply from {address}")


async def _send_to(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, data: bytes, address: str
) -> None:
    """One datagram out; waits only if the socket's buffer is full. (Not
    loop.sock_sendto: uvloop does not have it.)"""
    while True:
        try:
            sock.sendto(data, (address, 0))
            return
        except BlockingIOError:
            writable: asyncio.Future[None] = loop.create_future()
            loop.add_writer(sock, _wake, writable)
            try:
                await writable
            finally:
                loop.remove_writer(sock)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
