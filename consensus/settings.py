"""Tunable numbers of the core, with units in their names."""

from __future__ import annotations

from dataclasses import dataclass, fields

DAY_MS = 86_400_000
LOG_WARN_FRACTION = 0.8


@dataclass(frozen=True, slots=True)
class Settings:
    fail_threshold: int = 2
    success_threshold: int = 2
    # While a node decides alone it needs a longer failure streak and a canary
    # pass after the last failure before it calls a target DOWN.
    single_vantage_fail_threshold: int = 4
    retry_interval_ms: int = 10_000
    heartbeat_interval_ms: int = 10_000
    peer_timeout_ms: int = 35_000
    max_skew_ms: int = 60_000
    # Entries stamped further ahead than this are refused with their batch.
    # Less far ahead they merge: a node whose clock stepped forward for a
    # while stamped them honestly, and refusing them would cut it off for as
    # long as the step was. They cannot win a shared key for long: whoever
    # writes the key next stamps just after what it holds.
    max_future_ms: int = 30 * DAY_MS
    partial_note_after_ms: int = 15 * 60_000
    isolated_note_after_ms: int = 60_000
    peer_lost_note_after_ms: int = 120_000
    flap_high_pct: float = 30.0
    flap_low_pct: float = 25.0
    # Flapping ends only after the score stayed low, with no change, this long.
    flap_calm_ms: int = 10 * 60_000
    claim_ack_wait_ms: int = 2_000
    # Longer than the sender's whole retry window for one post plus a sync interval.
    failover_ms: int = 90_000
    tombstone_ttl_ms: int = 7 * DAY_MS
    # The log's cap: past it a peer's batch that adds keys or bytes is
    # refused (this node's own writes go on); a warning comes at
    # LOG_WARN_FRACTION of either. About 1 KB of memory per entry.
    max_log_entries: int = 200_000
    max_log_bytes: int = 128 * 2**20
    # A reminder while a target stays DOWN, every this long; 0: never.
    remind_down_every_ms: int = 0
    # One notice when a certificate has this many days left or fewer, once
    # per threshold (the lowest one crossed).
    tls_expiry_days: tuple[int, ...] = (14, 7, 3, 1)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "remind_down_every_ms":
                if value < 0:
                    raise ValueError(f"{f.name}: expected 0 (off) or more, got {value}")
            elif f.name == "tls_expiry_days":
                if any(days <= 0 for days in value):
                    raise ValueError(f"{f.name}: expected positive numbers of days, got {value}")
            elif value <= 0:
                raise ValueError(f"{f.name}: expected a positive number, got {value}")
        if self.single_vantage_fail_threshold < self.fail_threshold:
            raise ValueError(
                "single_vantage_fail_threshold: expected at least fail_threshold "
                f"({self.fail_threshold}), got {self.single_vantage_fail_threshold}"
            )
        if self.flap_low_pct > self.flap_high_pct:
            raise ValueError(
                f"flap_low_pct: expected at most flap_high_pct ({self.flap_high_pct}), "
                f"got {self.flap_low_pct}"
            )

    @property
    def streak_cap(self) -> int:
        """Streak counters stop here, so a steady target writes nothing new."""
        return max(self.single_vantage_fail_threshold, self.success_threshold)
