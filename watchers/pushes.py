"""Entries on their way to one peer, pushed as soon as they are written.

A push only hurries what the peer's next pull would carry anyway, so it must
never cost more than it saves. One push per written step, each its own
request, piled up without bound when the peer was slow (a loaded node: the
HTTP client's queue of thousands of waiting pushes cost a third of the
loop). Here at most one push to a peer is in flight; what is written
meanwhile rides in the next, up to a page at a time; past a bound, or when a
push fails, the entries are left to the pull, except claims, whose
acknowledgement lets the claimant post without waiting out its timer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from consensus.lww import Entry

# More than this waiting for one peer: the pull is the faster way.
MAX_PENDING = 5_000

# The entries, and the event ids of the claims among them.
Send = Callable[[tuple[Entry, ...], list[str]], Awaitable[bool]]


@dataclass
class PeerPushes:
    """send(entries, claims) posts one push and says whether the peer took it."""

    send: Send
    spawn: Callable[[Awaitable[None]], None]
    batch: int = 500
    most_pending: int = MAX_PENDING
    pending: list[Entry] = field(default_factory=list)
    # The pending claims: entry key -> event id (the core says which).
    claims: dict[str, str] = field(default_factory=dict)
    in_flight: bool = False
    # Entries left to the pull (bound reached or the peer unreachable).
    left_to_pull: int = 0
    pushes: int = 0

    def add(self, entries: tuple[Entry, ...], claims: dict[str, str] | None = None) -> None:
        self.pending.extend(entries)
        self.claims.update(claims or {})
        if len(self.pending) > self.most_pending:
            self._leave_to_pull()
        if not self.in_flight and self.pending:
            self.in_flight = True
            self.spawn(self._drain())

    async def _drain(self) -> None:
        try:
            while self.pending:
                now = tuple(self.pending[: self.batch])
                del self.pending[: self.batch]
                claims = [self.claims.pop(e.key) for e in now if e.key in self.claims]
                self.pushes += 1
                if not await self.send(now, claims):
                    # Unreachable or refused: trying each pending push in
                    # turn would only wait out one timeout after another.
                    self.left_to_pull += len(now) + len(self.pending)
                    self.pending.clear()
                    self.claims.clear()
                    return
        finally:
            self.in_flight = False

    def _leave_to_pull(self) -> None:
        claims = [e for e in self.pending if e.key in self.claims]
        kept = claims[-self.most_pending :]
        self.left_to_pull += len(self.pending) - len(kept)
        self.pending = kept
