"""Notices ahead of an expiry: a certificate's (seen by each HTTPS check)
and a domain's registration (looked up in its registry's RDAP by the shell).

Once per threshold crossed (the lowest), whichever node sees it first: the
id depends only on what expires, when, and the threshold, so both nodes
announce the same event and one notification goes out. An expiry already
past says nothing here: the failing checks say that.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus import keys
from consensus.agreeing import Agreeing
from consensus.agreement import Mode, Notice
from consensus.commands import Step, telling
from consensus.events import Event, event_id
from consensus.lww import JsonValue
from consensus.settings import DAY_MS


class Expiring(Agreeing):
    @telling
    def certificate_observed(self, target: str, not_after_ms: int, now_ms: int) -> Step:
        """A check saw the target's certificate, valid until not_after_ms."""
        if target not in self.targets:
            return Step()
        detail: dict[str, JsonValue] = {"not_after_ms": not_after_ms}
        return self._ahead_of_expiry(
            Notice.TLS_EXPIRING,
            target,
            target,
            not_after_ms,
            now_ms,
            self.settings.tls_expiry_days,
            detail,
        )

    @telling
    def domain_observed(
        self, domain: str, targets: Sequence[str], expires_ms: int, now_ms: int
    ) -> Step:
        """The registry says domain's registration runs until expires_ms;
        targets: the watched targets on it (the first is the event's subject,
        for its topic and its page)."""
        watched = sorted(t for t in targets if t in self.targets)
        if not watched:
            return Step()
        detail: dict[str, JsonValue] = {
            "domain": domain,
            "expires_ms": expires_ms,
            "targets": list(watched),
        }
        return self._ahead_of_expiry(
            Notice.DOMAIN_EXPIRING,
            watched[0],
            f"domain:{domain}",
            expires_ms,
            now_ms,
            self.settings.domain_expiry_days,
            detail,
        )

    def _ahead_of_expiry(
        self,
        notice: Notice,
        subject: str,
        what: str,
        expires_ms: int,
        now_ms: int,
        thresholds: Sequence[int],
        detail: dict[str, JsonValue],
    ) -> Step:
        if self.node not in self._voters:
            return Step()
        days_left = (expires_ms - now_ms) / DAY_MS
        crossed = [days for days in thresholds if days_left <= days]
        if not crossed or days_left <= 0:
            return Step()
        threshold = min(crossed)
        state = self.record(subject).state.value
        event_id_ = event_id(what, notice, "", None, Mode.QUORUM, f"{threshold}:{expires_ms}")
        if self.log.get(keys.event(event_id_)) is not None:
            return Step()
        event = Event(
            id=event_id_,
            subject=subject,
            notice=notice,
            state=state,
            previous=state,
            anchor=None,
            mode=Mode.QUORUM,
            voters=tuple(sorted(self._voters)),
            suppressed=self._silent(subject),
            detail={**detail, "threshold_days": threshold, "days_left": round(days_left, 1)},
        )
        return self._announce(event, now_ms)
