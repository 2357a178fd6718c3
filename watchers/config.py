"""The node's one TOML file, validated against one declared schema.

Unknown keys are refused. Every problem names the dotted key, the value and
what was expected; secrets are never inline and never echoed back.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from consensus.agreement import Notice
from consensus.events import Event
from consensus.settings import (
    TUNABLES,
    Settings,
    configured,
    default_float,
    default_int,
    default_tuple,
)
from notify.courier import Routing
from notify.messages import DEFAULT_PRIORITY, Style, Subject
from notify.publisher import Server
from notify.topics import TOPIC, not_reserved
from watchers import weekly
from watchers.config_problems import describe_problem
from watchers.customer_pages import PageSection, check_slugs
from watchers.digits import plain_digits
from watchers.domains import DomainsSection
from watchers.maintenance import MaintenanceWindow
from watchers.probes import Target
from watchers.probes.base import ENV_PATTERN, SecretSource, Strict
from watchers.probes.parents import check_parents
from watchers.probes.reach import url_host
from watchers.webhooks import WebhookSection, check_hooks

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
MIN_SECRET_CHARS = 32
# A Bearer token, or Basic credentials, for ntfy.
NtfyLogin = tuple[str | None, tuple[str, str] | None]


class ConfigError(Exception):
    """Everything wrong with a config file, one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class NodeSection(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    listen: str = "127.0.0.1:8470"
    data_dir: Path
    public_url: AnyHttpUrl | None = None
    # Serve TLS directly (else put a reverse proxy in front, or WireGuard between nodes).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # A client must send its whole request (head and body) within this.
    read_timeout_s: float = Field(default=30, gt=0, le=600)

    @model_validator(mode="after")
    def _tls_pair(self) -> NodeSection:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("give both tls_cert_file and tls_key_file, or neither")
        return self

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not plain_digits(port, 5) or not 0 < int(port) < 65_536 or not host:
            raise ValueError("expected HOST:PORT such as 0.0.0.0:8470")
        host = host.strip("[]")
        if host != "localhost":
            try:
                ipaddress.ip_address(host)
            except ValueError as exc:
                raise ValueError("expected an IP address or localhost before the port") from exc
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class PeerSection(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    url: AnyHttpUrl


class SyncSection(SecretSource):
    interval_s: float = Field(default=10, gt=0, le=3600)
    # Trust for the peers' certificates when they are not publicly signed.
    ca_file: Path | None = None
    max_skew_ms: int = Field(default=default_int("sync.max_skew_ms"), gt=0)
    page_size: int = Field(default=500, ge=10, le=10_000)


class DefaultsSection(Strict):
    interval_s: float = Field(default=60, gt=0, le=86_400)
    timeout_s: float = Field(default=10, gt=0, le=300)
    retry_interval_s: float = Field(
        default=default_float("defaults.retry_interval_s"), gt=0, le=3600
    )
    fail_threshold: int = Field(default=default_int("defaults.fail_threshold"), ge=1, le=20)
    success_threshold: int = Field(default=default_int("defaults.success_threshold"), ge=1, le=20)
    single_vantage_fail_threshold: int = Field(
        default=default_int("defaults.single_vantage_fail_threshold"), ge=1, le=40
    )
    max_concurrent_checks: int = Field(default=200, ge=1, le=10_000)
    # A flapping target is settled after this long without a change.
    flap_calm_s: float = Field(default=default_float("defaults.flap_calm_s"), ge=1, le=86_400)
    # One notice when an HTTPS target's certificate has this many days left,
    # once per threshold.
    tls_expiry_days: tuple[Annotated[int, Field(ge=1, le=365)], ...] = Field(
        default=default_tuple("defaults.tls_expiry_days")
    )

    @model_validator(mode="after")
    def _stricter_alone(self) -> DefaultsSection:
        if self.single_vantage_fail_threshold < self.fail_threshold:
            raise ValueError(
                "single_vantage_fail_threshold must be at least fail_threshold "
                f"({self.fail_threshold})"
            )
        return self


class StorageSection(Strict):
    # A week of every check (about 90 KB per target-day at one a minute);
    # older history lives on in the rollups.
    raw_retention_days: float = Field(default=7, gt=0, le=3650)
    # Hourly rollups (history at hour resolution); daily ones are kept for good.
    hourly_retention_days: float = Field(default=120, gt=0, le=3650)
    # Agreed history (the moves behind uptime and incidents): past the
    # longest uptime window, 365 days, with room to spare.
    history_retention_days: float = Field(default=400, ge=366, le=3650)
    # The replicated log's cap (held in memory, about 1 KB per entry): past
    # it a peer's batch that adds to the log is refused; a warning comes at 80 %.
    max_log_entries: int = Field(
        default=default_int("storage.max_log_entries"), ge=10_000, le=10_000_000
    )
    max_log_mb: int = Field(default=default_int("storage.max_log_mb"), ge=8, le=8192)


class CanarySection(Strict):
    """A host this node should always reach; TCP connect."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=53, ge=1, le=65_535)


# Public anycast resolvers of three operators, by TCP: if none answers, the
# trouble is ours, not the targets'.
DEFAULT_CANARIES = (
    CanarySection(host="1.1.1.1"),
    CanarySection(host="9.9.9.9"),
    CanarySection(host="8.8.8.8"),
)


Topic = Annotated[str, Field(pattern=TOPIC.pattern), AfterValidator(not_reserved)]
# ntfy's priorities: 1 (min) to 5 (max, urgent).
Priority = Annotated[int, Field(ge=1, le=5)]
NoticeName = Literal[
    "down",
    "up",
    "partial_lasting",
    "flapping_started",
    "flapping_settled",
    "node_isolated",
    "peer_lost",
    "peer_back",
    "clock_jumped",
    "still_down",
    "tls_expiring",
    "domain_expiring",
    "escalated",
    "weekly_report",
]


class NtfySection(Strict):
    url: AnyHttpUrl = AnyHttpUrl("https://ntfy.sh")
    topic: Topic
    # A target's own topic wins, then the first of its tags listed here,
    # then the default topic.
    tag_topics: dict[str, Topic] = Field(default_factory=dict)
    priority: dict[NoticeName, Priority] = Field(default_factory=dict)
    # A reminder while a target stays DOWN, every this many seconds; 0: never.
    remind_down_every_s: float = Field(
        default=default_float("ntfy.remind_down_every_s"), ge=0, le=30 * 86_400
    )
    # A DOWN nobody acknowledged this long is posted once more, to
    # escalation_topic; 0: never. Set both or neither.
    escalate_after_s: float = Field(
        default=default_float("ntfy.escalate_after_s"), ge=0, le=30 * 86_400
    )
    escalation_topic: Topic | None = None
    # A page of a target with a parent or children waits this long for the
    # rest of its family, so one page tells of a host and what fell with it;
    # a tagged target's for the rest of its tag: this many of one tag down
    # (or back) together are one message.
    group_window_s: float = Field(default=default_float("ntfy.group_window_s"), gt=0, le=600)
    group_min_targets: int = Field(default=default_int("ntfy.group_min_targets"), ge=2, le=100_000)
    # Once a week at this UTC time ("mon 08:00"), one report per topic: the
    # week's uptime per tag, the worst targets, outages, the pair's health.
    weekly_report: str | None = None
    # The Acknowledge and Silence 1 h buttons of a page (shown when
    # [node] public_url is set) work this long after the post.
    buttons_expire_after_s: float = Field(default=86_400, ge=60, le=30 * 86_400)
    # Events older than this when ntfy takes them again go out as one summary.
    summarize_after_s: float = Field(default=3600, gt=0)
    timeout_s: float = Field(default=10, gt=0, le=120)
    # How long the standby waits for the designated sender's post before it
    # posts itself (after looking the event up on ntfy).
    failover_s: float = Field(default=default_float("ntfy.failover_s"), ge=5, le=3600)
    token_file: Path | None = None
    token_env: str | None = Field(default=None, pattern=ENV_PATTERN)
    # Or Basic credentials: a user name, its password from a file or env.
    username: str | None = Field(default=None, min_length=1, max_length=64)
    password_file: Path | None = None
    password_env: str | None = Field(default=None, pattern=ENV_PATTERN)

    @field_validator("weekly_report")
    @classmethod
    def _a_time_in_the_week(cls, value: str | None) -> str | None:
        if value is not None:
            weekly.when(value)
        return value

    @model_validator(mode="after")
    def _one_way_in(self) -> NtfySection:
        if self.token_file is not None and self.token_env is not None:
            raise ValueError("give at most one of token_file or token_env")
        has_password = self.password_file is not None or self.password_env is not None
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give at most one of password_file or password_env")
        if (self.username is not None) != has_password:
            raise ValueError("give username together with password_file or password_env")
        if self.username is not None and (self.token_file or self.token_env):
            raise ValueError("give a token or a username and password, not both")
        if (self.escalation_topic is None) != (self.escalate_after_s == 0):
            raise ValueError(
                "give escalation_topic and escalate_after_s (> 0) together, or neither"
            )
        return self


class TokenSource(Strict):
    token_file: Path | None = None
    token_env: str | None = Field(default=None, pattern=ENV_PATTERN)


class AdminSection(TokenSource):
    """One person or tool allowed to change targets, windows and silences;
    its name goes into the audit record of every change it makes."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")

    @model_validator(mode="after")
    def _exactly_one(self) -> AdminSection:
        if (self.token_file is None) == (self.token_env is None):
            raise ValueError("give exactly one of token_file or token_env")
        return self


class ApiSection(Strict):
    # The read API and status page are open unless a read token is set.
    read_token_file: Path | None = None
    read_token_env: str | None = Field(default=None, pattern=ENV_PATTERN)
    admins: tuple[AdminSection, ...] = ()

    @model_validator(mode="after")
    def _at_most_one(self) -> ApiSection:
        if self.read_token_file is not None and self.read_token_env is not None:
            raise ValueError("give at most one of read_token_file or read_token_env")
        return self


class AdminOptions(Strict):
    # Targets added through the admin API may reach loopback, link-local,
    # private and this node's own addresses only when this is true.
    allow_private_targets: bool = False


class Config(Strict):
    node: NodeSection
    peers: tuple[PeerSection, ...] = ()
    sync: SyncSection
    defaults: DefaultsSection = DefaultsSection()
    storage: StorageSection = StorageSection()
    canaries: tuple[CanarySection, ...] = DEFAULT_CANARIES
    ntfy: NtfySection | None = None
    targets: tuple[Target, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    # Same fields as maintenance windows: the state is agreed and recorded as
    # usual, but nobody is notified.
    silences: tuple[MaintenanceWindow, ...] = ()
    api: ApiSection = ApiSection()
    admin: AdminOptions = AdminOptions()
    # Pages for one customer each: /s/<slug> (watchers/customer_pages.py).
    pages: tuple[PageSection, ...] = ()
    # Registration expiry of the targets' domains (watchers/domains.py).
    domains: DomainsSection = DomainsSection()
    # Signed webhooks, delivered through the outbox as ntfy's posts are.
    webhooks: tuple[WebhookSection, ...] = ()

    def core_settings(self) -> Settings:
        """The core's settings: each tunable from its section (an absent
        [ntfy] keeps the defaults), and the pace that the sync interval sets."""
        values = {}
        for tunable in TUNABLES:
            section, key = tunable.key.split(".")
            found = getattr(self, section)
            if found is not None:
                values[tunable.key] = getattr(found, key)
        settings = configured(values, round(self.sync.interval_s * 1000))
        report = None if self.ntfy is None else self.ntfy.weekly_report
        if report is None:
            return settings
        return replace(settings, weekly_report_at_ms=weekly.when(report))

    def routing(
        self, login: NtfyLogin, subject_for: Callable[[Event], Subject], now_ms: Callable[[], int]
    ) -> Routing:
        """Where and how the node posts, from the [ntfy] section."""
        assert self.ntfy is not None
        ntfy = self.ntfy
        priority = dict(DEFAULT_PRIORITY)
        priority.update({Notice(name.upper()): value for name, value in ntfy.priority.items()})
        server = Server(str(ntfy.url), token=login[0], basic=login[1], timeout_s=ntfy.timeout_s)
        return Routing(
            server,
            Style(topic=ntfy.topic, priority=priority),
            subject_for,
            summarize_after_ms=int(ntfy.summarize_after_s * 1000),
            now_ms=now_ms,
        )

    def own_names(self) -> tuple[str, ...]:
        """The names and addresses this node and its peers answer on."""
        names = [self.node.host]
        urls = [self.node.public_url, *(p.url for p in self.peers)]
        names += [url_host(str(u)) for u in urls if u is not None]
        return tuple(n for n in dict.fromkeys(names) if n)

    @model_validator(mode="after")
    def _names_and_ids(self) -> Config:
        seen: set[str] = set()
        for target in self.targets:
            if target.id in seen:
                raise ValueError(f"target id {target.id!r} appears twice")
            seen.add(target.id)
        names = [self.node.name, *(p.name for p in self.peers)]
        if len(set(names)) != len(names):
            raise ValueError(f"node and peer names must differ, got {names}")
        check_parents(self.targets)
        check_slugs(self.pages)
        check_hooks(self.webhooks)
        return self


def load_config(path: Path) -> Config:
    """Read and validate; raises ConfigError with every problem found."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text: {exc.reason}"]) from exc
    return parse_config(raw)


def parse_config(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([describe_problem(error) for error in exc.errors()]) from None
