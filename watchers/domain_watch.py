"""Each watched domain's registration, looked up at most once a day per
node (kept across restarts), and its expiry thresholds judged every ten
minutes (a threshold is crossed by time passing, not only by a lookup). A
lookup that fails is logged and shown on the target's page; it never pages."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING

import httpx

from consensus.settings import DAY_MS
from watchers.domains import domains_of, registered_domain, server_for
from watchers.probes.rdap import Registration, look_up

if TYPE_CHECKING:
    from watchers.runtime import Node

log = logging.getLogger("ravens")
META_PREFIX = "domain:"
LOOKUP_TIMEOUT_S = 15.0


class DomainWatch:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.known: dict[str, Registration] = {}

    async def load(self) -> None:
        """The last lookups, from before a restart."""
        for name, text in (await self.node.store.meta_with_prefix(META_PREFIX)).items():
            try:
                self.known[name[len(META_PREFIX) :]] = Registration(**json.loads(text))
            except (ValueError, TypeError):
                continue

    def of_target(self, target_id: str) -> Registration | None:
        target = self.node.targets.get(target_id)
        domain = None if target is None else registered_domain(target)
        return None if domain is None else self.known.get(domain)

    async def run(self) -> None:
        node = self.node
        section = node.config.domains
        if not section.watch:
            return
        servers = section.servers()
        async with httpx.AsyncClient(timeout=LOOKUP_TIMEOUT_S, follow_redirects=True) as client:
            for domain, targets in domains_of(node.targets.values()).items():
                now = node.clock.now_ms()
                seen = self.known.get(domain)
                if seen is None or now - seen.checked_ms >= DAY_MS:
                    seen = await self._look_up(client, domain, server_for(domain, servers), now)
                if seen.expires_ms is not None:
                    await node.apply(
                        node.core.domain_observed(domain, targets, seen.expires_ms, now)
                    )

    async def _look_up(
        self, client: httpx.AsyncClient, domain: str, base: str | None, now: int
    ) -> Registration:
        if base is None:
            tld = domain.rsplit(".", 1)[-1]
            why = f"no RDAP server known for .{tld}: set one in [domains] rdap"
            found = Registration(domain, now, error=why)
        else:
            found = await look_up(client, base, domain, now)
        if found.error is not None:
            log.warning("domain node=%s domain=%s %s", self.node.name, domain, found.error)
        self.known[domain] = found
        value = json.dumps(dataclasses.asdict(found))
        await self.node.store.put_meta(META_PREFIX + domain, value)
        return found
