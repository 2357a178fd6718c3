"""Which registered domains the targets stand on, and where each one's
registry answers RDAP (RFC 9083: JSON over HTTPS).

A target's domain is its host's last two labels (``shop.example.com`` ->
``example.com``), or what its ``domain`` key says (``example.co.uk``, where
the registry sells names a level down; ``""`` for none); an address has
none. Registries are found by top-level domain: a few are bundled (from
IANA's RDAP bootstrap, https://data.iana.org/rdap/dns.json), and
``[domains] rdap`` adds or replaces any.

```toml
[domains]
watch = true                     # look each domain up once a day (default: off)
expiry_days = [30, 14, 7, 1]     # one notice as the days left cross each
rdap = { io = "https://rdap.identitydigital.services/rdap/" }
```
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Annotated

from pydantic import AnyHttpUrl, Field

from consensus.settings import default_tuple
from watchers.probes import AnyTarget, hosts_of
from watchers.probes.base import Strict
from watchers.probes.dns import DnsTarget

# A snapshot of IANA's bootstrap for the registries most of Biphrost's
# customers use; a registry that moves is set in [domains] rdap.
BUNDLED_RDAP = {
    "com": "https://rdap.verisign.com/com/v1/",
    "net": "https://rdap.verisign.com/net/v1/",
    "org": "https://rdap.publicinterestregistry.org/rdap/",
    "uk": "https://rdap.nominet.uk/uk/",
}


class DomainsSection(Strict):
    watch: bool = False
    expiry_days: tuple[Annotated[int, Field(ge=1, le=365)], ...] = Field(
        default=default_tuple("domains.expiry_days")
    )
    rdap: dict[Annotated[str, Field(pattern=r"^[a-z0-9-]{1,63}$")], AnyHttpUrl] = Field(
        default_factory=dict
    )

    def servers(self) -> dict[str, str]:
        """Top-level domain -> RDAP base URL (ending in /)."""
        found = dict(BUNDLED_RDAP)
        found.update({tld: str(url).rstrip("/") + "/" for tld, url in self.rdap.items()})
        return found


def registered_domain(target: AnyTarget) -> str | None:
    """The domain a target stands on, or None (an address, or told none)."""
    if target.domain is not None:
        return target.domain.lower().rstrip(".") or None
    hosts = [h for _, h in hosts_of(target)]
    if isinstance(target, DnsTarget):
        hosts = [target.query]  # what it resolves, not its resolver's address
    for host in hosts:
        name = host.lower().rstrip(".")
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            labels = name.split(".")
            return ".".join(labels[-2:]) if len(labels) >= 2 else None
        return None
    return None


def domains_of(targets: Iterable[AnyTarget]) -> dict[str, list[str]]:
    """Each domain, with the ids of the targets on it (sorted)."""
    found: dict[str, list[str]] = {}
    for target in targets:
        domain = registered_domain(target)
        if domain is not None:
            found.setdefault(domain, []).append(target.id)
    return {d: sorted(ids) for d, ids in sorted(found.items())}


def server_for(domain: str, servers: Mapping[str, str]) -> str | None:
    return servers.get(domain.rsplit(".", 1)[-1])
