"""Where a check may connect.

Targets in the config file are the operator's and reach anything. A target
added through the admin API reaches only public addresses, unless the config
allows more (``[admin] allow_private_targets``): an admin token must not
become a way into the node's own network (its loopback services, the peer's
API, private ranges, a cloud's metadata address at 169.254.169.254).

Names are resolved before connecting and every address they give is
judged; so is every hop of a redirect. The probe's own connection resolves
the name again, so a name whose answer changes in between (DNS rebinding)
is not fully covered here: the unit's ``IPAddressDeny=`` keeps the metadata
address out of reach whatever a name says.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Awaitable[list[Address]]]
# How long a name may take to resolve before the check goes on without it
# (and fails on its own if the name is gone).
RESOLVE_TIMEOUT_S = 5.0
# The node's own addresses are looked up again after this long.
OWN_ADDRESSES_TTL_S = 600.0
WHY = (
    "a target added through the admin API may reach only public addresses "
    "([admin] allow_private_targets)"
)


def literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str) -> list[Address]:
    """The addresses a name stands for; a literal address is itself, with no lookup."""
    address = literal(host)
    if address is not None:
        return [address]
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(RESOLVE_TIMEOUT_S):
        found = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    addresses = {literal(str(info[4][0]).split("%")[0]) for info in found}
    return sorted((a for a in addresses if a is not None), key=str)


def not_public(address: Address) -> str | None:
    """What kind of address a check may not reach from an admin target, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, test in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
    ):
        if test:
            return kind
    return None if address.is_global else "not a public address"


def url_host(url: str) -> str:
    return urlsplit(url).hostname or ""


@dataclass
class Reach:
    """The addresses one node's admin targets may reach."""

    public_only: bool = False
    # The node's own names and addresses: listen, public URL, its peers'.
    own_names: tuple[str, ...] = ()
    resolver: Resolver = resolve
    _own: frozenset[Address] = field(default=frozenset(), init=False)
    _own_until: float = field(default=0.0, init=False)

    async def refusal(self, hosts: Iterable[str]) -> str | None:
        """Why a check may not connect to one of hosts, or None when it may."""
        if not self.public_only:
            return None
        own = await self._own_addresses()
        for host in hosts:
            try:
                addresses = await self.resolver(host)
            except (OSError, TimeoutError):
                continue  # the check meets the same failure and says so
            for address in addresses:
                kind = not_public(address) or (
                    "this node's own address" if address in own else None
                )
                if kind is not None:
                    shown = str(address) if literal(host) else f"{host} ({address})"
                    return f"refused: {shown} is {kind}; {WHY}"
        return None

    async def _own_addresses(self) -> frozenset[Address]:
        if time.monotonic() < self._own_until:
            return self._own
        found: set[Address] = set()
        for name in self.own_names:
            try:
                found.update(await self.resolver(name))
            except (OSError, TimeoutError):
                continue
        self._own, self._own_until = frozenset(found), time.monotonic() + OWN_ADDRESSES_TTL_S
        return self._own


EVERYWHERE = Reach()
