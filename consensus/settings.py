"""Tunable numbers of the core, with units in their names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

DAY_MS = 86_400_000
LOG_WARN_FRACTION = 0.8

Number = int | float | tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Tunable:
    """A setting a config file may change: where (``section.key``), its
    default in the config's unit, and the core's Settings field it sets
    (the config's unit times ``scale``)."""

    key: str
    default: Number
    unit: str
    setting: str
    scale: int
    help: str

    def to_core(self, value: Number) -> Number:
        if isinstance(value, tuple) or self.scale == 1:
            return value
        return round(value * self.scale)


# The one table of the core's configurable defaults: the config schema and
# Settings take their defaults from it, and the README's table is checked
# against it.
TUNABLES = (
    Tunable(
        "defaults.fail_threshold",
        2,
        "checks",
        "fail_threshold",
        1,
        "failed checks in a row before a node's verdict is DOWN",
    ),
    Tunable(
        "defaults.success_threshold",
        2,
        "checks",
        "success_threshold",
        1,
        "good checks in a row before it is UP again",
    ),
    Tunable(
        "defaults.single_vantage_fail_threshold",
        4,
        "checks",
        "single_vantage_fail_threshold",
        1,
        "failed checks in a row while a node decides alone",
    ),
    Tunable(
        "defaults.retry_interval_s",
        10,
        "s",
        "retry_interval_ms",
        1000,
        "a failing target's next check, sooner than its interval",
    ),
    Tunable(
        "defaults.flap_calm_s",
        600,
        "s",
        "flap_calm_ms",
        1000,
        "how long a flapping target stays calm before it is settled",
    ),
    Tunable(
        "defaults.tls_expiry_days",
        (14, 7, 3, 1),
        "days",
        "tls_expiry_days",
        1,
        "one notice as a certificate's days left cross each",
    ),
    Tunable(
        "domains.expiry_days",
        (30, 14, 7, 1),
        "days",
        "domain_expiry_days",
        1,
        "one notice as a domain's registration days left cross each",
    ),
    Tunable(
        "sync.max_skew_ms",
        60_000,
        "ms",
        "max_skew_ms",
        1,
        "a peer's clock further off than this is told, and drags ours no further",
    ),
    Tunable(
        "ntfy.failover_s",
        90,
        "s",
        "failover_ms",
        1000,
        "how long the standby waits on the sender (or on a sender cut off from ntfy)",
    ),
    Tunable(
        "ntfy.remind_down_every_s",
        0,
        "s",
        "remind_down_every_ms",
        1000,
        "a reminder while a target stays DOWN; 0: never",
    ),
    Tunable(
        "ntfy.escalate_after_s",
        0,
        "s",
        "escalate_after_ms",
        1000,
        "a DOWN not acknowledged this long is posted to the escalation topic; 0: never",
    ),
    Tunable(
        "ntfy.group_window_s",
        30,
        "s",
        "group_window_ms",
        1000,
        "a page of a target with a parent, children or a tag waits this long for the rest of them",
    ),
    Tunable(
        "ntfy.group_min_targets",
        6,
        "targets",
        "group_min_targets",
        1,
        "this many targets of one tag going down (or back) together: one message",
    ),
    Tunable(
        "storage.max_log_entries",
        200_000,
        "entries",
        "max_log_entries",
        1,
        "the replicated log's cap in entries (a warning at 80 %)",
    ),
    Tunable(
        "storage.max_log_mb",
        128,
        "MiB",
        "max_log_bytes",
        2**20,
        "the replicated log's cap in bytes (a warning at 80 %)",
    ),
)
_BY_SETTING = {t.setting: t for t in TUNABLES}
_BY_KEY = {t.key: t for t in TUNABLES}


def default_int(key: str) -> int:
    """A tunable's default, in the config's unit, where the config holds an int."""
    value = _BY_KEY[key].default
    assert isinstance(value, int)
    return value


def default_float(key: str) -> float:
    value = _BY_KEY[key].default
    assert isinstance(value, int | float)
    return float(value)


def default_tuple(key: str) -> tuple[int, ...]:
    value = _BY_KEY[key].default
    assert isinstance(value, tuple)
    return value


def _core_default(setting: str) -> int:
    tunable = _BY_SETTING[setting]
    value = tunable.to_core(tunable.default)
    assert isinstance(value, int)
    return value


# How often a node says it is alive, and how long a silent peer still counts
# as live, follow the sync interval: heartbeats at most every 10 s, and a
# peer is lost after three and a half sync intervals, never under 35 s.
HEARTBEAT_MAX_MS = 10_000
PEER_TIMEOUT_MIN_MS = 35_000
PEER_TIMEOUT_INTERVALS = 3.5


@dataclass(frozen=True, slots=True)
class Settings:
    fail_threshold: int = _core_default("fail_threshold")
    success_threshold: int = _core_default("success_threshold")
    # While a node decides alone it needs a longer failure streak and a canary
    # pass after the last failure before it calls a target DOWN.
    single_vantage_fail_threshold: int = _core_default("single_vantage_fail_threshold")
    retry_interval_ms: int = _core_default("retry_interval_ms")
    heartbeat_interval_ms: int = HEARTBEAT_MAX_MS
    peer_timeout_ms: int = PEER_TIMEOUT_MIN_MS
    max_skew_ms: int = _core_default("max_skew_ms")
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
    flap_calm_ms: int = _core_default("flap_calm_ms")
    claim_ack_wait_ms: int = 2_000
    # Longer than the sender's whole retry window for one post plus a sync interval.
    failover_ms: int = _core_default("failover_ms")
    tombstone_ttl_ms: int = 7 * DAY_MS
    # The log's cap: past it a peer's batch that adds keys or bytes is
    # refused (this node's own writes go on); a warning comes at
    # LOG_WARN_FRACTION of either. About 1 KB of memory per entry.
    max_log_entries: int = _core_default("max_log_entries")
    max_log_bytes: int = _core_default("max_log_bytes")
    # A reminder while a target stays DOWN, every this long; 0: never.
    remind_down_every_ms: int = _core_default("remind_down_every_ms")
    # A DOWN nobody acknowledged this long is escalated, once; 0: never.
    escalate_after_ms: int = _core_default("escalate_after_ms")
    # A page of a target with a parent or children waits this long (and,
    # up to three times as long, while its family is still being decided).
    group_window_ms: int = _core_default("group_window_ms")
    # This many DOWNs of one tag within the window are paged as one group.
    group_min_targets: int = _core_default("group_min_targets")
    # One notice when a certificate has this many days left or fewer, once
    # per threshold (the lowest one crossed).
    tls_expiry_days: tuple[int, ...] = (14, 7, 3, 1)  # TUNABLES' default, checked by a test
    # The same for a domain's registration, as its registry's RDAP tells it.
    domain_expiry_days: tuple[int, ...] = (30, 14, 7, 1)  # TUNABLES' default, checked by a test
    # When the weekly report is due, in ms after Monday 00:00 UTC; None: never.
    weekly_report_at_ms: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "weekly_report_at_ms":
                if value is not None and not 0 <= value < 7 * DAY_MS:
                    raise ValueError(f"{f.name}: expected a time within the week, got {value}")
            elif f.name in ("remind_down_every_ms", "escalate_after_ms"):
                if value < 0:
                    raise ValueError(f"{f.name}: expected 0 (off) or more, got {value}")
            elif f.name in ("tls_expiry_days", "domain_expiry_days"):
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


def configured(values: Mapping[str, Number], sync_interval_ms: int) -> Settings:
    """The core's settings from a config: ``values`` by tunable key (those
    absent keep their defaults) and the sync interval, which sets how often
    a node says it is alive and when a silent peer is lost."""
    unknown = set(values) - set(_BY_KEY)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    chosen = {_BY_KEY[key].setting: _BY_KEY[key].to_core(v) for key, v in values.items()}
    return Settings(
        **chosen,  # type: ignore[arg-type]
        heartbeat_interval_ms=min(HEARTBEAT_MAX_MS, sync_interval_ms),
        peer_timeout_ms=max(PEER_TIMEOUT_MIN_MS, round(sync_interval_ms * PEER_TIMEOUT_INTERVALS)),
    )
