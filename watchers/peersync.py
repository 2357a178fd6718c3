"""Sync with the peers: signed pushes and paged pulls out, answers in,
backoff from an unreachable peer, and each peer's clock as it tells it.

Every request goes through the ``httpx.AsyncClient`` the node is handed: a
real one in production, one routed to the peer's app in process in tests.
"""

from __future__ import annotations

import functools
import logging
import ssl
from typing import TYPE_CHECKING, Any

import httpx

from consensus.errors import InvalidEntry
from consensus.lww import Entry
from watchers import wire
from watchers.digits import plain_digits
from watchers.live import LiveError
from watchers.pushes import PeerPushes

if TYPE_CHECKING:
    from watchers.config import Config
    from watchers.runtime import Node

log = logging.getLogger("ravens")

# A peer we cannot reach is tried at least this often: after a long
# partition, the heal is noticed within this long.
SYNC_BACKOFF_MAX_S = 10.0
MAX_PAGE = 10_000


class PeerSync:
    def __init__(self, node: Node, client: httpx.AsyncClient) -> None:
        self.node = node
        self.client = client
        self.clock = node.clock
        self.urls = {p.name: str(p.url).rstrip("/") for p in node.config.peers}
        # When the last full pull from each peer ended, on the monotonic
        # clock: a lag no step of the wall clock can distort.
        self.last_sync_mono: dict[str, float] = {}
        self.failures: dict[str, int] = dict.fromkeys(self.urls, 0)
        self.retry_at_ms: dict[str, int] = dict.fromkeys(self.urls, 0)
        self.pulling: set[str] = set()
        self.pushes = {
            peer: PeerPushes(
                functools.partial(self._push, peer), node.spawn, batch=node.config.sync.page_size
            )
            for peer in self.urls
        }
        # The peer's wall clock minus ours, from its signed timestamps (true
        # readings, unlike HLCs, which never go back).
        self.clock_offset_ms: dict[str, int] = {}
        # Nonces of the sync requests accepted lately: a replay is refused.
        self.nonces = wire.Nonces()

    @property
    def secret(self) -> str:
        return self.node.secret

    def lag_ms(self, peer: str) -> int | None:
        """How long since the last full pull from peer ended; None before one."""
        last = self.last_sync_mono.get(peer)
        return None if last is None else int((self.clock.monotonic() - last) * 1000)

    def stepped(self, step_ms: int) -> None:
        """Our wall clock jumped: backoffs keep their length, and requests
        are still stamped in each peer's time, which did not move."""
        self.retry_at_ms = {peer: at + step_ms for peer, at in self.retry_at_ms.items()}
        self.clock_offset_ms = {p: off - step_ms for p, off in self.clock_offset_ms.items()}

    # -- asking peers ----------------------------------------------------------

    async def signed_post(self, peer: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = wire.json_bytes(payload)
        for attempt in (1, 2):
            # Stamped in the peer's time as we last saw it: the window is
            # seconds, the clocks may be minutes apart.
            stamp = self.clock.now_ms() + self.clock_offset_ms.get(peer, 0)
            headers = wire.signed_headers(self.secret, self.node.name, stamp, "POST", path, body)
            url = self.urls[peer] + path
            response = await self.client.post(url, content=body, headers=headers)
            told = response.headers.get("x-ravens-time", "")
            if response.status_code == 401 and attempt == 1 and self._corrected(peer, stamp, told):
                continue
            if response.status_code != 200:
                raise wire.WireError(response.status_code, response.text[:200])
            nonce = headers["X-Ravens-Nonce"]
            wire.verify(
                self.secret,
                [peer],
                response.headers,
                "ANSWER",
                path,
                response.content,
                self.clock.now_ms(),
                answers=nonce,
            )
            await self.saw_clock(peer, told)
            return wire.parse_body(response.content)
        raise AssertionError("unreachable")

    def _note_refusal(self, peer: str, exc: Exception) -> None:
        """A peer that answers 401 'bad signature' is alive and does not
        share our secret: not a partition, and the note says so."""
        refused = self.node.core.refused_by
        mismatch = (
            isinstance(exc, wire.WireError) and exc.status == 401 and ("bad signature" in str(exc))
        )
        if mismatch and peer not in refused:
            log.error(
                "sync node=%s peer=%s refuses our signature: the [sync] secret_file "
                "differs between the nodes; each decides alone until it matches",
                self.node.name,
                peer,
            )
            refused[peer] = "signature"
        elif not mismatch:
            refused.pop(peer, None)

    def _corrected(self, peer: str, stamp: int, told: str) -> bool:
        """A refusal carried the peer's time, far from how we stamped: take
        it as the peer's clock (unsigned: a wrong one only fails our next
        request, which the peer's next refusal corrects)."""
        if not plain_digits(told, 16) or abs(int(told) - stamp) <= wire.WINDOW_MS // 2:
            return False
        self.clock_offset_ms[peer] = int(told) - self.clock.now_ms()
        return True

    async def _push(self, peer: str, entries: tuple[Entry, ...], claims: list[str]) -> bool:
        payload = {"entries": [wire.entry_to_json(e) for e in entries]}
        try:
            await self.signed_post(peer, "/sync/push", payload)
        except (httpx.HTTPError, wire.WireError) as exc:
            log.debug("push node=%s peer=%s failed: %s", self.node.name, peer, exc)
            return False
        core = self.node.core
        for event_id in claims:
            await self.node.apply(core.claim_acknowledged(event_id, self.clock.now_ms()))
        return True

    async def sync_all(self) -> None:
        # Each pull runs on its own: one hanging on a cut path (until its
        # timeout) must not hold up the schedule or the other peers.
        for peer in self.urls:
            self.node.spawn(self.pull(peer))  # pull skips a peer already being pulled

    async def pull(self, peer: str) -> None:
        if self.clock.now_ms() < self.retry_at_ms[peer] or peer in self.pulling:
            return  # backing off an unreachable peer, or already pulling
        self.pulling.add(peer)
        try:
            await self._pull_pages(peer)
        finally:
            self.pulling.discard(peer)

    async def _pull_pages(self, peer: str) -> None:
        node, cursor = self.node, None
        try:
            while True:
                payload = {
                    "vector": dict(node.core.log.vector),
                    "cursor": list(cursor) if cursor else None,
                    "limit": node.config.sync.page_size,
                    "live_after_ms": node.live.newest_ms(peer),
                }
                data = await self.signed_post(peer, "/sync/pull", payload)
                if "live" in data:
                    try:
                        node.live.take(peer, data["live"], node.targets)
                    except LiveError as exc:
                        raise wire.WireError(422, str(exc)) from exc
                entries = wire.entries_from(data)
                covered = wire.vector_from({"vector": data.get("covered", {})})
                cursor = wire.cursor_from({"cursor": data.get("next_cursor")})
                now = self.clock.now_ms()
                await node.apply(
                    node.core.entries_received(peer, entries, now, covered, cursor is None)
                )
                if cursor is None:
                    self._pulled(peer)
                    return
        except (httpx.HTTPError, wire.WireError, InvalidEntry) as exc:
            self._failed(peer, exc)

    def _pulled(self, peer: str) -> None:
        self.last_sync_mono[peer] = self.clock.monotonic()
        self.node.core.refused_by.pop(peer, None)
        if self.failures[peer]:
            log.info("sync node=%s peer=%s reachable again", self.node.name, peer)
        self.failures[peer] = 0

    def _failed(self, peer: str, exc: Exception) -> None:
        self._note_refusal(peer, exc)
        self.failures[peer] += 1
        backoff_s = min(SYNC_BACKOFF_MAX_S, 2 ** min(self.failures[peer], 6))
        self.retry_at_ms[peer] = self.clock.now_ms() + int(backoff_s * 1000)
        if self.failures[peer] == 1 or isinstance(exc, wire.WireError):
            log.warning(
                "sync node=%s peer=%s failed: %s; retrying with backoff",
                self.node.name,
                peer,
                str(exc)[:200],
            )

    async def peer_history(self, peer: str, query: dict[str, Any]) -> dict[str, Any] | None:
        """The peer's points, or None when it cannot be asked now."""
        if self.clock.now_ms() < self.retry_at_ms[peer]:
            return None  # known unreachable: answer with our own points at once
        try:
            answer = await self.signed_post(peer, "/sync/history", query)
        except (httpx.HTTPError, wire.WireError) as exc:
            log.debug("history node=%s peer=%s failed: %s", self.node.name, peer, exc)
            return None
        points = answer.get("points")
        if not isinstance(points, list) or not all(
            isinstance(p, dict) and p.get("node") == peer and isinstance(p.get("at_ms"), int)
            for p in points
        ):
            return None
        return {"points": points}

    async def saw_clock(self, peer: str, stamp: str) -> None:
        """A verified answer from peer carried its wall clock: later requests
        are stamped in its time, and the core keeps and judges the offset."""
        if not plain_digits(stamp, 16):
            return
        now = self.clock.now_ms()
        self.clock_offset_ms[peer] = int(stamp) - now
        await self.node.apply(self.node.core.peer_clock_observed(peer, int(stamp), now))

    # -- answering peers -------------------------------------------------------

    async def answer_pull(self, peer: str, data: dict[str, Any]) -> dict[str, Any]:
        node = self.node
        limit = data.get("limit", node.config.sync.page_size)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise wire.WireError(400, f"limit: expected a whole number from 1 to {MAX_PAGE}")
        page = node.core.delta_requested(
            peer, wire.vector_from(data), self.clock.now_ms(), wire.cursor_from(data), limit
        )
        self._peer_is_back(peer)
        answer = wire.page_to_json(page)
        after = data.get("live_after_ms")
        if data.get("cursor") is None and isinstance(after, int) and not isinstance(after, bool):
            # Our latest checks newer than what the peer holds, with the first page.
            answer["live"] = node.live.own_after(after)
        return answer

    async def answer_push(self, peer: str, data: dict[str, Any]) -> dict[str, Any]:
        entries = wire.entries_from(data)
        try:
            step = self.node.core.entries_received(peer, entries, self.clock.now_ms())
        except InvalidEntry as exc:
            raise wire.WireError(422, str(exc)) from exc
        await self.node.apply(step)
        self._peer_is_back(peer)
        return {"merged": len(step.to_commit)}

    async def answer_history(self, _peer: str, data: dict[str, Any]) -> dict[str, Any]:
        """This node's own checks or rollups of one target, for the read API."""
        target, start, end = data.get("target"), data.get("from_ms"), data.get("to_ms")
        resolution, limit = data.get("resolution"), data.get("limit")
        if not isinstance(target, str) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in (start, end, limit)
        ):
            raise wire.WireError(400, "history: expected target, from_ms, to_ms and limit")
        assert isinstance(start, int) and isinstance(end, int) and isinstance(limit, int)
        if not 1 <= limit <= MAX_PAGE:
            raise wire.WireError(400, f"history: limit: expected 1 to {MAX_PAGE}")
        store, name = self.node.store, self.node.name
        points: list[dict[str, Any]]
        if resolution == "raw":
            rows = await store.checks_between(target, start, end, limit)
            points = [
                {
                    "node": name,
                    "at_ms": r.at_ms,
                    "ok": r.ok,
                    "latency_ms": r.latency_ms,
                    "reason": r.reason,
                }
                for r in rows
            ]
        elif resolution in ("hour", "day"):
            ups = await store.rollups_between(target, resolution, start, end, limit)
            points = [
                {
                    "node": name,
                    "at_ms": u.bucket_ms,
                    "checks": u.checks,
                    "ups": u.ups,
                    "latency_min_ms": u.latency_min_ms,
                    "latency_avg_ms": u.latency_avg_ms,
                    "latency_max_ms": u.latency_max_ms,
                }
                for u in ups
            ]
            if resolution == "hour" and ups:
                # Each hour's p50 and p95 (the response-time charts draw them).
                last = ups[-1].bucket_ms + 1
                hours = {h.bucket_ms: h for h in await store.latency_hours(target, start, last)}
                for point in points:
                    hour = hours.get(point["at_ms"])
                    point["latency_p50_ms"] = None if hour is None else hour.p50_ms
                    point["latency_p95_ms"] = None if hour is None else hour.p95_ms
        else:
            raise wire.WireError(400, "history: resolution: expected raw, hour or day")
        return {"points": points}

    def _peer_is_back(self, peer: str) -> None:
        """The peer reached us: stop backing off and pull from it at once, or
        we would not be ready (nor vote) until the backoff ran out."""
        if self.failures[peer] and self.retry_at_ms[peer] > self.clock.now_ms():
            self.retry_at_ms[peer] = 0
            self.node.spawn(self.pull(peer))


def sync_client(config: Config, trust: ssl.SSLContext) -> httpx.AsyncClient:
    """The client of the peers' sync API: their certificates checked against
    [sync] ca_file when one is given (a private CA), else ``trust`` (the
    node's trust store)."""
    if config.sync.ca_file is not None:
        trust = ssl.create_default_context(cafile=str(config.sync.ca_file))
    return httpx.AsyncClient(timeout=10.0, verify=trust)
