"""HTTP(S): status, body conditions, latency and TLS expiry, as a visitor meets them.

Each check opens a fresh connection and sends one request on it (the engine
is http1.py), follows at most ``max_redirects`` redirects, reads at most ``max_body_kb`` of
the body, and gives up after ``timeout_s`` in all, however the server dawdles.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import re
import ssl
import time
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import certifi
import re2
from pydantic import AnyHttpUrl, Field, field_validator, model_validator

from watchers.digits import plain_digits
from watchers.probes import http1
from watchers.probes.base import ENV_PATTERN, CheckResult, TargetBase, seconds
from watchers.probes.http1 import AnswerError
from watchers.probes.phases import FAILED, WHILE, PhaseClock
from watchers.probes.reach import Reach, url_host

REDIRECTS = {301, 302, 303, 307, 308}
DEFAULT_STATUS = tuple(range(200, 400))
ENV_NAME = re.compile(ENV_PATTERN)
# Of a value read from a body, a reason quotes at most this much.
EXCERPT_CHARS = 40


class HttpTarget(TargetBase):
    kind: Literal["http"]
    url: AnyHttpUrl
    method: Literal["GET", "HEAD", "POST", "PUT", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    # Header values kept out of the config file (a token, say): read from a
    # file (a systemd credential) or the environment when the config is read.
    header_file: dict[str, str] = Field(default_factory=dict)
    header_env: dict[str, str] = Field(default_factory=dict)
    expect_status: tuple[int, ...] = DEFAULT_STATUS
    keyword: str | None = Field(default=None, min_length=1)
    keyword_absent: str | None = Field(default=None, min_length=1)
    regex: str | None = None
    json_path: str | None = Field(default=None, pattern=r"^[^.]+(\.[^.]+)*$")
    json_equals: str | int | float | bool | None = None
    json_contains: str | None = None
    max_latency_ms: float | None = Field(default=None, gt=0)
    max_redirects: int = Field(default=5, ge=0, le=20)
    verify_tls: bool = True
    max_body_kb: int = Field(default=1024, ge=1, le=65_536)

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [s for s in value if not 100 <= s <= 599]
        if bad or not value:
            raise ValueError(f"expected HTTP status codes between 100 and 599, got {list(value)}")
        return value

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compiled_regex(value)
            except re2.error as exc:
                why = exc.args[0] if exc.args else exc
                why = why.decode(errors="replace") if isinstance(why, bytes) else str(why)
                raise ValueError(
                    f"expected a regular expression RE2 runs in linear time (no "
                    f"backreferences or lookaround): {why}"
                ) from exc
        return value

    @field_validator("header_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value.values() if not ENV_NAME.match(name)]
        if bad:
            raise ValueError(f"expected environment variable names (A-Z, 0-9, _), got {bad}")
        return value

    @model_validator(mode="after")
    def _one_source_per_header(self) -> HttpTarget:
        names = [n.lower() for n in (*self.headers, *self.header_file, *self.header_env)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"header {twice[0]!r} is given more than once (headers, header_file, header_env)"
            )
        return self

    @model_validator(mode="after")
    def _json_needs_path(self) -> HttpTarget:
        if (self.json_equals is not None or self.json_contains is not None) and not self.json_path:
            raise ValueError("json_equals and json_contains need json_path")
        return self


@functools.lru_cache(maxsize=1024)
def compiled_regex(pattern: str) -> Any:
    """The pattern in RE2, whose matching time grows linearly with the body:
    no pattern can hold the event loop (Python's re can, for minutes, on a
    pattern such as ((\\w|\\W)*)*! and a short body)."""
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


class HttpClients:
    """What every HTTP check of a node shares: its User-Agent and its two TLS
    contexts (verifying, or not for a target with verify_tls = false). Made
    once: a context loads the trust store, which costs milliseconds."""

    def __init__(self, trust: ssl.SSLContext | None = None, node: str = "") -> None:
        # Says which node looks, so a target's owner can tell the two apart.
        self.agent = f"ravens/{node} (uptime watcher)" if node else "ravens (uptime watcher)"
        self.verifying = trust or ssl.create_default_context(cafile=certifi.where())
        # Checks nothing, so loads no trust store (40 ms at every start).
        self.trusting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.trusting.check_hostname = False
        self.trusting.verify_mode = ssl.CERT_NONE

    def context_for(self, target: HttpTarget) -> ssl.SSLContext:
        return self.verifying if target.verify_tls else self.trusting

    async def aclose(self) -> None:
        """Nothing stays open between checks; kept for the node's shutdown."""


async def probe_http(
    target: HttpTarget, clients: HttpClients, timeout_s: float, reach: Reach | None = None
) -> CheckResult:
    """reach: for a target added through the admin API, where each hop may
    go; its reasons then quote nothing read from the body."""
    phases = PhaseClock()
    try:
        async with asyncio.timeout(timeout_s):
            status, body, details = await _fetch(target, clients, reach, phases)
    except _Refused as exc:
        return CheckResult(False, _ms(phases.started), str(exc), phases.details(phases.current))
    except TimeoutError:
        where = WHILE.get(phases.current or "", "")
        reason = f"timeout after {seconds(timeout_s)} {where}".rstrip()
        return CheckResult(False, None, reason, phases.details(phases.current))
    except _TooManyRedirects:
        reason = f"more than {target.max_redirects} redirects"
        return CheckResult(False, _ms(phases.started), reason, phases.details("status"))
    except (OSError, AnswerError) as exc:
        failed = phases.current or "request"
        reason = _transport_reason(exc)
        # A transport error says which phase it broke; the answer's own
        # errors (not HTTP/1.1, closed before answering) say so already.
        if failed in FAILED and not isinstance(exc, AnswerError):
            reason = f"{FAILED[failed]}: {reason}"
        return CheckResult(False, _ms(phases.started), reason, phases.details(failed))
    latency = _ms(phases.started)
    judged = _judge(target, status, body, latency, quote=reach is None)
    details.update(phases.details(None if judged is None else judged[0]))
    if judged is not None:
        return CheckResult(False, latency, judged[1], details)
    return CheckResult(True, latency, f"status {status}", details)


class _TooManyRedirects(Exception):
    pass


class _Refused(Exception):
    pass


async def _fetch(
    target: HttpTarget, clients: HttpClients, reach: Reach | None, phases: PhaseClock
) -> tuple[int, bytes, dict[str, float | int | str]]:
    url = str(target.url)
    method = target.method
    cap = target.max_body_kb * 1024
    origin = _origin(url)
    tls = clients.context_for(target)
    for hop in range(target.max_redirects + 1):
        if reach is not None:
            refused = await reach.refusal([url_host(url)])
            if refused is not None:
                raise _Refused(f"redirect {refused}" if hop else refused)
        # The target's own headers (credentials, often) go only to its own
        # origin: never to where a redirect points elsewhere.
        headers = dict(target.headers) if _origin(url) == origin else {}
        headers.setdefault("User-Agent", clients.agent)
        response = await http1.send(method, url, headers, tls, phases)
        try:
            details = _tls_details(response.ssl_object)
            server_ms = _server_date_ms(response.headers.get("date"))
            if server_ms is not None:
                details["server_date_ms"] = server_ms
            location = response.headers.get("location")
            if response.status in REDIRECTS and location and target.max_redirects:
                try:
                    url = urljoin(url, location)
                except ValueError as exc:
                    raise AnswerError(f"redirect to a bad URL: {exc}") from exc
                method = "GET" if response.status == 303 else method
                phases.begin("redirect")
                continue
            phases.begin("body")
            body, cut = await response.read(cap)
            if cut:
                # Enough to judge; a bottomless body must not hurt us.
                details["body_cut_at_kb"] = target.max_body_kb
            return response.status, body, details
        finally:
            response.close()
    raise _TooManyRedirects


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of url; a URL that names no port it may use (a
    hostile redirect) has no origin the target's own could equal."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return parts.scheme, "", -1
    return parts.scheme, (parts.hostname or "").lower(), port


def _server_date_ms(header: str | None) -> int | None:
    """The server's clock from its Date header (whole seconds: the middle of
    the second it names), or None when absent or unreadable."""
    if not header or len(header) > 64:
        return None
    try:
        stamp = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if stamp.tzinfo is None:
        return None
    return int(stamp.timestamp() * 1000) + 500


def _judge(
    target: HttpTarget, status: int, body: bytes, latency_ms: float, quote: bool = True
) -> tuple[str, str] | None:
    """The first condition that fails, as (phase, reason); None when all
    hold. quote: whether the reason may quote a short excerpt of what was read."""
    if status not in target.expect_status:
        return "status", f"status {status}"
    text = body.decode("utf-8", errors="replace")
    if target.keyword is not None and target.keyword not in text:
        return "content", f"keyword {target.keyword!r} missing"
    if target.keyword_absent is not None and target.keyword_absent in text:
        return "content", f"keyword {target.keyword_absent!r} present"
    if target.regex is not None and compiled_regex(target.regex).search(text) is None:
        return "content", f"regex {target.regex!r} not matched"
    if target.json_path is not None:
        reason = _judge_json(target, text, quote)
        if reason is not None:
            return "content", reason
    if target.max_latency_ms is not None and latency_ms > target.max_latency_ms:
        return "slow", f"slow: {latency_ms:.0f} ms over {target.max_latency_ms:g} ms"
    return None


def _judge_json(target: HttpTarget, text: str, quote: bool) -> str | None:
    assert target.json_path is not None
    try:
        value: Any = json.loads(text)
    except ValueError:
        return "body is not JSON"
    for part in target.json_path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and plain_digits(part, 9) and int(part) < len(value):
            value = value[int(part)]
        else:
            return f"JSON path {target.json_path} missing"
    if target.json_equals is not None and value != target.json_equals:
        if not quote:
            return f"JSON {target.json_path} is not {target.json_equals!r}"
        return f"JSON {target.json_path} is {_excerpt(value)}, expected {target.json_equals!r}"
    if target.json_contains is not None and target.json_contains not in str(value):
        return f"JSON {target.json_path} lacks {target.json_contains!r}"
    return None


def _tls_details(ssl_object: ssl.SSLObject | None) -> dict[str, float | int | str]:
    """Days until the server's certificate expires, on every HTTPS check."""
    if ssl_object is None:
        return {}
    # The binary form is there whether or not the certificate was verified.
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return {}
    # Loaded at the first HTTPS check, not at every start (60 ms of CPU).
    from cryptography import x509

    expires = x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    return {
        "cert_days_left": round((expires - time.time()) / 86_400, 1),
        "cert_not_after_ms": int(expires * 1000),
    }


def _transport_reason(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            message = cause.verify_message or "verification failed"
            if "expired" in message:
                return "certificate expired"
            return f"certificate invalid: {message}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        # "Name or service not known", not "[Errno -2] Name or service not known".
        text = exc.strerror[0].lower() + exc.strerror[1:]
    return text[:160]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _excerpt(value: object) -> str:
    """A value read from the body, as a reason may quote it: short, and
    marked when cut (reasons reach the API, the page and ntfy)."""
    text = repr(value)
    if len(text) <= EXCERPT_CHARS:
        return text
    return f"{text[:EXCERPT_CHARS]}… (excerpt)"
